"""The team pages: users and their roles, invitations, API keys, and one's own password.

/team and /api-keys are for admins (linkgen/web/ui/roles.py enforces it on every request);
/account is anyone's own; /invite/<token> is public and works once. A new invitation link or
API key is in the answer to the POST that made it and nowhere else: it is never stored, logged
(linkgen/logs.py writes /invite/ paths without the token) or shown again.
"""

from __future__ import annotations

from flask import g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from linkgen.domain.errors import InvalidParameter, LinkgenError
from linkgen.domain.roles import ROLE_LABELS, ROLES
from linkgen.runtime import get_runtime
from linkgen.services import accounts, team
from linkgen.web.ui import bp, current_actor
from linkgen.web.ui.auth import (
    MAX_FAILURES,
    attempt_key,
    clear_failures,
    recent_failures,
    record_failure,
    start_session,
)

TEAM_NOTICES = {
    "role": "Role changed.",
    "removed": "User removed: their sessions have ended.",
    "revoked": "Invitation revoked: its link no longer works.",
}


def _form_id(name: str) -> int:
    raw = request.form.get(name, "")
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidParameter(f"{name} must be a number", field=name)
    return int(raw)


# --------------------------------------------------------------------------- team


def _team_page(
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    invite_link: str | None = None,
    invited: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    with get_runtime().db.session() as db:
        users = team.list_users(db)
        invitations = team.pending_invitations(db)
        admins = sum(1 for u in users if u.role == "admin")
        page = render_template(
            "team/team.html",
            users=users,
            invitations=invitations,
            admins=admins,
            roles=ROLES,
            role_labels=ROLE_LABELS,
            role_options=[(r, ROLE_LABELS[r]) for r in ROLES],
            errors=errors or {},
            form=form or {},
            invite_link=invite_link,
            invited=invited,
            notice=notice,
        )
    return page, status


@bp.get("/team")
def team_page() -> tuple[str, int]:
    return _team_page(notice=TEAM_NOTICES.get(request.args.get("ok", "")))


@bp.post("/team/invitations")
def team_invite() -> tuple[str, int]:
    email = request.form.get("email", "")[:254]
    role = request.form.get("role", "")[:16]
    try:
        with get_runtime().db.session() as db:
            invitation, raw = team.create_invitation(db, email, role, created_by=current_actor())
            invited = invitation.email
    except LinkgenError as exc:
        errors = {exc.field or "email": exc.message}
        return _team_page(errors=errors, form={"email": email, "role": role}, status=exc.status)
    link = url_for("ui.invite_page", token=raw, _external=True)
    return _team_page(invite_link=link, invited=invited, status=201)


@bp.post("/team/invitations/revoke")
def team_invite_revoke() -> Response | tuple[str, int]:
    try:
        with get_runtime().db.session() as db:
            team.revoke_invitation(db, _form_id("invitation_id"))
    except LinkgenError as exc:
        return _team_page(errors={"form": exc.message}, status=exc.status)
    return redirect(url_for("ui.team_page", ok="revoked"))


@bp.post("/team/role")
def team_set_role() -> Response | tuple[str, int]:
    try:
        with get_runtime().db.session() as db:
            user = team.set_role(db, _form_id("user_id"), request.form.get("role", "")[:16])
            stepped_down = user.id == g.user.id and user.role != "admin"
    except LinkgenError as exc:
        return _team_page(errors={"form": exc.message}, status=exc.status)
    if stepped_down:  # the Team page is for admins: go where this user still may
        return redirect(url_for("ui.links_list"))
    return redirect(url_for("ui.team_page", ok="role"))


@bp.post("/team/remove")
def team_remove() -> Response | tuple[str, int]:
    try:
        with get_runtime().db.session() as db:
            team.remove_user(db, _form_id("user_id"))
    except LinkgenError as exc:
        return _team_page(errors={"form": exc.message}, status=exc.status)
    return redirect(url_for("ui.team_page", ok="removed"))


# --------------------------------------------------------------------------- invitations


@bp.get("/invite/<token>")
def invite_page(token: str) -> tuple[str, int]:
    try:
        with get_runtime().db.session() as db:
            invitation = team.usable_invitation(db, token[:100])
            email, role = invitation.email, invitation.role
    except LinkgenError as exc:
        return render_template("team/invite_unusable.html", message=exc.message), exc.status
    return _invite_form(token, email, role, {}, 200)


def _invite_form(
    token: str, email: str, role: str, errors: dict[str, str], status: int
) -> tuple[str, int]:
    page = render_template(
        "team/invite.html",
        token=token,
        email=email,
        role=role,
        role_label=ROLE_LABELS.get(role, role),
        errors=errors,
    )
    return page, status


@bp.post("/invite/<token>")
def invite_accept(token: str) -> Response | tuple[str, int]:
    token = token[:100]
    password = request.form.get("password", "")[:1024]
    rt = get_runtime()
    try:
        with rt.db.session() as db:
            invitation = team.usable_invitation(db, token)
            email, role = invitation.email, invitation.role
    except LinkgenError as exc:
        return render_template("team/invite_unusable.html", message=exc.message), exc.status
    if password != request.form.get("password_confirm", ""):
        message = "The two passwords are not the same."
        return _invite_form(token, email, role, {"password_confirm": message}, 400)
    try:
        with rt.db.session() as db:
            user = team.accept_invitation(db, token, password)
            start_session(user)
    except team.InvitationUnusable as exc:
        return render_template("team/invite_unusable.html", message=exc.message), exc.status
    except LinkgenError as exc:
        field = exc.field if exc.field in ("password", "password_confirm") else "form"
        return _invite_form(token, email, role, {field: exc.message}, exc.status)
    return redirect(url_for("ui.links_list"))


# --------------------------------------------------------------------------- API keys


def _keys_page(
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    created: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    with get_runtime().db.session() as db:
        keys = accounts.list_api_keys(db)
        page = render_template(
            "team/api_keys.html",
            keys=keys,
            scopes=accounts.SCOPES,
            errors=errors or {},
            form=form or {},
            created=created,
            notice=notice,
        )
    return page, status


@bp.get("/api-keys")
def api_keys_page() -> tuple[str, int]:
    notice = "API key revoked: it no longer works." if request.args.get("ok") == "revoked" else None
    return _keys_page(notice=notice)


@bp.post("/api-keys")
def api_keys_create() -> tuple[str, int]:
    name = request.form.get("name", "")[:200]
    scope = request.form.get("scope", "")[:16]
    try:
        with get_runtime().db.session() as db:
            key, raw = accounts.create_api_key(db, name, scope=scope)
            created = {"name": key.name, "scope": key.scope, "key": raw}
    except LinkgenError as exc:
        errors = {exc.field or "name": exc.message}
        return _keys_page(errors=errors, form={"name": name, "scope": scope}, status=exc.status)
    return _keys_page(created=created, status=201)


@bp.post("/api-keys/revoke")
def api_keys_revoke() -> Response | tuple[str, int]:
    try:
        with get_runtime().db.session() as db:
            accounts.revoke_api_key_id(db, _form_id("key_id"))
    except LinkgenError as exc:
        return _keys_page(errors={"form": exc.message}, status=exc.status)
    return redirect(url_for("ui.api_keys_page", ok="revoked"))


# --------------------------------------------------------------------------- own account


def _account_page(
    errors: dict[str, str] | None = None, notice: str | None = None, status: int = 200
) -> tuple[str, int]:
    page = render_template(
        "team/account.html",
        errors=errors or {},
        notice=notice,
        role_label=ROLE_LABELS.get(g.user.role, g.user.role),
    )
    return page, status


@bp.get("/account")
def account_page() -> tuple[str, int]:
    notice = None
    if request.args.get("ok") == "password":
        notice = "Password changed. Every other session of yours has been logged out."
    return _account_page(notice=notice)


@bp.post("/account/password")
def account_password() -> Response | tuple[str, int]:
    current = request.form.get("current_password", "")[:1024]
    new = request.form.get("password", "")[:1024]
    rt = get_runtime()
    key = attempt_key(g.user.email)
    with rt.db.session() as db:
        # The current password is guessed no faster than at the login form.
        if recent_failures(db, key) >= MAX_FAILURES:
            message = "Too many wrong passwords. Wait 15 minutes and try again."
            return _account_page({"current_password": message}, status=429)
    if new != request.form.get("password_confirm", ""):
        message = "The two new passwords are not the same."
        return _account_page({"password_confirm": message}, status=400)
    try:
        with rt.db.session() as db:
            user = accounts.change_password(db, g.user.id, current, new)
            clear_failures(db, key)
            start_session(user)  # this session goes on under the new generation
    except InvalidParameter as exc:
        if exc.field == "current_password":
            with rt.db.session() as db:
                record_failure(db, key)
        return _account_page({exc.field or "password": exc.message}, status=400)
    session.modified = True
    return redirect(url_for("ui.account_page", ok="password"))
