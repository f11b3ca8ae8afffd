"""`linkgen retention` deletes raw rows past the windows and keeps the reports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from linkgen.services.retention import delete_batch, delete_before
from linkgen.storage.counters import CounterKey, upsert_counters
from linkgen.storage.db import Database
from linkgen.storage.models import Click, Launch, StatCounter
from linkgen.storage.rawsql import OnSession
from linkgen.storage.types import utcnow


def _click(n: int, ts: datetime) -> Click:
    return Click(
        click_id=f"c{n}",
        ts=ts,
        template_id="AbCd",
        params={"pid": "Email"},
        platform="ios",
    )


def _launch(n: int, ts: datetime) -> Launch:
    return Launch(
        launch_id=f"l{n}",
        app_id="com.example",
        device_id=f"d{n}",
        first_launch=True,
        type="install",
        ts=ts,
        is_organic=True,
        explain={},
        request={},
        response={},
    )


def _db(app: Flask) -> Database:
    db: Database = app.extensions["linkgen"].db
    return db


def _count(db: Database, model: type[Click] | type[Launch]) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count(model.id))) or 0)


def test_retention_deletes_old_clicks_and_keeps_counters(app: Flask, runner: Any) -> None:
    db = _db(app)
    with db.session() as session:
        session.add_all(
            [_click(i, utcnow() - timedelta(days=120)) for i in range(25)]
            + [_click(100 + i, utcnow() - timedelta(days=5)) for i in range(3)]
        )
        key = CounterKey.of(utcnow(), template_id="AbCd", media_source="Email")
        upsert_counters(OnSession(session), {key: {"clicks": 28}})
    result = runner.invoke(args=["retention", "--older-than", "90", "--batch", "100"])
    assert result.exit_code == 0, result.output
    assert "deleted 25 click(s)" in result.output
    with db.session() as session:
        assert session.scalar(select(func.count(Click.id))) == 3
        assert session.scalar(select(func.sum(StatCounter.clicks))) == 28


def test_retention_refuses_a_window_shorter_than_the_lookback(runner: Any) -> None:
    result = runner.invoke(args=["retention", "--older-than", "7"])
    assert result.exit_code != 0
    assert "older-than" in result.output


def test_batches_go_oldest_first_and_resume_after_the_last_one(app: Flask) -> None:
    db = _db(app)
    now = utcnow()
    cutoff = now - timedelta(days=90)
    with db.session() as session:
        # Listed newest first, so that insertion (id) order is the reverse of time order.
        session.add_all([_click(i, cutoff - timedelta(hours=10 - i)) for i in range(10)])
        session.add(_click(99, now))
    with db.session() as session:
        n, since = delete_batch(session, Click, cutoff, 4)
    assert n == 4
    assert since == cutoff - timedelta(hours=7)  # the 4 oldest went: 10, 9, 8 and 7 hours old
    with db.session() as session:
        left = session.scalars(select(Click.click_id).order_by(Click.ts)).all()
    assert left == [f"c{i}" for i in range(4, 10)] + ["c99"]
    with db.session() as session:
        n, since = delete_batch(session, Click, cutoff, 4, since)
    assert (n, since) == (4, cutoff - timedelta(hours=3))
    with db.session() as session:
        n, since = delete_batch(session, Click, cutoff, 4, since)
    assert (n, since) == (2, None)  # fewer than a batch were left: done
    assert _count(db, Click) == 1


def test_rows_sharing_a_time_across_a_batch_boundary_all_go(app: Flask) -> None:
    # A burst of clicks in one instant: the batch takes the whole burst, since the next one
    # starts after that instant (otherwise the rest of the burst would be kept for ever).
    db = _db(app)
    old = utcnow() - timedelta(days=100)
    with db.session() as session:
        session.add_all([_click(i, old) for i in range(250)])
        session.add_all([_launch(i, old) for i in range(150)])
        session.add_all([_launch(1000 + i, utcnow()) for i in range(2)])
    deleted = delete_before(db, utcnow() - timedelta(days=90), batch=100)
    assert deleted == {"clicks": 250, "launches": 150}
    assert _count(db, Click) == 0
    assert _count(db, Launch) == 2


def test_nothing_old_deletes_nothing(app: Flask) -> None:
    db = _db(app)
    with db.session() as session:
        session.add(_click(1, utcnow()))
        session.add(_launch(1, utcnow()))
    assert delete_before(db, utcnow() - timedelta(days=90)) == {"clicks": 0, "launches": 0}
    assert (_count(db, Click), _count(db, Launch)) == (1, 1)


def test_the_worker_applies_retention_days_on_its_schedule(app: Flask) -> None:
    import threading
    import time

    from linkgen.delivery.worker import OutboxWorker, WorkerConfig

    db = _db(app)
    with db.session() as session:
        session.add_all(
            [_click(i, utcnow() - timedelta(days=40)) for i in range(30)]
            + [_click(100 + i, utcnow() - timedelta(days=20)) for i in range(3)]
            + [_launch(i, utcnow() - timedelta(days=40)) for i in range(5)]
            + [_launch(100, utcnow() - timedelta(days=1))]
        )
    config = WorkerConfig(retention_days=31, idle_poll=0.05, heartbeat_every=3600)
    worker = OutboxWorker(db, config=config)
    assert worker.retention is not None
    worker.retention.batch = 7  # several batches, each between two postback iterations
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while worker.retention.rounds < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
        worker.close()
    assert worker.retention.rounds >= 1
    assert worker.retention.deleted == {"clicks": 30, "launches": 5}
    assert _count(db, Click) == 3 and _count(db, Launch) == 1


def test_retention_days_setting() -> None:
    import pytest

    from linkgen.config import Settings, SettingsError

    assert Settings.from_env({}).retention_days is None
    assert Settings.from_env({"LINKGEN_RETENTION_DAYS": "90"}).retention_days == 90
    for bad in ("30", "ninety", "4000"):
        with pytest.raises(SettingsError, match="LINKGEN_RETENTION_DAYS"):
            Settings.from_env({"LINKGEN_RETENTION_DAYS": bad})
