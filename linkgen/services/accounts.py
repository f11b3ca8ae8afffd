"""Users (hashed passwords) and API keys (hashed, shown once, scoped, revocable)."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from linkgen.domain.errors import Conflict, InvalidParameter, NotFound
from linkgen.domain.roles import ROLES, is_role
from linkgen.storage.db import Database
from linkgen.storage.epochs import API_KEYS, bump_epoch, read_epoch
from linkgen.storage.models import ApiKey, User
from linkgen.storage.types import utcnow

log = logging.getLogger("linkgen")

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


def normalize_email(email: str) -> str:
    """The email as stored (trimmed, lower case); refuses what is not an email address."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise InvalidParameter("email must be an email address", field="email")
    return email


def check_role(role: str) -> str:
    """The role when it is one of admin, editor, viewer."""
    if not is_role(role):
        raise InvalidParameter(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def create_user(session: Session, email: str, password: str, *, role: str = "admin") -> User:
    """Create a user with a hashed password and a role (admin, editor or viewer)."""
    email = normalize_email(email)
    check_role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user {email} already exists", field="email")
    user = User(email=email, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise InvalidParameter("password must be at least 8 characters", field="password")


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user {email.strip().lower()}", field="email")
    return user


def end_sessions(session: Session, user_id: int) -> None:
    """Log the user out everywhere: every session issued so far stops working."""
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(session_generation=User.session_generation + 1)
    )


def set_password(session: Session, email: str, password: str) -> User:
    """Give a user a new password; their sessions everywhere end."""
    _check_password(password)
    user = user_by_email(session, email)
    user.password_hash = generate_password_hash(password)
    user.session_generation += 1
    return user


def change_password(session: Session, user_id: int, current: str, new: str) -> User:
    """A user's own password change: the current password must match; every session of the
    user ends (the caller re-issues its own session from the returned user)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if not check_password_hash(user.password_hash, current):
        raise InvalidParameter("the current password is not right", field="current_password")
    _check_password(new)
    user.password_hash = generate_password_hash(new)
    user.session_generation += 1
    session.flush()
    return user


def count_users(session: Session) -> int:
    """How many users exist (0 means first run)."""
    return int(session.scalar(select(func.count(User.id))) or 0)


@functools.cache
def _dummy_password_hash() -> str:
    """A hash made once, with the same method and cost as users' hashes."""
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate_user(session: Session, email: str, password: str) -> User | None:
    """The user when email and password match, else None."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        # Exactly one password check on either path, so timing does not reveal which emails
        # exist (hashing a fresh dummy here as well used to make unknown emails 3x slower).
        check_password_hash(_dummy_password_hash(), password)
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


def install_initial_key(db: Database, raw: str) -> None:
    """`ensure_initial_api_key` in its own transaction, at start-up and after `db upgrade`.

    Before the schema exists (or when a second process won the race) it does nothing: `linkgen
    db upgrade` and `linkgen serve` call it again once the tables are there.
    """
    try:
        with db.session() as session:
            if ensure_initial_api_key(session, raw):
                log.info("installed LINKGEN_INITIAL_API_KEY as the first admin API key")
    except DBAPIError:
        log.debug("initial API key not installed yet", exc_info=True)


def list_api_keys(session: Session) -> list[ApiKey]:
    """Active API keys, newest first (their hashes and prefixes, never a usable key)."""
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.id.desc())
    return list(session.scalars(query).all())


def revoke_api_key(session: Session, name: str) -> int:
    """Revoke every active key with this name; returns how many.

    The revocation bumps the `api_keys` epoch (other processes' key caches notice within
    EPOCH_CHECK_SECONDS) and, once the transaction commits, empties this process's key caches
    (when the session is a `Database.session`, which runs `after_commit` callbacks).
    """
    keys = session.scalars(
        select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    ).all()
    if not keys:
        raise NotFound(f"no active API key named {name!r}", field="name")
    _revoke(session, keys)
    return len(keys)


def revoke_api_key_id(session: Session, key_id: int) -> ApiKey:
    """Revoke one active key by its id (the web app's list can hold two keys of one name)."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)))
    if key is None:
        raise NotFound("no such active API key")
    _revoke(session, [key])
    return key


def _revoke(session: Session, keys: Sequence[ApiKey]) -> None:
    for key in keys:
        key.revoked_at = utcnow()
    bump_epoch(session, API_KEYS)
    session.info.setdefault("after_commit", []).append(_revoked_here)


# --------------------------------------------------------------------------- API key cache

# A valid key is remembered per process so that API calls (link creation above all) pay no
# query each. A cache trusts what it holds only while its view of the `api_keys` epoch is at
# most EPOCH_CHECK_SECONDS old; KEY_CACHE_SECONDS bounds an entry's life in any case (a key
# revoked by hand in the database, without the epoch, stops working within that).
EPOCH_CHECK_SECONDS = 1.0
KEY_CACHE_SECONDS = 60.0
KEY_CACHE_MAX = 10_000

_revocations_lock = threading.Lock()
_revocations_here = 0  # revocations committed by this process


def _revoked_here() -> None:
    global _revocations_here
    with _revocations_lock:
        _revocations_here += 1


_KEY_BY_HASH = select(ApiKey.name, ApiKey.scope, ApiKey.revoked_at).where(
    ApiKey.key_hash == bindparam("key_hash")
)


class ApiKeyCache:
    """Principals of valid API keys by key hash, for one database, in this process.

    Unknown and revoked keys are never remembered (each such request asks the database). A
    revocation empties the cache at once in the process that committed it and within
    EPOCH_CHECK_SECONDS (plus one request's time) in every other process: the first lookup
    after that interval reads the `api_keys` epoch, and a moved epoch empties the cache. An
    entry loaded while a revocation was committing is not stored (the generation check).
    """

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, Principal]] = {}
        self._generation = 0
        self._local_seen = _revocations_here
        self._epoch: int | None = None
        self._epoch_checked = float("-inf")

    def principal(self, raw: str) -> Principal | None:
        """The caller behind a raw API key, or None when unknown or revoked."""
        now = self.clock()
        generation = self._current(now)
        digest = hash_key(raw)
        hit = self._keys.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.engine.connect() as conn:
            row = conn.execute(_KEY_BY_HASH, {"key_hash": digest}).first()
        if row is None or row.revoked_at is not None:
            self._keys.pop(digest, None)
            return None
        principal = Principal(kind="api_key", name=row.name, scope=row.scope)
        with self._lock:
            if generation == self._generation and _revocations_here == self._local_seen:
                if len(self._keys) >= KEY_CACHE_MAX:
                    self._keys.clear()
                self._keys[digest] = (now + KEY_CACHE_SECONDS, principal)
        return principal

    def _current(self, now: float) -> int:
        """The generation to trust, after emptying the cache if a revocation happened."""
        if _revocations_here != self._local_seen:
            with self._lock:
                self._local_seen = _revocations_here
                self._generation += 1
                self._keys = {}
        if now - self._epoch_checked >= EPOCH_CHECK_SECONDS:
            with self.engine.connect() as conn:
                epoch = read_epoch(conn, API_KEYS)
            with self._lock:
                # Two threads may check at once and the slower one may hold an older value:
                # that costs one needless clear, never a missed one.
                if self._epoch is not None and epoch != self._epoch:
                    self._generation += 1
                    self._keys = {}
                self._epoch = epoch
                self._epoch_checked = now
        return self._generation
