"""The objects one running linkgen process shares: settings, database, caches, worker.

Also the end of a web process (`close_on_exit`): once the server has finished the requests it
accepted and ends the worker's main thread, the click recorder commits what is queued and the
connections are closed before the process goes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from linkgen.config import Settings
from linkgen.storage.db import Database
from linkgen.threads import Thread

if TYPE_CHECKING:
    from linkgen.clicks.cache import RouteCache
    from linkgen.clicks.handler import ClickHandler
    from linkgen.clicks.recorder import ClickRecorder
    from linkgen.delivery.clevertap_client import CleverTapClient
    from linkgen.services.accounts import ApiKeyCache
    from linkgen.services.sdk_apps import AppCache
    from linkgen.web.edge import Edge
    from linkgen.web.metrics import MetricsState
    from linkgen.web.proxy import TrustedProxies
    from linkgen.web.ratelimit import RateLimiter

log = logging.getLogger("linkgen")


@dataclass
class Runtime:
    """Per-process services, kept in app.extensions['linkgen'].

    `create_app` builds each one; a field is None only before its part of the app is set up
    (the accessors in the modules that use them assert that it is not).
    """

    settings: Settings
    db: Database
    route_cache: RouteCache | None = None
    click_recorder: ClickRecorder | None = None
    click_handler: ClickHandler | None = None  # linkgen/clicks/handler.py
    api_keys: ApiKeyCache | None = None  # valid API keys (linkgen/web/api)
    sdk_apps: AppCache | None = None  # SDK apps and their settings (linkgen/web/sdk.py)
    trusted_proxies: TrustedProxies | None = None  # linkgen/web/proxy.py
    rate_limiter: RateLimiter | None = None  # linkgen/web/ratelimit.py
    edge: Edge | None = None  # linkgen/web/edge.py
    # The client the CleverTap connection check uses instead of a fresh one per check (tests
    # inject one with their own timeout or transport).
    clevertap_client: CleverTapClient | None = None
    metrics: MetricsState | None = None  # linkgen/web/metrics.py (made on first use)

    def close(self) -> None:
        """Flush pending clicks, stop background threads, close connections."""
        if self.click_recorder is not None:
            self.click_recorder.stop()
        if self.route_cache is not None:
            self.route_cache.stop()
        self.db.dispose()

    def init_app(self, app: Flask) -> None:
        """Attach to a Flask app."""
        app.extensions["linkgen"] = self


def get_runtime(app: Flask | None = None) -> Runtime:
    """The runtime of the current (or given) app."""
    target = app or current_app
    runtime: Runtime = target.extensions["linkgen"]
    return runtime


def close_on_exit(app: Flask) -> threading.Thread:
    """Close this process's runtime when its main thread ends: call once, in a server worker.

    A server's worker stops by ending its main thread once the requests it had accepted are
    answered (granian on SIGTERM: it stops accepting, finishes the requests in flight, closes
    idle keep-alive connections, then returns; `tests/integration/test_shutdown.py` checks
    it). What is left is this process's own: the click recorder commits anything still queued
    and stops its writer, the route cache's poller stops, the database connections are closed
    (SQLite checkpoints its WAL on the last close; PostgreSQL sees a clean disconnect). A
    non-daemon thread does it because a forked worker leaves with `os._exit`, which runs no
    `atexit` hook but does wait for non-daemon threads.
    """
    runtime = get_runtime(app)

    def _close() -> None:
        threading.main_thread().join()
        started = time.monotonic()
        runtime.close()
        log.info("web process stopped (closed in %.2f s)", time.monotonic() - started)

    thread = Thread(target=_close, name="linkgen-closing", daemon=False)
    thread.start()
    return thread
