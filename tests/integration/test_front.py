"""`linkgen serve`'s RSGI front (linkgen/web/front.py) serves the WSGI app as granian's WSGI did.

Through a real `linkgen serve --no-worker`: a streamed answer (the CSV export, several chunks)
arrives whole; a chunked request body is read and served; a click answers HEAD; a query string
with percent-escapes and a path with an escaped character reach the app decoded as WSGI says;
clicks answered on the event loop wait for their commit without holding a thread, so many of
them waiting on a locked database leave the threads to health checks and the API.
SQLite only: the subject is the server, not the storage.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from benchmarks.common import Server, running_server
from benchmarks.redirects import setup_short_link
from linkgen.storage.db import Database
from linkgen.storage.models import Click
from linkgen.web.front import THREADS

WAIT = 60.0
LINKS = 4_500  # more than one chunk of the export (2,000 rows each)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as served:
        yield served


def _request(
    server: Server, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        conn.request(
            method,
            path,
            body=body,
            headers={"Authorization": f"Bearer {server.api_key}", **headers},
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_streamed_export_arrives_whole(server: Server) -> None:
    setup_short_link(server)
    rows = [{"template_id": "BnCh", "channel": "sms", "campaign": f"c{i}"} for i in range(LINKS)]
    for start in range(0, LINKS, 1500):
        server.api("POST", "/api/v1/links/bulk", {"links": rows[start : start + 1500]})
    status, headers, body = _request(server, "GET", "/api/v1/links.csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    campaigns = [r["campaign"] for r in csv.DictReader(io.StringIO(body.decode()))]
    assert sorted(campaigns) == sorted(["bench"] + [f"c{i}" for i in range(LINKS)])


def test_a_chunked_body_is_read(server: Server) -> None:
    setup_short_link(server)
    payload = json.dumps({"template_id": "BnCh", "channel": "sms", "campaign": "chunked"})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        conn.request(
            "POST",
            "/api/v1/links",
            body=iter([payload[:7].encode(), payload[7:].encode()]),
            headers={
                "Authorization": f"Bearer {server.api_key}",
                "Content-Type": "application/json",
            },
            encode_chunked=True,
        )
        resp = conn.getresponse()
        status, body = resp.status, resp.read()
    finally:
        conn.close()
    assert status == 201, body
    assert json.loads(body)["campaign"] == "chunked"


def test_a_click_answers_head_and_sees_its_query_decoded(server: Server) -> None:
    path = setup_short_link(server)
    status, _, body = _request(server, "HEAD", path, **{"User-Agent": "curl/8"})
    assert status == 302 and body == b""
    status, _, _ = _request(server, "GET", path + "?af_sub1=a%20b%C3%A9")
    assert status == 302
    db = Database(server.database_url)
    try:
        with db.sessions() as session:
            stored = [p.get("af_sub1") for p in session.scalars(select(Click.params)) if p]
    finally:
        db.dispose()
    assert "a b\u00e9" in stored  # committed before the answer, decoded as Flask decodes it
    # An escaped path reaches Flask's router decoded: /api/v1/%61pps is /api/v1/apps.
    status, _, body = _request(server, "GET", "/api/v1/%61pps")
    assert status == 200 and "items" in json.loads(body)


WAITING_CLICKS = THREADS * 2 + 20  # more than both pools' threads together
LOCK_SECONDS = 6.0  # under the recorder's 10 s timeout, with room for a slow machine


def _clicks_stored(server: Server) -> int:
    db = Database(server.database_url)
    try:
        with db.sessions() as session:
            return len(session.scalars(select(Click.click_id)).all())
    finally:
        db.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_clicks_waiting_for_their_commit_hold_no_thread(database_url: str, tmp_path: Path) -> None:
    """The clicks table locked by another transaction: the clicks wait, the threads stay free.

    While an outside transaction holds `LOCK TABLE clicks IN EXCLUSIVE MODE` (reads go on,
    inserts wait), more clicks than the front has threads wait for their group commit;
    meanwhile `/healthz` (answered on the link domain's threads, where waiting clicks used to
    sit) and an API read still come back. Once the lock goes, every waiting click is answered
    with its redirect and stored: none is answered before it is committed. PostgreSQL: SQLite
    takes its write lock for reads too, so there a held lock stops every request alike.
    """
    # The test schema is built from the models already.
    with running_server(
        tmp_path, database_url=database_url, extra_args=("--no-migrate",)
    ) as server:
        path = setup_short_link(server)
        assert _request(server, "GET", path)[0] == 302  # template and link now in memory
        before = _clicks_stored(server)
        engine = create_engine(database_url)
        blocker = engine.connect()
        blocker.begin()
        blocker.execute(text("LOCK TABLE clicks IN EXCLUSIVE MODE"))
        locked_at = time.monotonic()
        with ThreadPoolExecutor(WAITING_CLICKS + 2) as pool:
            try:
                clicks = [
                    pool.submit(_request, server, "GET", f"{path}?af_sub1=w{i}")
                    for i in range(WAITING_CLICKS)
                ]
                time.sleep(0.5)  # the clicks are in and waiting
                assert not any(c.done() for c in clicks), "a click was answered uncommitted"
                health = pool.submit(_request, server, "GET", "/healthz")
                apps = pool.submit(_request, server, "GET", "/api/v1/apps")
                assert health.result(timeout=LOCK_SECONDS - 1)[0] == 200
                assert apps.result(timeout=LOCK_SECONDS - 1)[0] == 200
                assert time.monotonic() - locked_at < LOCK_SECONDS
                assert not any(c.done() for c in clicks), "a click was answered uncommitted"
            finally:
                time.sleep(max(0.0, LOCK_SECONDS - (time.monotonic() - locked_at)))
                blocker.rollback()
                blocker.close()
                engine.dispose()
            statuses = [c.result(timeout=WAIT)[0] for c in clicks]
        assert statuses == [302] * WAITING_CLICKS
        assert _clicks_stored(server) == before + WAITING_CLICKS
