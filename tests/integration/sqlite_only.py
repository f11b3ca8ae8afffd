"""An app on a fresh SQLite copy, for tests whose subject does not depend on the database
(the URL map, the OpenAPI document, fuzzing): running them on PostgreSQL too would only double
their time."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Flask

from linkgen.config import Settings
from linkgen.factory import create_app
from tests.conftest import TEST_DOMAINS


def make_sqlite_app(template: Path, tmp_path: Path, **changes: Any) -> Flask:
    """A new app on a copy of the migrated SQLite template (close its runtime when done)."""
    path = tmp_path / "linkgen.db"
    shutil.copy(template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        secret_key="test-secret-key",
        link_domains=TEST_DOMAINS,
        instance_path=tmp_path / "instance",
        testing=True,
        run_worker=False,
    )
    return create_app(replace(settings, **changes))
