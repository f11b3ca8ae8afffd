"""Debian's Caddy in front of linkgen, with on-demand TLS from its internal CA (no network): a
branded domain added through the API gets a certificate on its first HTTPS visit and its click
is redirected; a name that was never added gets no certificate. The `ask` is linkgen's own
GET /_linkgen/tls-ask."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from linkgen.storage.models import Click
from tests.conftest import Api
from tests.integration.sqlite_only import make_sqlite_app
from tests.integration.test_api_integration import _api_for

CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(
    CADDY is None, reason="caddy is not installed (apt-get install caddy)"
)
DEADLINE = 60.0
BRAND = "go.brand.com"


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    app: Flask
    api: Api
    https_port: int
    data: Path


# The Caddyfile operators install (deploy/caddy), run as it is: the test only sets the
# environment values it reads (its internal CA, 127.0.0.1 ports, a storage folder of its own).
CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "caddy" / "Caddyfile"
TEST_GLOBAL_OPTIONS = """admin off
skip_install_trust
auto_https disable_redirects
http_port {http}
https_port {https}
storage file_system {data}"""


@pytest.fixture
def stack(sqlite_template: Path, tmp_path: Path) -> Iterator[Stack]:
    # Caddy reaches linkgen from 127.0.0.1 and is its one trusted proxy.
    app = make_sqlite_app(
        sqlite_template, tmp_path, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),)
    )
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    https, data = _free_port(), tmp_path / "caddy"
    env = {
        **os.environ,
        "CADDY_GLOBAL_OPTIONS": TEST_GLOBAL_OPTIONS.format(
            http=_free_port(), https=https, data=data
        ),
        "CADDY_SITE_BIND": "bind 127.0.0.1",
        "CADDY_TLS_ISSUER": "internal",
        "LINKGEN_UPSTREAM": f"127.0.0.1:{server.server_port}",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    log = (tmp_path / "caddy.log").open("wb")
    assert CADDY is not None
    caddy = subprocess.Popen(
        [CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert caddy.poll() is None, (tmp_path / "caddy.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", https), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "caddy did not listen"
                time.sleep(0.1)
        yield Stack(app, _api_for(app), https, data)
    finally:
        caddy.terminate()
        try:
            caddy.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            caddy.kill()
            caddy.wait()
        log.close()
        server.shutdown()
        thread.join(timeout=DEADLINE)
        server.server_close()
        app.extensions["linkgen"].close()


def _get(
    port: int, name: str, path: str, context: ssl.SSLContext, source: str = "127.0.0.1"
) -> bytes:
    """One HTTPS request to 127.0.0.1:port from `source` with SNI and Host `name`."""
    with (
        socket.create_connection(
            ("127.0.0.1", port), timeout=DEADLINE, source_address=(source, 0)
        ) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        tls.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: curl/8.0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_a_new_branded_domain_gets_a_certificate_and_a_redirect(stack: Stack) -> None:
    api = stack.api
    assert api.post("/api/v1/domains", {"domain": BRAND}).status_code == 201
    made = api.post(
        "/api/v1/templates",
        {"template_id": "Brnd", "domain": BRAND, "web_fallback_url": "https://brand.com/"},
    )
    assert made.status_code == 201, made.get_json()

    # A recipient at 127.0.0.2 (another loopback address): Caddy passes it on in
    # X-Forwarded-For, and the click is recorded under it, not under Caddy's 127.0.0.1.
    first = _get(stack.https_port, BRAND, "/Brnd?pid=Email&c=x", _unverified(), "127.0.0.2")
    assert first.startswith(b"HTTP/1.1 302"), first[:200]
    assert b"\r\nLocation: https://brand.com/" in first
    with stack.app.extensions["linkgen"].db.session() as session:
        assert [c.ip for c in session.scalars(select(Click))] == ["127.0.0.2"]

    # The certificate is Caddy's internal CA's, for this very name.
    roots = list(stack.data.rglob("root.crt"))
    assert roots, "no internal CA root written"
    verified = ssl.create_default_context(cafile=str(roots[0]))
    again = _get(stack.https_port, BRAND, "/Brnd?pid=Email&c=y", verified)
    assert again.startswith(b"HTTP/1.1 302")
    assert api.get(f"/api/v1/domains/{BRAND}").get_json()["status"] == "active"


def test_a_name_never_added_gets_no_certificate(stack: Stack) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _get(stack.https_port, "evil.brand.com", "/", _unverified())
    assert not [p for p in stack.data.rglob("*.crt") if "evil.brand.com" in str(p)]


def test_the_installed_caddyfile_asks_linkgen_and_uses_public_certificates(tmp_path: Path) -> None:
    """With nothing set (production), the file adapts to on-demand TLS from Caddy's default
    public issuers, asking and proxying to linkgen serve's default address."""
    assert CADDY is not None
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CADDY_GLOBAL_OPTIONS", "CADDY_SITE_BIND", "CADDY_TLS_ISSUER")
        and k != "LINKGEN_UPSTREAM"
    }
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run(
        [CADDY, "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        check=True,
        timeout=DEADLINE,
    )
    config = json.loads(out.stdout)
    tls = config["apps"]["tls"]["automation"]
    assert tls["on_demand"]["ask"] == "http://127.0.0.1:8000/_linkgen/tls-ask"
    assert tls["policies"] == [{"on_demand": True}]  # no issuer named: Caddy's public ACME ones
    server = config["apps"]["http"]["servers"]["srv0"]
    assert server["listen"] == [":443"]
    upstreams = server["routes"][0]["handle"][0]["upstreams"]
    assert upstreams == [{"dial": "127.0.0.1:8000"}]
