"""`linkgen backup` / `linkgen restore`: a copy taken under click load holds every click committed
before it began, and restores into a fresh instance; a restore refuses a damaged or foreign file
and a database still in use."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text

from linkgen.config import Settings
from linkgen.factory import create_app
from linkgen.services.backup import pg_dump_command, sqlite_path
from linkgen.storage.migrate import alembic_config, upgrade
from linkgen.storage.models import Click
from tests.conftest import Api
from tests.integration.clicksetup import ANDROID, TEMPLATE, make_setup

DEADLINE = 120.0  # seconds: generous, for a loaded machine; the test waits for events, not time


class ClickLoad:
    """Threads clicking a long link on Android; each click id is kept once its redirect came."""

    def __init__(self, app: Flask, threads: int = 4) -> None:
        self.app = app
        self.done: list[str] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.more = threading.Condition(self.lock)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, n: int) -> None:
        client = self.app.test_client()
        i = 0
        while not self.stop.is_set():
            i += 1
            resp = client.get(
                f"/{TEMPLATE}?pid=Email&c=load{n}&af_sub1={i}",
                headers={"Host": "go.example.com", "User-Agent": ANDROID},
                environ_base={"REMOTE_ADDR": f"198.51.100.{n + 1}"},
            )
            if resp.status_code != 302:
                with self.lock:
                    self.errors.append(f"{resp.status_code}")
                continue
            referrer = parse_qs(urlsplit(resp.headers["Location"]).query)["referrer"][0]
            with self.more:
                self.done.append(parse_qs(referrer)["af_tranid"][0])
                self.more.notify_all()

    def __enter__(self) -> ClickLoad:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=DEADLINE)

    def wait_for(self, count: int) -> list[str]:
        """Wait until `count` clicks were answered; returns the ids answered so far."""
        with self.more:
            assert self.more.wait_for(lambda: len(self.done) >= count, timeout=DEADLINE)
            return list(self.done)


def _click_ids(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.scalars(select(Click.click_id)))
    finally:
        engine.dispose()


def _migrated_sqlite(tmp_path: Path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    return url


def test_backup_under_click_load_restores_every_click_committed_before_it(
    app: Flask, client: FlaskClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    make_setup(app, client, api)
    url = settings.database_url
    if sqlite_path(url) is not None:
        command.stamp(alembic_config(url), "head")  # the test schema comes from the models
    dest = tmp_path / "backups" / "linkgen.backup"
    with ClickLoad(app) as load:
        load.wait_for(40)
        with load.lock:
            before = set(load.done)  # answered, hence committed, before the backup begins
        result = app.test_cli_runner().invoke(args=["backup", str(dest)])
        assert result.exit_code == 0, result.output
        # The load went on during and after the backup.
        load.wait_for(len(before) + 40)
    assert not load.errors
    assert dest.is_file()
    everything = _click_ids(url)
    assert before <= everything

    if sqlite_path(url) is not None:
        # A fresh instance, restored from the backup.
        fresh = replace(
            settings,
            database_url=_migrated_sqlite(tmp_path, "fresh.db"),
            instance_path=tmp_path / "fresh",
        )
    else:
        fresh = settings  # the same schema, emptied: pg_restore --clean puts it all back
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM clicks"))
        engine.dispose()
        assert not _click_ids(url)
    other = create_app(fresh)
    try:
        result = other.test_cli_runner().invoke(args=["restore", str(dest)])
        assert result.exit_code == 0, result.output
    finally:
        other.extensions["linkgen"].close()
    restored = _click_ids(fresh.database_url)
    missing = before - restored
    assert not missing, f"{len(missing)} committed click(s) missing from the backup"
    assert restored <= everything  # nothing invented
    # The restored instance serves: its clicks are there through the app too.
    served = create_app(fresh)
    try:
        with served.extensions["linkgen"].db.sessions() as session:
            assert session.scalar(select(Click.id).limit(1)) is not None
    finally:
        served.extensions["linkgen"].close()


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
        secret_key="test-secret-key",
        link_domains=("go.example.com",),
        instance_path=tmp_path / "instance",
        testing=True,
        run_worker=False,
    )


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[tuple[Flask, Path]]:
    application = create_app(_settings(_migrated_sqlite(tmp_path, "linkgen.db"), tmp_path))
    yield application, tmp_path / "linkgen.db"
    application.extensions["linkgen"].close()


def _backup(app: Flask, dest: Path) -> None:
    result = app.test_cli_runner().invoke(args=["backup", str(dest)])
    assert result.exit_code == 0, result.output


def test_restore_refuses_a_database_in_use(sqlite_app: tuple[Flask, Path], tmp_path: Path) -> None:
    app, db = sqlite_app
    dest = tmp_path / "b.db"
    _backup(app, dest)
    before = db.read_bytes()
    server = sqlite3.connect(db)  # another process's connection, as a running server holds
    try:
        server.execute("SELECT count(*) FROM clicks").fetchone()
        result = app.test_cli_runner().invoke(args=["restore", str(dest)])
    finally:
        server.close()
    assert result.exit_code != 0
    assert "in use" in result.output and "stop linkgen serve" in result.output
    assert db.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("garbage", "not a SQLite database"),
        ("no_revision", "not a linkgen database"),
        ("future_revision", "does not know"),
    ],
)
def test_restore_refuses_a_file_that_is_not_a_good_backup(
    sqlite_app: tuple[Flask, Path], tmp_path: Path, damage: str, message: str
) -> None:
    app, db = sqlite_app
    bad = tmp_path / "bad.db"
    if damage == "garbage":
        bad.write_bytes(b"SQLite format 3\x00" + b"\x07" * 8192)
    else:
        _backup(app, bad)
        conn = sqlite3.connect(bad)
        if damage == "no_revision":
            conn.execute("DROP TABLE alembic_version")
        else:
            conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        conn.commit()
        conn.close()
    before = db.read_bytes()
    result = app.test_cli_runner().invoke(args=["restore", str(bad)])
    assert result.exit_code != 0
    assert message in result.output
    assert db.read_bytes() == before


def test_restore_of_an_older_schema_says_to_upgrade(
    sqlite_app: tuple[Flask, Path], tmp_path: Path
) -> None:
    app, _ = sqlite_app
    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(old_url, "0001")
    result = app.test_cli_runner().invoke(args=["restore", str(tmp_path / "old.db")])
    assert result.exit_code == 0, result.output
    assert "linkgen db upgrade" in result.output


def test_postgres_backup_without_pg_dump_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg://linkgen:s3cret@db.internal:5433/linkgen"
    application = create_app(_settings(url, tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump there
    try:
        result = application.test_cli_runner().invoke(args=["backup", str(tmp_path / "x.dump")])
    finally:
        application.extensions["linkgen"].close()
    assert result.exit_code != 0
    expected = pg_dump_command(url, tmp_path / "x.dump").shell()
    assert expected in result.output
    assert "--host db.internal --port 5433 --username linkgen --dbname linkgen" in expected
    assert "s3cret" not in result.output  # the password stays out of the printed command
