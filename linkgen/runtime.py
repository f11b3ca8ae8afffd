"""The objects one running linkgen process shares: settings, database, caches, worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from linkgen.config import Settings
from linkgen.storage.db import Database


@dataclass
class Runtime:
    """Per-process services, kept in app.extensions['linkgen']."""

    settings: Settings
    db: Database
    extras: dict[str, Any] = field(default_factory=dict)

    def init_app(self, app: Flask) -> None:
        """Attach to a Flask app."""
        app.extensions["linkgen"] = self


def get_runtime(app: Flask | None = None) -> Runtime:
    """The runtime of the current (or given) app."""
    target = app or current_app
    runtime: Runtime = target.extensions["linkgen"]
    return runtime
