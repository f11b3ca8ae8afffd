"""The objects one running linkgen process shares: settings, database, caches, worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from linkgen.config import Settings
from linkgen.storage.db import Database

if TYPE_CHECKING:
    from linkgen.clicks.cache import RouteCache
    from linkgen.clicks.recorder import ClickRecorder


@dataclass
class Runtime:
    """Per-process services, kept in app.extensions['linkgen']."""

    settings: Settings
    db: Database
    route_cache: RouteCache | None = None
    click_recorder: ClickRecorder | None = None
    extras: dict[str, Any] = field(default_factory=dict)

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
