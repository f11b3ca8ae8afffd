"""SDK launches and link creations run on the event loop first, on SQLite (linkgen/web/front.py).

The same WSGI app as on a thread, called on the loop with `NO_WAIT` set: it takes the write lock
at once or raises `WouldWait` before writing anything, and then a pool thread runs the request
from the start. These drive `RSGIFront` in-process with a minimal RSGI scope and protocol, as
granian calls it, on SQLite and PostgreSQL (where nothing runs on the loop).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from linkgen.storage.db import BUSY_TIMEOUT_MS, NO_WAIT, WouldWait, begin_immediate
from linkgen.storage.models import Install, Link
from linkgen.web.front import RSGIFront, api_on_loop
from tests.conftest import TEST_DOMAINS, Api

HOST = TEST_DOMAINS[0]


@dataclass
class _Scope:
    method: str
    path: str
    headers: dict[str, str]
    proto: str = "http"
    query_string: str = ""
    http_version: str = "1.1"
    scheme: str = "http"
    server: str = "127.0.0.1:8000"
    client: str = "127.0.0.1:50000"
    authority: str = HOST


@dataclass
class _Protocol:
    body: bytes
    answers: list[tuple[int, list[tuple[str, str]], bytes]] = field(default_factory=list)

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answers.append((status, headers, body))


def _front(app: Flask) -> RSGIFront:
    return RSGIFront(
        app,
        threads=4,
        body_timeout=10.0,
        max_body=int(app.config["MAX_CONTENT_LENGTH"]),
        api=api_on_loop(app),
    )


def _scope(path: str, data: bytes, headers: dict[str, str]) -> _Scope:
    """A JSON POST as granian's RSGI scope describes it (header names in lower case)."""
    return _Scope(
        "POST",
        path,
        {
            "host": HOST,
            "content-type": "application/json",
            "content-length": str(len(data)),
            **{k.lower(): v for k, v in headers.items()},
        },
    )


def _post(front: RSGIFront, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    scope = _scope(path, data, headers)
    protocol = _Protocol(data)
    asyncio.run(front.__rsgi__(scope, protocol))
    [(status, _headers, out)] = protocol.answers
    return status, json.loads(out)


def _links(app: Flask) -> int:
    with app.extensions["linkgen"].db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Link)) or 0)


@pytest.fixture
def template(api: Api) -> str:
    made = api.post("/api/v1/templates", {"template_id": "Loop", "domain": HOST})
    assert made.status_code == 201, made.get_json()
    return "Loop"


def _is_sqlite(app: Flask) -> bool:
    return bool(app.extensions["linkgen"].db.dialect == "sqlite")


def test_a_link_is_created_on_the_loop_without_a_thread(
    app: Flask, api: Api, template: str
) -> None:
    front = _front(app)
    try:
        status, out = _post(
            front, "/api/v1/links", {"template_id": template, "channel": "sms"}, api.headers
        )
        assert status == 201, out
        assert out["template_id"] == template
        assert _links(app) == 1  # committed before the answer
        started = [t.name for t in front.app_pool.threads]
        # SQLite: answered on the loop, no pool thread ever started; PostgreSQL: on a thread.
        assert started == ([] if _is_sqlite(app) else [f"linkgen-app-{n}" for n in range(4)])
    finally:
        front.link_pool.shutdown()
        front.app_pool.shutdown()


def test_refusals_on_the_loop_are_the_edges_answers(app: Flask, api: Api, template: str) -> None:
    front = _front(app)
    try:
        status, out = _post(front, "/api/v1/links", {"template_id": "Nope"}, api.headers)
        assert status == 400 and out["error"]["field"] == "template_id"
        status, out = _post(front, "/api/v1/links", {"template_id": template}, {})
        assert status == 401
        assert _links(app) == 0
    finally:
        front.app_pool.shutdown()


def test_a_taken_writer_turn_hands_the_request_to_a_thread_and_it_runs_once(
    app: Flask, api: Api, template: str
) -> None:
    if not _is_sqlite(app):
        pytest.skip("PostgreSQL requests never run on the loop")
    runtime = app.extensions["linkgen"]
    limiter = runtime.rate_limiter
    limiter.configure("link_create", rate=0.001, burst=5)  # five tokens, none back meanwhile
    front = _front(app)
    held = threading.Event()
    release = threading.Event()

    def hold_the_turn() -> None:
        with runtime.db.writer_turn():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    try:
        assert held.wait(10)
        threading.Timer(0.3, release.set).start()  # the thread's way waits for it
        status, out = _post(
            front, "/api/v1/links", {"template_id": template, "channel": "sms"}, api.headers
        )
        assert status == 201, out
        assert _links(app) == 1  # written once, by the thread
        assert front.app_pool.threads, "the request went to a thread"
        # One token taken for the request, not one per attempt: four of five are left.
        for _ in range(4):
            assert _post(front, "/api/v1/links", {"template_id": "Nope"}, api.headers)[0] == 400
        assert _post(front, "/api/v1/links", {"template_id": "Nope"}, api.headers)[0] == 429
    finally:
        release.set()
        holder.join(10)
        front.app_pool.shutdown()


def test_sqlites_lock_held_by_another_process_is_not_waited_for_on_the_loop(
    app: Flask, api: Api, template: str
) -> None:
    if not _is_sqlite(app):
        pytest.skip("PostgreSQL requests never run on the loop")
    path = app.extensions["linkgen"].db.engine.url.database
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer, as it were
    other.execute("BEGIN IMMEDIATE")
    front = _front(app)
    environ_body = json.dumps({"template_id": template, "channel": "sms"}).encode()
    scope = _scope("/api/v1/links", environ_body, api.headers)
    try:

        async def on_loop() -> Any:
            from linkgen.web.front import _environ

            loop = asyncio.get_running_loop()
            env = _environ(scope, scope.headers, environ_body)
            return front._answer_on_loop(env, _Protocol(environ_body), loop)

        # Returns while the lock is still held: it did not wait (the busy timeout is 30 s).
        assert asyncio.run(on_loop()) is None
        assert other.execute("SELECT count(*) FROM links").fetchone() == (0,)
    finally:
        other.execute("ROLLBACK")
        other.close()
        front.app_pool.shutdown()
    status, out = _post(
        front, "/api/v1/links", {"template_id": template, "channel": "sms"}, api.headers
    )
    assert status == 201, out
    assert _links(app) == 1


def test_begin_immediate_under_no_wait_refuses_at_once_and_restores_the_timeout(
    app: Flask,
) -> None:
    if not _is_sqlite(app):
        pytest.skip("SQLite's lock")
    path = app.extensions["linkgen"].db.engine.url.database
    other = sqlite3.connect(path, isolation_level=None)
    mine = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    other.execute("BEGIN IMMEDIATE")
    token = NO_WAIT.set(True)
    try:
        with pytest.raises(WouldWait):
            begin_immediate(mine.execute)
        assert mine.execute("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)
        other.execute("ROLLBACK")
        begin_immediate(mine.execute)  # free now: taken
        mine.execute("ROLLBACK")
    finally:
        NO_WAIT.reset(token)
        other.close()
        mine.close()


def test_postgresql_runs_no_request_on_the_loop(app: Flask) -> None:
    expected = app.extensions["linkgen"].db.dialect == "sqlite"
    assert (api_on_loop(app) is not None) == expected


def test_an_sdk_launch_is_recorded_on_the_loop(app: Flask, api: Api) -> None:
    made = api.post("/api/v1/apps", {"app_id": "com.example.loop", "name": "Loop"})
    assert made.status_code == 201, made.get_json()
    key = made.get_json()["sdk_key"]
    front = _front(app)
    headers = {"X-SDK-Key": key, "User-Agent": "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8)"}
    try:
        status, out = _post(
            front,
            "/api/v1/sdk/com.example.loop/launches",
            {"device_id": "loop-device", "first_launch": True},
            headers,
        )
        assert status == 200, out
        assert out["type"] == "install" and out["attribution"]["is_organic"] is True
        assert (front.app_pool.threads == []) == _is_sqlite(app)
        # The same first launch again: the same install, not a second one.
        status, again = _post(
            front,
            "/api/v1/sdk/com.example.loop/launches",
            {"device_id": "loop-device", "first_launch": True},
            headers,
        )
        assert status == 200, again
        assert again["type"] == "install" and again["attribution"] == out["attribution"]
        with app.extensions["linkgen"].db.session() as session:
            assert session.scalar(select(func.count()).select_from(Install)) == 1
    finally:
        front.app_pool.shutdown()


def test_a_refused_transaction_gives_its_connection_back_whole(app: Flask) -> None:
    """`WouldWait` leaves no transaction open, so the pooled connection is reused, not dropped."""
    db = app.extensions["linkgen"].db
    if db.dialect != "sqlite":
        pytest.skip("SQLite's lock")
    from sqlalchemy import event

    from linkgen.storage.rawsql import Transaction

    invalidated: list[object] = []
    event.listen(db.engine, "invalidate", lambda *args: invalidated.append(args))
    other = sqlite3.connect(db.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    token = NO_WAIT.set(True)
    try:
        with pytest.raises(WouldWait), Transaction(db):
            pass
    finally:
        NO_WAIT.reset(token)
        other.execute("ROLLBACK")
        other.close()
    assert invalidated == []
    assert db.engine.pool.checkedout() == 0
    with Transaction(db) as tx:  # the same connection works: the busy timeout was restored
        assert tx.fetchone("PRAGMA busy_timeout") == (BUSY_TIMEOUT_MS,)
