"""Shared fixtures: every storage-backed test runs on SQLite and on PostgreSQL.

PostgreSQL runs when LINKGEN_TEST_DATABASE_URL is set (CI sets it and also
LINKGEN_TEST_REQUIRE_POSTGRES=1, which turns a skip into a failure). Each xdist worker uses its
own PostgreSQL schema; tables are truncated between tests. SQLite tests get a fresh copy of a
migrated database file. Schemas come from the models; a test compares them with the migrations.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from linkgen.config import Settings
from linkgen.factory import create_app
from linkgen.storage.db import make_engine
from linkgen.storage.models import Base

PG_URL = os.environ.get("LINKGEN_TEST_DATABASE_URL", "")
REQUIRE_PG = os.environ.get("LINKGEN_TEST_REQUIRE_POSTGRES", "") in ("1", "true", "yes")
TEST_DOMAINS = ("go.example.com", "localhost:8000", "127.0.0.1:8000", "localhost")


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    create_schema(f"sqlite:///{path}")
    return path


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis checks behaviour, not speed: its default 200 ms deadline per example turns a
    busy machine into a failure."""
    settings_profile = "linkgen"
    hypothesis.settings.register_profile(
        settings_profile, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
    )
    hypothesis.settings.load_profile(settings_profile)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per reason for the skipped tests (hundreds of PostgreSQL tests share one), each
    saying how to run them, instead of a line per test."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count} skipped: {reason}", yellow=True)


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """xdist's worker name ("gw0", ...), or "master" when the suite runs without xdist."""
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "master"


def require_postgres() -> None:
    """Skip (or, with LINKGEN_TEST_REQUIRE_POSTGRES, fail) when no PostgreSQL is configured."""
    if PG_URL:
        return
    message = (
        "PostgreSQL tests: set LINKGEN_TEST_DATABASE_URL="
        "postgresql+psycopg://USER@HOST:5432/DB to run them"
    )
    if REQUIRE_PG:
        pytest.fail(message + " (LINKGEN_TEST_REQUIRE_POSTGRES is set)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> Iterator[str]:
    """A migrated PostgreSQL schema of this xdist worker."""
    require_postgres()
    schema = f"lgtest_{worker_id}_{os.getpid()}"  # unique even when two runs share the server
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _pg_schema_url(schema)
    create_schema(url)
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def create_schema(url: str) -> None:
    """Create the schema from the models (tests/integration/test_migrations.py proves that the
    Alembic migrations build exactly this schema)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database: SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "linkgen.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Test settings on the parametrised database."""
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key",
        link_domains=TEST_DOMAINS,
        instance_path=tmp_path / "instance",
        testing=True,
        run_worker=False,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The app on a clean database."""
    application = create_app(settings)
    yield application
    application.extensions["linkgen"].close()


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Any]:
    """Build an app with some settings changed."""
    made: list[Flask] = []

    def _make(**changes: Any) -> Flask:
        application = create_app(replace(settings, **changes))
        made.append(application)
        return application

    yield _make
    for application in made:
        application.extensions["linkgen"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


class Api:
    """A test client that sends an admin API key and JSON."""

    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._call("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._call("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._call("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self._call("DELETE", path, **kwargs)


@pytest.fixture
def api_key(app: Flask) -> str:
    from linkgen.services.accounts import create_api_key

    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "tests")
    return raw


@pytest.fixture
def api(client: FlaskClient, api_key: str) -> Api:
    return Api(client, api_key)
