"""`linkgen serve`'s RSGI front (linkgen/web/front.py) serves the WSGI app as granian's WSGI did.

Through a real `linkgen serve --no-worker`: a streamed answer (the CSV export, several chunks)
arrives whole; a chunked request body is read and served; a click answers HEAD; a query string
with percent-escapes and a path with an escaped character reach the app decoded as WSGI says.
SQLite only: the subject is the server, not the storage.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from benchmarks.common import Server, running_server
from benchmarks.redirects import setup_short_link
from linkgen.storage.db import Database
from linkgen.storage.models import Click

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
