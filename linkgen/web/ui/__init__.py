"""The campaign manager's web app: session login, CSRF on every form, pages under one blueprint.

`init_app` wires what the pages need into the app: CSRF protection (the JSON API and the SDK
endpoints authenticate with headers, not cookies, so they are exempt), a session cookie that is
`Secure` whenever the request came over https, and the blueprint with its login gate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Request, Response, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response as BaseResponse

from linkgen.domain.errors import Unauthorized
from linkgen.runtime import get_runtime
from linkgen.web.ui.roles import enforce_role, may

bp = Blueprint("ui", __name__)
csrf = CSRFProtect()

# Pages anyone may open: the login form and the first-run page (static files are not ours).
PUBLIC_ENDPOINTS = frozenset({"ui.login", "ui.setup", "ui.invite_page", "ui.invite_accept"})


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure when the request is https (or https is configured).

    Requests under `/api/` (the JSON API and the SDK endpoints) authenticate with headers
    only, so they get Flask's null session: no cookie is read or written, a browser's login
    cookie grants nothing there, and the hot API paths skip the cookie's decoding.
    """

    def open_session(self, app: Flask, request: Request) -> Any:
        """The signed-cookie session for pages; a null session for the API."""
        if request.path.startswith("/api/"):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure over https: a cookie set over TLS must never travel over plain http."""
        configured = bool(app.config.get("SESSION_COOKIE_SECURE"))
        req: Request | None = request if request else None
        return configured or (req is not None and req.is_secure)


def init_app(app: Flask) -> None:
    """Register CSRF protection, the session interface and the UI blueprint."""
    rt = get_runtime(app)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    if rt.settings.public_scheme == "https":
        app.config["SESSION_COOKIE_SECURE"] = True
    app.session_interface = HttpsAwareSessionInterface()
    csrf.init_app(app)
    from linkgen.web.api import bp as api_bp
    from linkgen.web.sdk import bp as sdk_bp

    csrf.exempt(api_bp)
    csrf.exempt(sdk_bp)

    from linkgen.web.ui import (  # noqa: F401
        auth,
        bulk,
        devices,
        domains,
        links,
        postbacks,
        reports,
        settings,
        team,
    )

    app.register_blueprint(bp)


@bp.before_request
def _require_login() -> BaseResponse | None:
    from linkgen.web.ui.auth import load_current_user

    user = load_current_user()
    g.user = user
    if user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.headers.get("X-Requested-With") == "fetch":
            raise Unauthorized("your session has ended: log in again")
        if request.method == "GET":
            return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("ui.login"))
    enforce_role()
    return None


@bp.after_request
def _no_store(resp: Response) -> Response:
    # Pages show per-user data: keep them out of shared caches and the back-button cache.
    if resp.mimetype == "text/html":
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {
        "current_user": g.get("user"),
        "nav_active": request.blueprint and _nav_section(),
        "may": may,
    }


@bp.app_template_filter("when")
def format_when(value: object) -> str:
    """A time for people: `2026-11-29 10:00 UTC` (from a datetime or an ISO string)."""
    if value is None or value == "":
        return ""
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(when, datetime):
        return when.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _nav_section() -> str:
    path = request.path
    for prefix in (
        "/links",
        "/import",
        "/apps",
        "/templates",
        "/domains",
        "/postbacks",
        "/devices",
        "/reports",
        "/team",
        "/api-keys",
        "/account",
    ):
        if path.startswith(prefix):
            return prefix.strip("/")
    return ""


def current_actor() -> str:
    """How the audit trail and `created_by` name the logged-in user."""
    user = g.get("user")
    return f"user:{user.email}" if user is not None else "user:unknown"


def wants_session_user() -> bool:
    """True when a user is logged in (for templates and views that vary on it)."""
    return "user_id" in session
