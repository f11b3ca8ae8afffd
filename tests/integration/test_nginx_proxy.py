"""The real nginx (Debian's nginx-light) in front of `linkgen serve`, configured with the
proxy directives linkgen ships (deploy/nginx/linkgen-proxy.conf), and
LINKGEN_TRUSTED_PROXIES=127.0.0.1: the client's own address reaches the click and the launch,
whatever X-Forwarded-For the client sends itself."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from benchmarks.common import Server, free_port, start_server, stop_process
from linkgen.storage.db import Database
from linkgen.storage.models import Click, Launch

REPO = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
REQUIRE = os.environ.get("LINKGEN_TEST_REQUIRE_NGINX", "") in ("1", "true", "yes")
DEADLINE = 60.0
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/125.0 Mobile"

NGINX_CONF = """
daemon off;
master_process off;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            include {snippet};
        }}
    }}
}}
"""


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[tuple[Server, int]]:
    if NGINX is None:
        if REQUIRE:
            pytest.fail("nginx is missing (apt-get install nginx-light) and it is required")
        pytest.skip("nginx proxy tests: apt-get install nginx-light to run them")
    port = free_port()
    server = start_server(
        tmp_path / "instance",
        link_domains=f"127.0.0.1:{port}",
        extra_env={"LINKGEN_TRUSTED_PROXIES": "127.0.0.1"},
    )
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            prefix=prefix,
            port=port,
            upstream=server.port,
            snippet=REPO / "deploy" / "nginx" / "linkgen-proxy.conf",
        )
    )
    with (prefix / "stderr.log").open("wb") as stderr:
        nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert nginx.poll() is None, (prefix / "stderr.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.1)
        yield server, port
    finally:
        stop_process(nginx)
        stop_process(server.process)


def _via_nginx(
    port: int, source: str, method: str, path: str, body: Any = None, **headers: str
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=DEADLINE, source_address=(source, 0)
    )
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_the_real_client_address_passes_nginx(behind_nginx: tuple[Server, int]) -> None:
    server, port = behind_nginx
    app = server.api("POST", "/api/v1/apps", {"app_id": "com.example.shop", "name": "S"})
    template = {"template_id": "Ngx1", "domain": f"127.0.0.1:{port}"}
    server.api("POST", "/api/v1/templates", {**template, "android_app_id": "com.example.shop"})
    link = server.api("POST", "/api/v1/links", {"template_id": "Ngx1", "channel": "sms"})

    # A recipient on 127.0.0.2 that forges its own X-Forwarded-For: nginx appends the address
    # it really came from, and linkgen takes the right-most address it does not trust.
    click = _via_nginx(
        port,
        "127.0.0.2",
        "GET",
        f"/Ngx1/{link['shortlink_id']}",
        **{"User-Agent": ANDROID_UA, "X-Forwarded-For": "198.51.100.99"},
    )
    assert click.status == 302, click.status
    launch = _via_nginx(
        port,
        "127.0.0.3",
        "POST",
        "/api/v1/sdk/com.example.shop/launches",
        {"device_id": "d-nginx-1", "first_launch": True},
        **{"X-SDK-Key": app["sdk_key"], "User-Agent": "okhttp/4.12.0"},
    )
    assert launch.status == 200
    db = Database(server.database_url)
    try:
        with db.session() as session:
            assert [c.ip for c in session.scalars(select(Click))] == ["127.0.0.2"]
            (row,) = session.scalars(select(Launch))
            assert row.request["ip"] == "127.0.0.3"
    finally:
        db.dispose()
