"""The team: users' roles, removing users, and invitations by one-time link.

An invitation's token is 256 random bits, shown once (in the link the admin copies) and stored
only as its SHA-256 (`hash_key`, as API keys are). It works once, for INVITATION_TTL, and makes
a user with the email and role the admin chose. The last admin can be neither removed nor
demoted, so the team can always be managed from the web app.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from linkgen.domain.errors import Conflict, LinkgenError, NotFound
from linkgen.services.accounts import check_role, create_user, hash_key, normalize_email
from linkgen.storage.models import Invitation, User
from linkgen.storage.types import utcnow

INVITATION_TTL = timedelta(days=7)


class InvitationUnusable(LinkgenError):
    """An invitation link that cannot be used: unknown (or revoked), used, or expired."""

    status = 410
    code = "invitation_unusable"


def list_users(session: Session) -> list[User]:
    """Every user, oldest first."""
    return list(session.scalars(select(User).order_by(User.id)).all())


def _admin_ids(session: Session) -> list[int]:
    # FOR UPDATE: two admins demoting each other at once must not leave nobody (PostgreSQL
    # re-reads the locked rows; SQLite takes its one write lock at BEGIN).
    query = select(User.id).where(User.role == "admin").order_by(User.id).with_for_update()
    return list(session.scalars(query).all())


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("this user no longer exists")
    return user


def set_role(session: Session, user_id: int, role: str) -> User:
    """Give a user another role; the last admin stays an admin."""
    check_role(role)
    admins = _admin_ids(session)
    user = _user(session, user_id)
    if user.role == "admin" and role != "admin" and admins == [user.id]:
        raise Conflict(
            f"{user.email} is the last admin: make someone else an admin first", field="role"
        )
    user.role = role
    return user


def remove_user(session: Session, user_id: int) -> str:
    """Remove a user (their sessions end: no session names a user that is gone); returns the
    email. The last admin cannot be removed."""
    admins = _admin_ids(session)
    user = _user(session, user_id)
    if user.role == "admin" and admins == [user.id]:
        raise Conflict(f"{user.email} is the last admin and cannot be removed")
    email = user.email
    session.delete(user)
    return email


def create_invitation(
    session: Session, email: str, role: str, *, created_by: str
) -> tuple[Invitation, str]:
    """A new invitation and its one-time token; an earlier pending one for the email goes."""
    email = normalize_email(email)
    check_role(role)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"{email} already has a login", field="email")
    session.execute(
        delete(Invitation).where(Invitation.email == email, Invitation.used_at.is_(None))
    )
    raw = secrets.token_urlsafe(32)
    invitation = Invitation(
        email=email,
        role=role,
        token_hash=hash_key(raw),
        created_by=created_by[:300],
        expires_at=utcnow() + INVITATION_TTL,
    )
    session.add(invitation)
    session.flush()
    return invitation, raw


def pending_invitations(session: Session) -> list[Invitation]:
    """Invitations not used yet and not expired, newest first."""
    query = (
        select(Invitation)
        .where(Invitation.used_at.is_(None), Invitation.expires_at > utcnow())
        .order_by(Invitation.id.desc())
    )
    return list(session.scalars(query).all())


def revoke_invitation(session: Session, invitation_id: int) -> str:
    """Delete a pending invitation (its link stops working); returns its email."""
    invitation = session.scalar(
        select(Invitation).where(Invitation.id == invitation_id, Invitation.used_at.is_(None))
    )
    if invitation is None:
        raise NotFound("this invitation is no longer pending")
    email = invitation.email
    session.delete(invitation)
    return email


def usable_invitation(session: Session, raw: str) -> Invitation:
    """The invitation behind a token, or InvitationUnusable saying why it cannot be used."""
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == hash_key(raw)))
    if invitation is None:
        raise InvitationUnusable(
            "This invitation link is not valid: it may have been revoked, replaced by a newer "
            "one or copied incompletely. Ask an admin for a new one."
        )
    if invitation.used_at is not None:
        raise InvitationUnusable(
            "This invitation link has already been used. Log in, or ask an admin for a new one."
        )
    if invitation.expires_at <= utcnow():
        raise InvitationUnusable(
            "This invitation link has expired (links work for 7 days). Ask an admin for a new one."
        )
    return invitation


def accept_invitation(session: Session, raw: str, password: str) -> User:
    """Use an invitation once: make its user with this password."""
    invitation = usable_invitation(session, raw)
    # Mark it used first and only if nobody else did meanwhile: a link works exactly once.
    marked = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if getattr(marked, "rowcount", 0) != 1:
        raise InvitationUnusable("This invitation link has already been used.")
    user = create_user(session, invitation.email, password, role=invitation.role)
    user.last_login_at = utcnow()  # accepting logs them in
    return user
