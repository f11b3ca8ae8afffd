"""Login, logout and the first-run page.

The first-run page (/setup) makes the first admin, so it opens only to a client on this machine
(loopback, as linkgen/web/proxy.py resolves it: a public client through a trusted proxy is not
local, nor is anyone behind a proxy that is not trusted) or to one that gives the one-time setup
code `linkgen serve` printed in its log (linkgen/services/setup_code.py). It ends for good once
a user exists.

Failed logins are counted per (email, client address) in `login_attempts`: after
`MAX_FAILURES` within `WINDOW` the next try answers 429 without checking the password, so a
password cannot be guessed faster than that; a successful login clears the count.
"""

from __future__ import annotations

from datetime import timedelta

from flask import g, redirect, render_template, request, session, url_for
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from linkgen.domain.errors import InvalidParameter, LinkgenError
from linkgen.domain.validate import is_same_site_path
from linkgen.runtime import get_runtime
from linkgen.services import setup_code
from linkgen.services.accounts import (
    authenticate_user,
    count_users,
    create_user,
    end_sessions,
    hash_key,
)
from linkgen.storage.models import LoginAttempt, User
from linkgen.storage.types import utcnow
from linkgen.web.proxy import request_is_local
from linkgen.web.ui import bp

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
# Rows older than this are pruned on the next failure, so the table stays small.
KEEP_ATTEMPTS = timedelta(days=1)


def load_current_user() -> User | None:
    """The logged-in user (None when the session holds none, the user was removed, or the
    session was ended since: logout, a new password)."""
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    with get_runtime().db.session() as db:
        user = db.get(User, user_id)
    if (
        user is None
        or session.get("generation") != user.session_generation
        or session.get("account") != _account_stamp(user)
    ):
        session.clear()
        return None
    return user


def _account_stamp(user: User) -> str:
    # SQLite hands the id of the newest user, once removed, to the next one made: the stamp
    # (from the password hash, whose salt is random per account) tells the two apart, so a
    # removed user's session never logs in as whoever got their id.
    return hash_key(user.password_hash)[:16]


def start_session(user: User) -> None:
    """Log this browser in as the user (a fresh session: no fixation across the login)."""
    session.clear()
    session["user_id"] = user.id
    session["generation"] = user.session_generation
    session["account"] = _account_stamp(user)
    session.permanent = False


def safe_next(target: str | None) -> str:
    """A same-site path to go to after login (anything else goes to the links list)."""
    if target and is_same_site_path(target):
        return target
    return url_for("ui.links_list")


def attempt_key(email: str) -> str:
    """The throttle's key for password tries: the email and the client address."""
    return f"{email.strip().lower()[:254]}|{request.remote_addr or '-'}"


def recent_failures(db: Session, key: str) -> int:
    """Wrong passwords under this key within WINDOW."""
    since = utcnow() - WINDOW
    query = select(func.count(LoginAttempt.id)).where(
        LoginAttempt.key == key, LoginAttempt.at >= since
    )
    return int(db.scalar(query) or 0)


def record_failure(db: Session, key: str) -> None:
    """Count one wrong password (and prune old counts)."""
    db.execute(delete(LoginAttempt).where(LoginAttempt.at < utcnow() - KEEP_ATTEMPTS))
    db.add(LoginAttempt(key=key))


def clear_failures(db: Session, key: str) -> None:
    """Forget the wrong passwords under this key (after a right one)."""
    db.execute(delete(LoginAttempt).where(LoginAttempt.key == key))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    rt = get_runtime()
    with rt.db.session() as db:
        if count_users(db) == 0:
            return redirect(url_for("ui.setup"))
    if g.get("user") is not None and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    next_path = request.values.get("next", "")
    if request.method == "GET":
        return render_template("auth/login.html", email="", error=None, next=next_path)
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    key = attempt_key(email)
    with rt.db.session() as db:
        if recent_failures(db, key) >= MAX_FAILURES:
            message = "Too many failed logins. Wait 15 minutes and try again."
            page = render_template("auth/login.html", email=email, error=message, next=next_path)
            return page, 429
        user = authenticate_user(db, email, password)
        if user is None:
            record_failure(db, key)
        else:
            clear_failures(db, key)
            start_session(user)
    if user is None:
        message = "The email or password is not right."
        page = render_template("auth/login.html", email=email, error=message, next=next_path)
        return page, 401
    return redirect(safe_next(next_path))


@bp.post("/logout")
def logout() -> Response:
    """Log out here and everywhere: a copy of this session's cookie stops working too."""
    user = g.get("user")
    if user is not None:
        with get_runtime().db.session() as db:
            end_sessions(db, user.id)
    session.clear()
    return redirect(url_for("ui.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Response | tuple[str, int] | str:
    rt = get_runtime()
    with rt.db.session() as db:
        if count_users(db) > 0:
            # Only the very first user is made here; later ones with `linkgen create-user`.
            return redirect(url_for("ui.login"))
    needs_code = not request_is_local()
    if request.method == "GET":
        return _setup_page("", {}, needs_code)
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    errors: dict[str, str] = {}
    if needs_code and not setup_code.check(
        rt.settings.instance_path, request.form.get("setup_code", "")[:64]
    ):
        message = "This is not the setup code. linkgen serve prints it in its log at start."
        return _setup_page(email, {"setup_code": message}, needs_code, 403)
    if password != request.form.get("password_confirm", ""):
        errors["password_confirm"] = "The two passwords are not the same."  # noqa: S105 - a message
    else:
        try:
            with rt.db.session() as db:
                if count_users(db) > 0:  # someone else finished first-run meanwhile
                    return redirect(url_for("ui.login"))
                user = create_user(db, email, password, role="admin")
                start_session(user)
        except InvalidParameter as exc:
            errors[exc.field or "email"] = exc.message
        except LinkgenError as exc:
            errors["email"] = exc.message
    if errors:
        return _setup_page(email, errors, needs_code, 400)
    setup_code.clear(rt.settings.instance_path)
    return redirect(url_for("ui.links_list"))


def _setup_page(
    email: str, errors: dict[str, str], needs_code: bool, status: int = 200
) -> tuple[str, int]:
    page = render_template("auth/setup.html", email=email, errors=errors, needs_code=needs_code)
    return page, status


@bp.get("/")
def home() -> Response:
    return redirect(url_for("ui.links_list"))
