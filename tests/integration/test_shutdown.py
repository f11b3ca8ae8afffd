"""Graceful shutdown with real processes: `linkgen serve` and `linkgen worker` under SIGTERM.

`linkgen serve` (granian, one web worker, and the postback worker subprocess) runs on a free
127.0.0.1 port against the test database while client threads click a short link on keep-alive
connections, each click carrying a unique marker, and one slow API request (a bulk import) is in
flight. Then SIGTERM goes to the serve process only. Checked: every request sent before the
signal was answered (none reset), every click whose redirect arrived is stored and counted,
the slow request completed and its links are stored, the command exits 0 by itself within
STOP_BOUND seconds, its web worker and its postback worker are gone, and the postback worker
removed its heartbeat. On SQLite also: the WAL was checkpointed away, i.e. every connection
was closed cleanly (`linkgen.runtime.close_on_exit`).

`linkgen worker` alone: SIGTERM while CleverTap (the HTTP fake) is still answering a batch; the
batch is finished and recorded (every row `sent`, none left `sending`), the heartbeat removed,
exit 0.

Every wait is bounded; only the processes started here are stopped, by PID, in `finally`.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from benchmarks.common import child_pids, free_port, server_env
from linkgen.services import catalog, integrations
from linkgen.storage.db import Database
from linkgen.storage.models import Click, Link, Postback, StatCounter, WorkerHeartbeat
from tests.fakes.fake_clevertap import Behaviour, FakeCleverTap
from tests.integration.test_postback_worker import ACCOUNT, PASSCODE, insert
from tests.integration.test_postback_worker import APP as APP_ID

LINKGEN = str(Path(sys.executable).with_name("linkgen"))
API_KEY = "shutdown-test-key-0123456789"
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
STOP_BOUND = 28.0  # seconds from SIGTERM to exit: below the 30 s after which granian kills
START_BOUND = 60.0
CLIENTS = 6
# Seconds of work, still in flight at the signal (8,000 took 0.6 s on a quiet machine, 40,000
# took 21 s beside five other test runs: then the drain alone came near STOP_BOUND).
BULK_ROWS = 20_000


@dataclass
class Served:
    """A `linkgen serve` we started."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    pids: list[int] = field(default_factory=list)

    def api(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method
        )
        req.add_header("Authorization", f"Bearer {API_KEY}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running (a zombie, or a PID reused by an unrelated process, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")
    return []


def _wait_healthy(served: Served) -> None:
    deadline = time.monotonic() + START_BOUND
    while time.monotonic() < deadline and served.process.poll() is None:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{served.port}/healthz", timeout=2),
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"linkgen serve did not come up:\n{served.log()}")


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = server_env(tmp_path, database_url, api_key=API_KEY, port=port)
    env.update(LINKGEN_WORKER="true", LINKGEN_LOG_LEVEL="INFO")
    log_path = tmp_path / "serve.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            # The test database is already at the latest schema (built from the models).
            [LINKGEN, "serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process, port, log_path, [process.pid])
    try:
        _wait_healthy(served)
        served.pids = [process.pid, *child_pids(process.pid)]
        yield served
    finally:
        _kill_all([*served.pids, *child_pids(process.pid)])
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


@dataclass
class Load:
    """Click traffic: every request's marker, when it was sent and how it ended."""

    port: int
    path: str
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    redirected: list[int] = field(default_factory=list)
    failed: list[tuple[int, float, str]] = field(default_factory=list)  # marker, sent at, what
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            n = next(self.counter)
            sent_at = time.monotonic()
            try:
                conn.request("GET", f"{self.path}?af_sub1={n}", headers={"User-Agent": IPHONE_UA})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failed.append((n, sent_at, type(exc).__name__))
                conn.close()
                if isinstance(exc, ConnectionRefusedError):
                    return  # the listener is closed: the server is going away
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
                continue
            if resp.status == 302:
                self.redirected.append(n)
            else:
                self.failed.append((n, sent_at, f"HTTP {resp.status}"))
        conn.close()


def _heartbeats(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(WorkerHeartbeat)) or 0)
    finally:
        db.dispose()


def _wait_for_heartbeat(database_url: str) -> None:
    deadline = time.monotonic() + START_BOUND
    while _heartbeats(database_url) == 0:
        assert time.monotonic() < deadline, "the postback worker never started"
        time.sleep(0.1)


def _stored_markers(db: Database) -> tuple[set[int], int, int]:
    with db.sessions() as session:
        params = session.scalars(select(Click.params)).all()
        counted = session.scalar(select(func.coalesce(func.sum(StatCounter.clicks), 0)))
        links = session.scalar(select(func.count()).select_from(Link))
    markers = {int(p["af_sub1"]) for p in params if p and "af_sub1" in p}
    return markers, int(counted or 0), int(links or 0)


def test_serve_drains_clicks_and_requests_on_sigterm(
    served: Served, database_url: str, tmp_path: Path
) -> None:
    served.api("POST", "/api/v1/apps", {"app_id": "id123456789", "name": "Shop iOS"})
    served.api(
        "POST",
        "/api/v1/templates",
        {
            "template_id": "Drn1",
            "domain": f"127.0.0.1:{served.port}",
            "ios_app_id": "id123456789",
            "web_fallback_url": "https://example.com/",
        },
    )
    _, link = served.api(
        "POST", "/api/v1/links", {"template_id": "Drn1", "channel": "sms", "short": True}
    )
    children = child_pids(served.process.pid)
    workers = [p for p in children if _cmdline(p)[-2:] == ["linkgen", "worker"]]
    assert len(workers) == 1, [(p, _cmdline(p)) for p in children]
    _wait_for_heartbeat(database_url)  # the postback worker is up, its handlers installed
    load = Load(served.port, f"/Drn1/{link['shortlink_id']}")
    threads = [threading.Thread(target=load.client) for _ in range(CLIENTS)]
    bulk: dict[str, Any] = {}

    rows = [
        {"template_id": "Drn1", "channel": "sms", "campaign": f"b{i}"} for i in range(BULK_ROWS)
    ]
    body = json.dumps({"links": rows}).encode()
    sent = threading.Event()

    def slow_request() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
        try:
            headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
            conn.request("POST", "/api/v1/links/bulk", body=body, headers=headers)
            sent.set()  # the whole request is on the server's socket
            resp = conn.getresponse()
            bulk["status"], bulk["body"] = resp.status, json.loads(resp.read())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            bulk["error"] = repr(exc)
        finally:
            sent.set()
            conn.close()
        bulk["done_at"] = time.monotonic()

    slow = threading.Thread(target=slow_request)
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(load.redirected) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        slow.start()
        # Sent, however long this busy process took to get there; then a moment for the
        # server to take it up (the import itself takes seconds).
        assert sent.wait(30)
        time.sleep(0.3)
        signalled_at = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        code = served.process.wait(timeout=STOP_BOUND)
        stopped_after = time.monotonic() - signalled_at
    finally:
        load.stop.set()
        for t in [*threads, slow]:
            if t.ident is not None:  # started
                t.join(timeout=30)

    log = served.log()
    assert code == 0, log
    assert stopped_after < STOP_BOUND
    assert [p for p in served.pids if _alive(p)] == [], log  # web worker, postback worker
    # The postback worker was told at once, not after the web worker had drained (seconds).
    full = served.log_path.read_text(errors="replace")
    told, stopped = full.find("finishing the batch in flight"), full.find("web process stopped")
    assert 0 <= told < stopped, full[-6000:]
    # Requests sent before the signal were all answered: the in-flight ones were completed.
    reset = [(n, what) for n, sent_at, what in load.failed if sent_at < signalled_at]
    assert reset == [], log
    assert len(load.redirected) >= 200
    assert bulk.get("status") == 200 and bulk["body"]["created"] == BULK_ROWS, (bulk, log)
    assert bulk["done_at"] > signalled_at  # it really was in flight at the signal
    if database_url.startswith("sqlite"):  # checked before this test opens the file itself
        wal = Path(database_url.removeprefix("sqlite:///") + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0, "a connection was not closed"

    db = Database(database_url)
    try:
        markers, counted, links = _stored_markers(db)
    finally:
        db.dispose()
    assert set(load.redirected) <= markers, "a click whose redirect arrived is missing"
    assert counted == len(markers)  # every stored click counted once
    assert links == BULK_ROWS + 1
    assert _heartbeats(database_url) == 0, log  # the postback worker stopped cleanly


# -- the postback worker alone --------------------------------------------------------------


def _queue_postbacks(database_url: str, api_base: str, count: int) -> list[str]:
    """An app with an active CleverTap integration and `count` queued event postbacks."""
    db = Database(database_url)
    try:
        with db.session() as session:
            catalog.create_app_record(session, {"app_id": APP_ID, "name": "Shop"})
            integrations.put_integration(
                session,
                APP_ID,
                {
                    "active": True,
                    "account_id": ACCOUNT,
                    "account_passcode": PASSCODE,
                    "region": "EU1",
                    "default_postbacks": "all_sources",
                },
                actor="tests",
                api_base=None,
            )
        return insert(db, count, prefix="drain", api_base=api_base)
    finally:
        db.dispose()


def test_worker_finishes_its_batch_on_sigterm(database_url: str, tmp_path: Path) -> None:
    with FakeCleverTap({ACCOUNT: PASSCODE}) as fake:
        ids = _queue_postbacks(database_url, fake.base_url, 30)
        fake.enqueue(Behaviour.slow(2.0))  # the batch is still at CleverTap when SIGTERM lands
        env = server_env(tmp_path, database_url, api_key=API_KEY)
        env.update(LINKGEN_CLEVERTAP_API_BASE=fake.base_url, LINKGEN_LOG_LEVEL="INFO")
        log_path = tmp_path / "worker.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [LINKGEN, "worker", "--timeout", "8"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + START_BOUND
            while not fake.uploads() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.02)
            assert fake.uploads(), log_path.read_text()
            signalled_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=STOP_BOUND)
            stopped_after = time.monotonic() - signalled_at
        finally:
            _kill_all([process.pid])
        received = fake.received_linkgen_ids()

    log_text = log_path.read_text()
    assert code == 0, log_text
    assert stopped_after < STOP_BOUND
    db = Database(database_url)
    try:
        with db.sessions() as session:
            statuses = dict(
                session.execute(
                    select(Postback.status, func.count()).group_by(Postback.status)
                ).all()
            )
            heartbeats = session.scalar(select(func.count()).select_from(WorkerHeartbeat))
    finally:
        db.dispose()
    assert statuses == {"sent": len(ids)}, log_text  # the batch was recorded, none left sending
    assert received == dict.fromkeys(ids, 1)
    assert heartbeats == 0, log_text
    assert "finishing the batch in flight" in log_text
