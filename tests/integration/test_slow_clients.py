"""Slow clients against a real `linkgen serve --no-worker` (issue 14, item 1).

A slow-body client sends its headers with `Content-Length: 100000` and then trickles the body
in. On granian's WSGI interface each of them held one of the 40 blocking threads, so 41 of them
stopped every click and health check. Checked here:

- with more slow-body connections than threads open (to the three endpoints a stranger can
  reach: link creation, SDK launches, the login form) and a body deadline far longer than the
  test, a click is redirected and /healthz answers: nobody waits for the slow bodies;
- with a short body deadline (`LINKGEN_BODY_TIMEOUT_SECONDS`), a slow body is answered 408 and
  its connection closed; with a short header deadline (`LINKGEN_HEADER_TIMEOUT_SECONDS`), a
  connection whose headers never end is closed;
- a body that arrives in pieces within the deadline is served as usual, and a declared body
  over the size limit is still Flask's 413.

SQLite only: the subject is the server, not the storage. Every wait has a generous bound; only
the processes started here are stopped, by PID.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.common import Server, running_server
from benchmarks.redirects import setup_short_link
from linkgen.web.front import THREADS

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
SLOW_PATHS = ("/api/v1/links", "/api/v1/sdk/id123456789/launches", "/login")
SLOW_CONNECTIONS = 60  # more than the threads of a pool
WAIT = 60.0  # the bound on any single answer (no speed is asserted)


def _slow_body(port: int, path: str) -> socket.socket:
    """A connection that sent its headers and the first byte of a 100,000-byte body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    )
    sock.sendall(head.encode())
    return sock


@contextlib.contextmanager
def _slow_bodies(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for n in range(count):
            socks.append(_slow_body(port, SLOW_PATHS[n % len(SLOW_PATHS)]))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("GET", path, headers={"User-Agent": IPHONE_UA})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture
def patient(tmp_path: Path) -> Iterator[Server]:
    """A server whose body deadline is far longer than this test."""
    env = {"LINKGEN_BODY_TIMEOUT_SECONDS": "3600"}
    with running_server(tmp_path / "patient", extra_env=env) as server:
        yield server


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Server]:
    """A server with one-second deadlines for headers and bodies."""
    env = {"LINKGEN_BODY_TIMEOUT_SECONDS": "1", "LINKGEN_HEADER_TIMEOUT_SECONDS": "1"}
    with running_server(tmp_path / "strict", extra_env=env) as server:
        yield server


def test_clicks_and_health_are_answered_while_slow_bodies_are_held(patient: Server) -> None:
    path = setup_short_link(patient)
    assert SLOW_CONNECTIONS > THREADS
    with _slow_bodies(patient.port, SLOW_CONNECTIONS) as socks:
        status, _ = _get(patient.port, path)
        assert status == 302
        status, body = _get(patient.port, "/healthz")
        assert status == 200 and json.loads(body)["database"] == "ok"
        # The API side too: an authenticated call is served while the slow ones wait.
        assert patient.api("GET", "/api/v1/links")["items"]
        for sock in socks:  # none of them was answered: their bodies never came
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)


def test_a_slow_body_is_cut_off_with_408(strict: Server) -> None:
    with _slow_bodies(strict.port, len(SLOW_PATHS)) as socks:
        for sock in socks:
            answer = _read_all(sock)  # the server closes the connection after its answer
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == (
                "request_timeout"
            )
    status, _ = _get(strict.port, "/healthz")
    assert status == 200


def test_headers_that_never_end_are_cut_off(strict: Server) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=WAIT) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        answer = _read_all(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_a_body_in_pieces_within_the_deadline_is_served(patient: Server) -> None:
    setup_short_link(patient)
    body = json.dumps({"template_id": "BnCh", "channel": "sms", "campaign": "pieces"}).encode()
    with socket.create_connection(("127.0.0.1", patient.port), timeout=WAIT) as sock:
        sock.sendall(
            f"POST /api/v1/links HTTP/1.1\r\nHost: 127.0.0.1:{patient.port}\r\n"
            f"Authorization: Bearer {patient.api_key}\r\nContent-Type: application/json\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        sock.sendall(body[:10])
        sock.sendall(body[10:])
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["campaign"] == "pieces"


def test_a_declared_body_over_the_limit_is_refused_unread(strict: Server) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=WAIT) as sock:
        sock.sendall(
            f"POST /api/v1/links HTTP/1.1\r\nHost: 127.0.0.1:{strict.port}\r\n"
            f"Authorization: Bearer {strict.api_key}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {64 * 1024 * 1024}\r\n\r\n".encode()
        )
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
