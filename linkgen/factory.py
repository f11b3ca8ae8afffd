"""The application factory: a short list of init_app / register calls."""

from __future__ import annotations

import logging

from flask import Flask

from linkgen.config import Settings
from linkgen.runtime import Runtime
from linkgen.storage.db import Database

log = logging.getLogger("linkgen")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app from settings (the environment when none are given)."""
    settings = (settings or Settings.from_env()).with_secret()
    app = Flask(
        "linkgen",
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        TESTING=settings.testing,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep contract field order

    from linkgen.services.accounts import ApiKeyCache
    from linkgen.services.sdk_apps import AppCache

    db = Database(settings.database_url)
    runtime = Runtime(
        settings=settings, db=db, api_keys=ApiKeyCache(db.engine), sdk_apps=AppCache()
    )
    runtime.init_app(app)
    _install_click_path(app, runtime)

    from linkgen import logs
    from linkgen.web import apiref, errors, health, linkdomain, metrics, ratelimit, security, tls
    from linkgen.web.api import bp as api_bp
    from linkgen.web.api import register_views

    errors.init_app(app)
    logs.init_app(app)  # first of the hooks: every request gets its id, even a refused one
    metrics.init_app(app)  # first: its timer also sees requests the rate limiter refuses
    security.init_app(app)
    ratelimit.init_app(app)
    apiref.init_app(app)
    register_views()
    app.register_blueprint(api_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(tls.bp)

    from linkgen.web import sdk

    app.register_blueprint(sdk.bp)
    app.register_blueprint(linkdomain.bp)

    from linkgen.web import ui

    ui.init_app(app)  # the pages; also CSRF protection (the API and SDK blueprints exempt)

    from linkgen.web import edge

    edge.install(app)  # the hot API calls, answered whole without Flask's dispatch

    from linkgen.web import proxy

    proxy.install(app)  # outermost: who the client is, before the edge or a click sees it

    from linkgen import cli
    from linkgen.services.accounts import install_initial_key

    cli.init_app(app)
    if settings.initial_api_key:
        install_initial_key(runtime.db, settings.initial_api_key)
    return app


def _install_click_path(app: Flask, runtime: Runtime) -> None:
    """Put the click handler in front of Flask (see linkgen/clicks/handler.py)."""
    from linkgen.clicks.cache import RouteCache
    from linkgen.clicks.handler import ClickHandler
    from linkgen.clicks.recorder import ClickRecorder
    from linkgen.web.metrics import metrics_state

    runtime.route_cache = RouteCache(runtime.db)
    runtime.click_recorder = ClickRecorder(runtime.db)
    runtime.db.epoch_listeners.append(runtime.route_cache.clear)
    runtime.click_handler = ClickHandler(
        app.wsgi_app,
        cache=runtime.route_cache,
        recorder=runtime.click_recorder,
        privacy=runtime.settings.privacy,
        count_outcome=metrics_state(runtime).redirects.count,
    )
    app.wsgi_app = runtime.click_handler  # type: ignore[method-assign]
