"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from linkgen.storage.db import make_engine
from linkgen.storage.migrate import downgrade, upgrade
from linkgen.storage.models import Base
from tests.conftest import PG_URL, _pg_schema_url, require_postgres


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = list(compare_metadata(ctx, Base.metadata))
    engine.dispose()
    return diff


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    assert _diff(url) == []
    downgrade(url, "base")
    upgrade(url)


def test_postgres_migrations_match_models() -> None:
    require_postgres()
    schema = f"lgtest_migrations_{os.getpid()}"  # unique even when two runs share the server
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = _pg_schema_url(schema)
        upgrade(url)
        assert _diff(url) == []
        downgrade(url, "base")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
