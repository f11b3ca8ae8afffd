"""Users (hashed passwords) and API keys (hashed, shown once, scoped, revocable)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from linkgen.domain.errors import Conflict, InvalidParameter, NotFound
from linkgen.storage.models import ApiKey, User
from linkgen.storage.types import utcnow

SCOPES = ("admin", "read")


def hash_key(raw: str) -> str:
    """SHA-256 of a key: keys are random and long, so a fast hash is enough (and indexable)."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key or a logged-in user."""

    kind: str  # "api_key" | "user"
    name: str
    scope: str

    @property
    def label(self) -> str:
        """How the audit trail names the caller."""
        return f"{self.kind.replace('_', '-')}:{self.name}"


def create_user(session: Session, email: str, password: str) -> User:
    """Create a user with a hashed password."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise InvalidParameter("email must be an email address", field="email")
    if len(password) < 8:
        raise InvalidParameter("password must be at least 8 characters", field="password")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user {email} already exists", field="email")
    user = User(email=email, password_hash=generate_password_hash(password))
    session.add(user)
    session.flush()
    return user


def count_users(session: Session) -> int:
    """How many users exist (0 means first run)."""
    return int(session.scalar(select(func.count(User.id))) or 0)


def authenticate_user(session: Session, email: str, password: str) -> User | None:
    """The user when email and password match, else None."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        # Same cost as a real check, so timing does not reveal which emails exist.
        check_password_hash(generate_password_hash("x"), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    return user


def new_api_key_value() -> str:
    """A fresh random API key."""
    return "lg_" + secrets.token_urlsafe(32)


def create_api_key(
    session: Session, name: str, *, scope: str = "admin", raw: str | None = None
) -> tuple[ApiKey, str]:
    """Store a new API key (hashed) and return it with its one-time raw value."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidParameter("name must be 1-100 characters", field="name")
    if scope not in SCOPES:
        raise InvalidParameter("scope must be admin or read", field="scope")
    raw = raw or new_api_key_value()
    key = ApiKey(name=name, prefix=raw[:7], key_hash=hash_key(raw), scope=scope)
    session.add(key)
    try:
        session.flush()
    except IntegrityError as exc:  # the same raw key twice
        raise Conflict("this API key already exists") from exc
    return key, raw


def ensure_initial_api_key(session: Session, raw: str) -> bool:
    """Install LINKGEN_INITIAL_API_KEY as the first admin key when no key exists yet."""
    if session.scalar(select(func.count(ApiKey.id))):
        return False
    session.add(ApiKey(name="initial", prefix=raw[:7], key_hash=hash_key(raw), scope="admin"))
    return True


def principal_for_key(session: Session, raw: str) -> Principal | None:
    """The caller behind a raw API key, or None when unknown or revoked."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw)))
    if key is None or key.revoked_at is not None:
        return None
    return Principal(kind="api_key", name=key.name, scope=key.scope)


def revoke_api_key(session: Session, name: str) -> int:
    """Revoke every active key with this name; returns how many."""
    keys = session.scalars(
        select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    ).all()
    if not keys:
        raise NotFound(f"no active API key named {name!r}", field="name")
    for key in keys:
        key.revoked_at = utcnow()
    return len(keys)
