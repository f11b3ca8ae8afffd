"""The outbox worker against the real CleverTap HTTP fake (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from linkgen.delivery.clevertap_client import CleverTapClient, UploadResult
from linkgen.delivery.worker import IterationStats, OutboxWorker, WorkerConfig, backoff_seconds
from linkgen.domain.clevertap import upload_endpoint
from linkgen.domain.postbacks import EventOutcome
from linkgen.services import catalog, integrations, outbox
from linkgen.services import postbacks as store
from linkgen.storage.db import Database
from linkgen.storage.models import Postback, WorkerHeartbeat
from linkgen.storage.types import utcnow
from tests.conftest import Api
from tests.fakes.fake_clevertap import Behaviour, FakeCleverTap

APP = "com.example.shop"
ACCOUNT = "W6K-556-4K6Z"
PASSCODE = "WVE-SMB-CXUL-SECRET"

# CleverTap calls get 1 s: an answer of the local fake is never that slow, even on a busy
# machine, and the tests of slow or lost answers make the fake answer LATE, far past it.
LATE = 4.0
FAST = WorkerConfig(
    timeout=1.0,
    lease=3.0,
    lease_margin=0.2,
    backoff_base=10.0,
    backoff_cap=600.0,
    idle_poll=0.01,
    heartbeat_every=0.0,
    threads=8,
    reconcile_after=60.0,
    events_retry_pause=0.01,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def fake() -> Iterator[FakeCleverTap]:
    with FakeCleverTap({ACCOUNT: PASSCODE}) as server:
        yield server


@pytest.fixture
def wapp(make_app: Callable[..., Flask], fake: FakeCleverTap) -> Flask:
    application = make_app(clevertap_api_base=fake.base_url)
    with application.extensions["linkgen"].db.session() as session:
        catalog.create_app_record(session, {"app_id": APP, "name": "Shop"})
    configure(application, {})
    return application


@pytest.fixture
def db(wapp: Flask) -> Database:
    database: Database = wapp.extensions["linkgen"].db
    return database


@pytest.fixture
def make_worker(wapp: Flask, db: Database) -> Iterator[Callable[..., OutboxWorker]]:
    made: list[OutboxWorker] = []
    api_base = wapp.extensions["linkgen"].settings.clevertap_api_base

    def _make(
        config: WorkerConfig = FAST, database: Database | None = None, **kwargs: Any
    ) -> OutboxWorker:
        worker = OutboxWorker(database or db, api_base=api_base, config=config, **kwargs)
        made.append(worker)
        return worker

    yield _make
    for worker in made:
        worker.close()


def configure(application: Flask, changes: dict[str, Any]) -> None:
    body = {
        "active": True,
        "account_id": ACCOUNT,
        "account_passcode": PASSCODE,
        "region": "EU1",
        "default_postbacks": "all_sources",
        **changes,
    }
    with application.extensions["linkgen"].db.session() as session:
        integrations.put_integration(session, APP, body, actor="tests", api_base=None)


def record(linkgen_id: str, *, identity: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "event",
        "ts": 1_700_000_000,
        "evtName": "Charged",
        "evtData": {"linkgen_id": linkgen_id, "Amount": 9.99},
    }
    if identity:
        out["objectId"] = f"ct-{linkgen_id}"
    return out


def insert(
    db: Database,
    count: int,
    *,
    prefix: str = "pb",
    created_at: datetime | None = None,
    region: str = "EU1",
    api_base: str | None = None,
) -> list[str]:
    """Queue `count` event postbacks directly; returns their linkgen ids."""
    now = utcnow()
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    with db.session() as session:
        session.add_all(
            Postback(
                linkgen_id=lid,
                app_id=APP,
                kind="event",
                source_id=lid,
                status="queued",
                record=record(lid),
                account_id=ACCOUNT,
                region=region,
                endpoint=upload_endpoint(region, api_base),
                attempts=0,
                next_attempt_at=now,
                created_at=created_at or now,
            )
            for lid in ids
        )
    return ids


def rows(db: Database) -> dict[str, Postback]:
    with db.session() as session:
        return {p.linkgen_id: p for p in session.scalars(select(Postback))}


def statuses(db: Database) -> dict[str, int]:
    with db.session() as session:
        result = session.execute(select(Postback.status, func.count()).group_by(Postback.status))
        return {status: int(n) for status, n in result}


# --- sending -------------------------------------------------------------------------------


def test_sends_queued_postbacks_with_account_headers(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 3)
    worker = make_worker()
    worker.beat()
    stats = worker.run_once()
    assert (stats.claimed, stats.sent, stats.calls) == (3, 3, 1)
    (upload,) = fake.uploads()
    assert upload.path == "/eu1/1/upload"
    assert upload.headers["x-clevertap-account-id"] == ACCOUNT
    assert upload.headers["x-clevertap-passcode"] == PASSCODE
    assert upload.headers["content-type"] == "application/json"
    assert upload.body == {"d": [record(i) for i in ids]}
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)
    for row in rows(db).values():
        assert row.status == "sent" and row.attempts == 1 and row.last_status == 200
        assert row.sent_at is not None and row.response == {"status": "success"}
        assert row.lease_until is None and row.next_attempt_at is None
        assert PASSCODE not in repr(row.record) + repr(row.response)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 1
    assert worker.run_once().claimed == 0  # nothing is sent twice
    assert len(fake.uploads()) == 1


def test_region_picks_the_host_path(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    configure(wapp, {"region": "IN1"})
    insert(db, 2, region="IN1")
    make_worker().run_once()
    assert [u.path for u in fake.uploads()] == ["/in1/1/upload"]


def test_region_corrected_after_enqueue_applies_to_waiting_rows(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    base = wapp.extensions["linkgen"].settings.clevertap_api_base
    insert(db, 2, region="EU1", api_base=base)
    configure(wapp, {"region": "ID"})
    make_worker().run_once()
    assert [u.path for u in fake.uploads()] == ["/id/1/upload"]
    assert {r.endpoint for r in rows(db).values()} == {upload_endpoint("ID", base)}


def test_at_most_1000_records_per_call(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 2_500)
    # 1,000-record calls: a timeout with room for a loaded CI machine (FAST's 1 s is for
    # the tests of slow answers).
    stats = make_worker(replace(FAST, timeout=5.0, lease=30.0)).run_once()
    assert stats.sent == 2_500 and stats.calls == 3
    assert sorted(len(u.records) for u in fake.uploads()) == [500, 1000, 1000]
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)


def test_partially_unprocessed_call_fails_exactly_those_records(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 6)
    refused = {ids[1], ids[4]}
    fake.enqueue(
        Behaviour.partial(
            lambda r: r["evtData"]["linkgen_id"] in refused, code=525, error="Invalid timestamp"
        )
    )
    stats = make_worker().run_once()
    assert (stats.sent, stats.failed) == (4, 2)
    for lid, row in rows(db).items():
        if lid in refused:
            assert row.status == "failed" and row.last_status == 200
            assert row.response == {"status": "fail", "code": 525, "error": "Invalid timestamp"}
            assert row.last_error is not None and "525" in row.last_error
        else:
            assert row.status == "sent"


def test_record_without_identity_fails_with_523(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    (lid,) = insert(db, 1)
    with db.session() as session:
        row = session.scalar(select(Postback).where(Postback.linkgen_id == lid))
        assert row is not None
        row.record = record(lid, identity=False)
    make_worker().run_once()
    got = rows(db)[lid]
    assert got.status == "failed" and got.response is not None and got.response["code"] == 523


def test_401_fails_at_once_and_is_not_retried(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    configure(wapp, {"account_passcode": "wrong-passcode"})
    insert(db, 3)
    clock = Clock()
    worker = make_worker(clock=clock)
    stats = worker.run_once()
    assert stats.failed == 3
    for row in rows(db).values():
        assert row.status == "failed" and row.last_status == 401 and row.attempts == 1
        assert row.last_error is not None and "401" in row.last_error
        assert "wrong-passcode" not in row.last_error
    clock.advance(3600)
    assert worker.run_once().claimed == 0
    assert len(fake.uploads()) == 1


def test_429_and_500_are_retried_with_backoff_then_sent(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    (lid,) = insert(db, 1)
    fake.enqueue(Behaviour.http_error(429), Behaviour.http_error(500))
    clock = Clock()
    start = clock.now
    worker = make_worker(clock=clock)

    assert worker.run_once().retried == 1
    first = rows(db)[lid]
    assert first.status == "queued" and first.attempts == 1 and first.last_status == 429
    assert first.next_attempt_at is not None
    first_delay = (first.next_attempt_at - start).total_seconds()
    assert 7.5 <= first_delay <= 12.5  # 10 s +/- 25 %
    assert worker.run_once().claimed == 0  # not due yet

    clock.now = first.next_attempt_at
    assert worker.run_once().retried == 1
    second = rows(db)[lid]
    assert second.attempts == 2 and second.last_status == 500
    assert second.next_attempt_at is not None
    second_delay = (second.next_attempt_at - clock.now).total_seconds()
    assert 15 <= second_delay <= 25  # doubled

    clock.now = second.next_attempt_at
    assert worker.run_once().sent == 1
    done = rows(db)[lid]
    assert done.status == "sent" and done.attempts == 3 and done.last_status == 200
    assert done.last_error is None
    assert fake.received_linkgen_ids() == {lid: 1}


def test_backoff_is_capped() -> None:
    import random

    config = WorkerConfig(backoff_base=10, backoff_cap=60, jitter=0)
    rng = random.Random(1)
    assert [backoff_seconds(n, config, rng) for n in (1, 2, 3, 4, 10)] == [10, 20, 40, 60, 60]


def test_answer_slower_than_the_timeout_is_in_doubt_then_resent_when_clevertap_lacks_it(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    (lid,) = insert(db, 1)
    fake.enqueue(Behaviour.hang(LATE, then=Behaviour.http_error(500)))  # stores nothing
    clock = Clock()
    worker = make_worker(clock=clock)
    began = time.monotonic()
    assert worker.run_once().doubted == 1
    assert time.monotonic() - began < LATE - 1  # the 1 s timeout, not the fake's delay
    row = rows(db)[lid]
    assert row.status == "in_doubt" and row.last_status is None
    assert row.last_error is not None and "did not answer" in row.last_error
    assert row.next_attempt_at == clock.now + timedelta(seconds=FAST.reconcile_after)
    clock.advance(FAST.reconcile_after - 1)
    assert worker.run_once().checked == 0  # CleverTap may not show it yet
    clock.advance(1)
    stats = worker.run_once()
    assert (stats.checked, stats.resent, stats.confirmed) == (1, 1, 0)
    assert worker.run_once().sent == 1
    assert fake.received_linkgen_ids() == {lid: 1}
    assert rows(db)[lid].response == {"status": "success"}


def test_transient_failures_give_up_24_hours_after_creation(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    now = utcnow()
    (old,) = insert(db, 1, prefix="old", created_at=now - timedelta(hours=24, seconds=1))
    (young,) = insert(db, 1, prefix="young", created_at=now - timedelta(hours=23, minutes=59))
    fake.enqueue(Behaviour.http_error(503))
    make_worker().run_once()
    got = rows(db)
    assert got[old].status == "failed" and got[old].last_status == 503
    assert got[old].last_error is not None and "Gave up after 24 h" in got[old].last_error
    assert got[young].status == "queued"
    deadline = got[young].created_at + timedelta(hours=24)
    assert got[young].next_attempt_at is not None and got[young].next_attempt_at <= deadline


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"active": False}, "partner_inactive"),
        ({"account_id": None, "account_passcode": None, "account_token": None}, "no_credentials"),
    ],
)
def test_rows_of_an_integration_switched_off_since_enqueue_are_skipped(
    wapp: Flask,
    db: Database,
    fake: FakeCleverTap,
    make_worker: Callable[..., OutboxWorker],
    changes: dict[str, Any],
    reason: str,
) -> None:
    insert(db, 2)
    configure(wapp, changes)
    assert make_worker().run_once().skipped == 2
    assert fake.uploads() == []
    assert {(r.status, r.reason, r.attempts) for r in rows(db).values()} == {("skipped", reason, 0)}


def test_enqueued_event_postback_is_delivered(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    configure(
        wapp,
        {
            "in_app_events": {
                "enabled": True,
                "mappings": [
                    {
                        "sdk_event": "af_purchase",
                        "partner_event": "Charged",
                        "sending_option": "all_sources",
                        "send_revenue": "values_and_revenue",
                    }
                ],
            }
        },
    )
    base = wapp.extensions["linkgen"].settings.clevertap_api_base
    outcome = EventOutcome(
        linkgen_id="event-abc",
        customer_user_id="ct-user-1",
        ts=utcnow(),
        event_name="af_purchase",
        event_values={"af_revenue": "9.99", "af_currency": "EUR"},
    )
    with db.session() as session:
        row = outbox.queue_postback(session, app_id=APP, outcome=outcome, api_base=base)
        assert row.status == "queued"
    assert make_worker().run_once().sent == 1
    (upload,) = fake.uploads()
    (sent,) = upload.records
    assert sent["objectId"] == "ct-user-1" and sent["evtName"] == "Charged"
    assert sent["evtData"]["Amount"] == 9.99 and sent["evtData"]["linkgen_id"] == "event-abc"


# --- concurrency and crashes ------------------------------------------------------------------


def test_two_workers_at_once_never_send_a_record_twice(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 3_000)
    fake.set_fault_ratio(0.3, seed=7)
    config = WorkerConfig(
        batch_size=100,
        claim_limit=300,
        timeout=2.0,
        lease=30.0,
        backoff_base=0.01,
        backoff_cap=0.05,
        threads=4,
    )
    url = wapp.extensions["linkgen"].settings.database_url
    workers = [make_worker(config, database=Database(url)) for _ in range(2)]
    _drain_together(workers, db, fake, ids, seconds=60)
    assert any(u.status != 200 for u in fake.uploads())  # the faults did happen


def test_rows_of_a_worker_killed_before_its_call_are_sent_once_after_the_lease(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 5)
    clock = Clock()
    lease_until = clock.now + timedelta(seconds=FAST.lease)
    with db.session() as session:  # a worker claims, then dies before its call starts
        assert len(store.claim_due(session, now=clock.now, lease_until=lease_until, limit=10)) == 5
    survivor = make_worker(clock=clock)
    assert survivor.run_once().claimed == 0  # still leased
    clock.advance(FAST.lease + 0.1)
    stats = survivor.run_once()
    # The call never started, so nothing can have reached CleverTap: no doubt, no lookup.
    assert (stats.expired_requeued, stats.expired_in_doubt) == (5, 0)
    assert (stats.claimed, stats.sent) == (5, 5)
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)
    assert fake.events_requests() == []
    assert {r.attempts for r in rows(db).values()} == {2}  # the dead worker's try counts


def test_a_worker_too_close_to_its_lease_end_gives_rows_back_unsent(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    insert(db, 2)
    real = Clock()
    calls = iter([real.now, real.now + timedelta(seconds=FAST.lease - 0.1)])
    worker = make_worker(clock=lambda: next(calls, real.now))
    stats = worker.run_once()
    assert (stats.claimed, stats.released, stats.sent) == (2, 2, 0)
    assert fake.uploads() == []
    assert {(r.status, r.attempts) for r in rows(db).values()} == {("queued", 0)}


def test_run_loop_stops_on_request_and_clears_its_heartbeat(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 20)
    worker = make_worker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while statuses(db).get("sent") != len(ids) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert statuses(db) == {"sent": 20}
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 0


# --- calls whose outcome is unknown: reconciliation with CleverTap's events API ---------------


class DiesAfterUpload(CleverTapClient):
    """Uploads for real, then "dies" before the worker can record CleverTap's answer."""

    def upload(self, *args: Any, **kwargs: Any) -> UploadResult:
        super().upload(*args, **kwargs)
        raise RuntimeError("worker killed after CleverTap answered")


class DiesBeforeUpload(CleverTapClient):
    """Dies once the call has started (its start is committed) but before any byte is sent."""

    def upload(self, *args: Any, **kwargs: Any) -> UploadResult:
        raise RuntimeError("worker killed before the request went out")


def crash_mid_call(
    make_worker: Callable[..., OutboxWorker], clock: Clock, client: CleverTapClient
) -> None:
    """A worker sends (or not) and dies mid-call; its rows stay `sending` under its lease."""
    with client:
        stats = make_worker(clock=clock, client=client).run_once()
    assert stats.errors == ["RuntimeError"] and stats.sent == 0


def test_worker_killed_after_clevertap_stored_the_call_is_confirmed_not_resent(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 5)
    clock = Clock()
    crash_mid_call(make_worker, clock, DiesAfterUpload(timeout=FAST.timeout))
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)  # CleverTap has them
    assert statuses(db) == {"sending": 5}

    survivor = make_worker(clock=clock)
    clock.advance(FAST.lease + 0.1)
    stats = survivor.run_once()
    assert (stats.expired_in_doubt, stats.claimed, stats.checked) == (5, 0, 0)
    assert statuses(db) == {"in_doubt": 5}
    in_doubt = _api(wapp).get("/api/v1/postbacks?status=in_doubt").get_json()["items"]
    assert len(in_doubt) == 5 and in_doubt[0]["next_attempt_at"] is not None
    assert "stopped during its call" in in_doubt[0]["last_error"]

    clock.advance(FAST.reconcile_after)
    stats = survivor.run_once()
    assert (stats.checked, stats.confirmed, stats.resent, stats.claimed) == (5, 5, 0, 0)
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)  # not sent again
    assert len(fake.uploads()) == 1
    for row in rows(db).values():
        assert row.status == "sent" and row.sent_at is not None and row.last_error is None
        assert row.response == {"status": "success", "confirmed_by": "clevertap_events_api"}
    cursor_call, page = fake.events_requests()[:2]
    assert cursor_call.method == "POST" and cursor_call.path.startswith("/eu1/1/events.json?")
    assert cursor_call.headers["x-clevertap-account-id"] == ACCOUNT
    assert cursor_call.headers["x-clevertap-passcode"] == PASSCODE
    # ts 1_700_000_000 is 2023-11-14 UTC; the account's own day may be either neighbour.
    assert cursor_call.body == {"event_name": "Charged", "from": 20231113, "to": 20231115}
    assert page.method == "GET" and "cursor=" in page.path
    assert survivor.run_once().claimed == 0


def test_worker_killed_before_its_request_went_out_is_resent_once(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 3)
    clock = Clock()
    crash_mid_call(make_worker, clock, DiesBeforeUpload(timeout=FAST.timeout))
    assert fake.uploads() == []
    survivor = make_worker(clock=clock)
    clock.advance(FAST.lease + 0.1)
    assert survivor.run_once().expired_in_doubt == 3  # its start was committed: in doubt
    clock.advance(FAST.reconcile_after)
    stats = survivor.run_once()
    assert (stats.checked, stats.confirmed, stats.resent) == (3, 0, 3)
    assert statuses(db) == {"queued": 3}
    assert "did not list" in (rows(db)[ids[0]].last_error or "")
    assert survivor.run_once().sent == 3
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)
    assert {r.response.get("confirmed_by") for r in rows(db).values() if r.response} == {None}


def test_timed_out_call_that_clevertap_stored_is_confirmed_not_resent(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 4)
    fake.enqueue(Behaviour.lost_answer(LATE))  # stored at once, answered after the timeout
    clock = Clock()
    worker = make_worker(clock=clock)
    stats = worker.run_once()
    assert (stats.doubted, stats.retried, stats.sent) == (4, 0, 0)
    clock.advance(FAST.reconcile_after)
    stats = worker.run_once()
    assert (stats.confirmed, stats.resent) == (4, 0)
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)
    assert statuses(db) == {"sent": 4}


def test_events_api_failures_keep_rows_in_doubt_with_backoff_then_recover(
    db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 2)
    fake.enqueue(Behaviour.lost_answer(LATE))
    clock = Clock()
    worker = make_worker(clock=clock)
    worker.run_once()
    clock.advance(FAST.reconcile_after)
    fail = Behaviour.http_error(500)
    fake.enqueue_events(fail, fail, fail)  # the cursor request fails, and both its retries
    stats = worker.run_once()
    assert (stats.checked, stats.deferred, stats.confirmed, stats.resent) == (2, 2, 0, 0)
    first = rows(db)[ids[0]]
    assert first.status == "in_doubt" and first.response == {"status": "unknown", "lookups": 1}
    assert first.last_error is not None and "500" in first.last_error
    assert first.next_attempt_at is not None
    delay = (first.next_attempt_at - clock.now).total_seconds()
    assert 7.5 <= delay <= 12.5  # backoff_base 10 s +/- 25 %
    assert worker.run_once().checked == 0  # not before the backoff

    clock.now = first.next_attempt_at
    fake.enqueue_events(Behaviour.success(), Behaviour.http_error(401))  # a page: no retry
    assert worker.run_once().deferred == 2
    second = rows(db)[ids[0]]
    assert second.response == {"status": "unknown", "lookups": 2}
    assert second.last_error is not None and "401" in second.last_error
    assert PASSCODE not in second.last_error
    assert second.next_attempt_at is not None
    assert 15 <= (second.next_attempt_at - clock.now).total_seconds() <= 25  # doubled

    clock.now = second.next_attempt_at
    stats = worker.run_once()
    assert (stats.confirmed, stats.resent) == (2, 0)
    assert fake.received_linkgen_ids() == dict.fromkeys(ids, 1)
    assert len(fake.uploads()) == 1


def test_in_doubt_rows_fail_plainly_at_their_deadline_and_can_be_retried_by_hand(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    (lid,) = insert(db, 1, created_at=utcnow() - timedelta(hours=23, minutes=59, seconds=50))
    fake.enqueue(Behaviour.lost_answer(LATE))
    clock = Clock()
    worker = make_worker(clock=clock)
    worker.run_once()
    clock.advance(FAST.reconcile_after)
    fake.enqueue_events(*[Behaviour.http_error(503)] * FAST.events_attempts)
    assert worker.run_once().failed == 1
    row = rows(db)[lid]
    assert row.status == "failed" and row.response == {"status": "unknown"}
    assert row.last_error is not None
    assert "may or may not have been delivered" in row.last_error
    assert "retry it by hand" in row.last_error
    resp = _api(wapp).post(f"/api/v1/postbacks/{row.id}/retry")
    assert resp.status_code == 200 and resp.get_json()["status"] == "queued"


def test_in_doubt_rows_of_a_changed_account_are_not_looked_up_with_the_wrong_passcode(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    (lid,) = insert(db, 1)
    fake.enqueue(Behaviour.lost_answer(LATE))
    clock = Clock()
    worker = make_worker(clock=clock)
    worker.run_once()
    configure(wapp, {"account_id": "OTHER-ACC", "account_passcode": "other-pass"})
    clock.advance(FAST.reconcile_after)
    stats = worker.run_once()
    assert (stats.deferred, stats.lookups) == (1, 0)
    assert fake.events_requests() == []
    row = rows(db)[lid]
    assert row.status == "in_doubt" and "cannot be asked" in (row.last_error or "")
    configure(wapp, {})  # the account is back
    assert row.next_attempt_at is not None
    clock.now = row.next_attempt_at
    assert worker.run_once().confirmed == 1
    assert fake.received_linkgen_ids() == {lid: 1}


def test_two_workers_with_timeouts_and_lost_answers_never_send_a_record_twice(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    ids = insert(db, 2_000)
    # Each kind of fault happens at least once whatever the timing (the queued behaviours come
    # first), then at random: an answer lost after the records were stored, a call that stored
    # nothing and got no answer, and a failed look-up in the events API.
    late = 0.6  # past the workers' 0.4 s timeout
    fake.enqueue(Behaviour.lost_answer(late), Behaviour.hang(late, then=Behaviour.http_error(504)))
    fake.enqueue_events(Behaviour.http_error(500))
    fake.set_fault_ratio(
        0.3, seed=11, statuses=(429, 500, 503, "timeout", "hang"), timeout_delay=late
    )
    fake.set_events_fault_ratio(0.2)
    config = WorkerConfig(
        batch_size=100,
        claim_limit=300,
        timeout=0.4,
        lease=30.0,
        backoff_base=0.01,
        backoff_cap=0.05,
        threads=4,
        reconcile_after=0.05,
        events_batch_size=250,
        events_attempts=1,  # every events API failure defers the check: that path runs too
    )
    url = wapp.extensions["linkgen"].settings.database_url
    workers = [make_worker(config, database=Database(url)) for _ in range(2)]
    totals = _drain_together(workers, db, fake, ids, seconds=90)
    # The faults did happen: calls went unanswered, some had been stored, some had not.
    assert sum(t.confirmed for t in totals) > 0 and sum(t.resent for t in totals) > 0
    assert sum(t.deferred for t in totals) > 0  # and the events API failed now and then


def _drain_together(
    workers: list[OutboxWorker],
    db: Database,
    fake: FakeCleverTap,
    ids: list[str],
    *,
    seconds: float,
) -> list[IterationStats]:
    """Run the workers on threads of their own until every row is sent; then check that both
    took part and that CleverTap received each record exactly once. Each worker's counts."""
    totals = [IterationStats() for _ in workers]
    errors: list[Exception] = []

    def drain(index: int) -> None:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                stats = workers[index].run_once()
                totals[index].merge(stats)
                totals[index].claimed += stats.claimed
                totals[index].checked += stats.checked
                if statuses(db).get("sent", 0) == len(ids):
                    return
                if not stats.claimed and not stats.checked:
                    time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread's assert
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    for worker in workers:
        worker.db.dispose()
    assert errors == []
    assert statuses(db) == {"sent": len(ids)}
    assert all(t.claimed for t in totals), totals  # every worker took part
    received = fake.received_linkgen_ids()
    assert set(received) == set(ids)
    assert [lid for lid, n in received.items() if n > 1] == []
    return totals


# --- the postback log API and replay ----------------------------------------------------------


def _api(application: Flask) -> Api:
    from linkgen.services.accounts import create_api_key

    with application.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "tests")
    return Api(application.test_client(), raw)


def test_retry_endpoint_requeues_a_failed_postback(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    api = _api(wapp)
    (lid,) = insert(db, 1, created_at=utcnow() - timedelta(days=3))
    fake.enqueue(Behaviour.http_error(500))
    worker = make_worker()
    worker.run_once()
    row = rows(db)[lid]
    assert row.status == "failed"
    resp = api.post(f"/api/v1/postbacks/{row.id}/retry")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "queued"
    assert worker.run_once().sent == 1  # a fresh day of retries, due now
    assert api.get(f"/api/v1/postbacks/{row.id}").get_json()["status"] == "sent"
    again = api.post(f"/api/v1/postbacks/{row.id}/retry")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert api.post("/api/v1/postbacks/999999/retry").status_code == 404
    assert api.post("/api/v1/postbacks/abc/retry").status_code == 404


def test_retry_of_a_skipped_postback_is_409(wapp: Flask, db: Database) -> None:
    api = _api(wapp)
    outcome = EventOutcome(linkgen_id="ev-skip", customer_user_id=None, ts=utcnow(), event_name="x")
    with db.session() as session:
        row = outbox.queue_postback(session, app_id=APP, outcome=outcome)
        assert row.status == "skipped"
        row_id = row.id
    assert api.post(f"/api/v1/postbacks/{row_id}/retry").status_code == 409
    got = api.get(f"/api/v1/postbacks/{row_id}").get_json()
    assert got["reason"] == "no_customer_user_id" and got["record"] is None


def test_postback_list_filters_and_pages_newest_first(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    api = _api(wapp)
    ids = insert(db, 5)
    fake.enqueue(Behaviour.partial(lambda r: r["evtData"]["linkgen_id"] == ids[0], code=513))
    make_worker().run_once()
    insert(db, 2, prefix="later")
    resp = api.get(f"/api/v1/postbacks?app_id={APP}&limit=3")
    assert resp.status_code == 200
    page = resp.get_json()
    assert [i["status"] for i in page["items"]] == ["queued", "queued", "sent"]
    item = page["items"][2]
    assert set(item) >= {
        "id",
        "app_id",
        "kind",
        "status",
        "reason",
        "record",
        "attempts",
        "last_status",
        "response",
        "last_error",
        "created_at",
        "sent_at",
        "endpoint",
    }
    assert item["record"]["evtData"]["linkgen_id"] == ids[4] and item["last_status"] == 200
    rest = api.get(f"/api/v1/postbacks?app_id={APP}&limit=3&cursor={page['next']}").get_json()
    assert len(rest["items"]) == 3
    last = api.get(f"/api/v1/postbacks?app_id={APP}&limit=3&cursor={rest['next']}").get_json()
    assert len(last["items"]) == 1 and last["next"] is None
    failed = api.get("/api/v1/postbacks?status=failed&kind=event").get_json()["items"]
    assert [f["record"]["evtData"]["linkgen_id"] for f in failed] == [ids[0]]
    assert failed[0]["response"]["code"] == 513
    assert api.get("/api/v1/postbacks?kind=install").get_json()["items"] == []
    assert api.get("/api/v1/postbacks?app_id=com.other.app").get_json()["items"] == []
    text = api.get("/api/v1/postbacks?limit=500").get_data(as_text=True)
    assert PASSCODE not in text


def _ui_client(application: Flask) -> FlaskClient:
    from linkgen.services.accounts import create_user

    with application.extensions["linkgen"].db.session() as session:
        create_user(session, "ops@example.com", "a long enough password")
    client = application.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    form = {"csrf_token": token.group(1), "email": "ops@example.com"}
    resp = client.post("/login", data={**form, "password": "a long enough password"})
    assert resp.status_code == 302
    return client


def test_postback_log_says_what_in_doubt_and_confirmed_rows_mean(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    confirmed_id, doubtful_id = insert(db, 2)
    clock = Clock()
    worker = make_worker(clock=clock, config=replace(FAST, batch_size=1))
    fake.enqueue(Behaviour.lost_answer(LATE), Behaviour.lost_answer(LATE))
    worker.run_once()
    clock.advance(FAST.reconcile_after)
    with db.session() as session:  # only the first is due for its check
        session.execute(
            update(Postback)
            .where(Postback.linkgen_id == doubtful_id)
            .values(next_attempt_at=clock.now + timedelta(hours=1))
        )
    assert worker.run_once().confirmed == 1

    api = _api(wapp)
    (doubtful,) = api.get("/api/v1/postbacks?status=in_doubt").get_json()["items"]
    assert doubtful["record"]["evtData"]["linkgen_id"] == doubtful_id
    assert doubtful["next_attempt_at"] is not None
    (confirmed,) = api.get("/api/v1/postbacks?status=sent").get_json()["items"]
    assert confirmed["response"]["confirmed_by"] == "clevertap_events_api"
    assert confirmed["record"]["evtData"]["linkgen_id"] == confirmed_id
    for value in ("queued", "sent", "failed", "skipped", "sending"):  # the contract's, and more
        assert api.get(f"/api/v1/postbacks?status={value}").status_code == 200

    ui = _ui_client(wapp)
    page = ui.get("/postbacks").get_data(as_text=True)
    assert "Unconfirmed" in page
    assert "sends it again only if CleverTap does not have it" in page
    assert "Confirmed by CleverTap&#39;s events API" in page
    filtered = ui.get("/postbacks?status=in_doubt").get_data(as_text=True)
    assert filtered.count('class="card postback status-in_doubt"') == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("kind=click", "kind"),
        ("limit=0", "limit"),
        ("cursor=%%", "cursor"),
    ],
)
def test_bad_postback_filters_are_400(wapp: Flask, query: str, field: str) -> None:
    resp = _api(wapp).get(f"/api/v1/postbacks?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == field


def test_unknown_postback_is_404(wapp: Flask) -> None:
    api = _api(wapp)
    assert api.get("/api/v1/postbacks/12345").status_code == 404
    assert api.get("/api/v1/postbacks/x1").status_code == 404


def test_replay_command_requeues_failed_postbacks(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    now = utcnow()
    old = insert(db, 2, prefix="old", created_at=now - timedelta(days=5))
    new = insert(db, 3, prefix="new", created_at=now - timedelta(hours=1))
    fake.enqueue(Behaviour.http_error(400))
    make_worker().run_once()
    assert statuses(db) == {"failed": 5}
    runner = wapp.test_cli_runner()
    result = runner.invoke(args=["replay-postbacks", "--app", APP, "--since", "2d"])
    assert result.exit_code == 0, result.output
    assert "queued 3" in result.output
    got = rows(db)
    assert {got[i].status for i in new} == {"queued"} and {got[i].status for i in old} == {"failed"}
    result = runner.invoke(args=["replay-postbacks", "--since", "yesterday-ish"])
    assert result.exit_code != 0
    result = runner.invoke(
        args=["replay-postbacks", "--since", (now - timedelta(days=6)).date().isoformat()]
    )
    assert "queued 2" in result.output
    assert make_worker().run_once().sent == 5


def _echoes(secret: str) -> dict[str, str]:
    import base64
    from urllib.parse import quote

    raw = secret.encode()
    return {
        "plain": secret,
        "b64": base64.b64encode(raw).decode(),
        "b64_bare": base64.b64encode(raw).decode().rstrip("="),
        "urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "percent": quote(secret, safe=""),
        "percent_lower": quote(secret, safe="").replace("%2D", "%2d"),
    }


def _assert_no_secret(text: str, secret: str) -> None:
    for name, form in _echoes(secret).items():
        assert form not in text, (name, form)


def test_secrets_echoed_by_clevertap_are_scrubbed_before_anything_is_stored(
    wapp: Flask, db: Database, fake: FakeCleverTap, make_worker: Callable[..., OutboxWorker]
) -> None:
    configure(wapp, {"account_token": "tok-ECHOED-token-1"})
    (refused, partly) = insert(db, 2)
    echoed = {**_echoes(PASSCODE), "token": "tok-ECHOED-token-1"}
    fake.enqueue(
        # The first call: refused, CleverTap's answer stored with its row.
        Behaviour.http_error(400, body={"status": "fail", "error": f"bad {echoed}", **echoed}),
        # The second: processed, but its record refused on its own, with an echoing error.
        Behaviour.partial(lambda record: True, code=555, error=f"echo {echoed}"),
    )
    make_worker(config=replace(FAST, batch_size=1, threads=1)).run_once()
    stored = rows(db)
    assert stored[refused].status == "failed" and stored[partly].status == "failed"
    api = _api(wapp)
    listing = api.get("/api/v1/postbacks").get_data(as_text=True)
    page = _ui_client(wapp).get("/postbacks").get_data(as_text=True)
    for row in stored.values():
        text = json.dumps(row.response) + (row.last_error or "")
        assert "***" in text
        for where in (text, listing, page):
            _assert_no_secret(where, PASSCODE)
            assert "tok-ECHOED-token-1" not in where


def test_every_form_of_a_secret_is_scrubbed() -> None:
    from linkgen.domain.clevertap import scrub_secrets

    secret = "WVE-SMB-CXUL/+SECRET"
    forms = _echoes(secret)
    value = {"error": " ".join(forms.values()), "list": list(forms.values()), forms["b64"]: 1}
    out = json.dumps(scrub_secrets(value, [secret, None]))
    _assert_no_secret(out, secret)
    assert scrub_secrets("nothing here", [secret]) == "nothing here"
    assert scrub_secrets({"a": 1}, []) == {"a": 1}
