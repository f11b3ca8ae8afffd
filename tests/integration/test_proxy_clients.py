"""Every consumer of the client's address, scheme and host behind a trusted proxy (SQLite and
PostgreSQL): click rows, burst detection, attribution's request ip, the SDK
rate limit, the login throttle, the access log, HSTS, the preview's og:url, /metrics and /setup.

The app trusts 10.0.0.0/8. A request from 10.0.0.2 (the proxy) carrying `X-Forwarded-For` is
filed under the client it names; the same headers from any other peer change nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from linkgen.logs import ACCESS_LOGGER
from linkgen.services import setup_code
from linkgen.services.accounts import create_api_key, create_user
from linkgen.storage.models import Click, User
from linkgen.web.ratelimit import rate_limiter
from tests.conftest import Api
from tests.integration.clickfactory import ANDROID_APP, ANDROID_UA, Sdk, make_sdk, utc_now
from tests.integration.clicksetup import DESKTOP, HOST, SLACKBOT, TEMPLATE, Setup, make_setup

PROXY = "10.0.0.2"
OUTSIDER = "198.51.100.66"  # an untrusted peer that sends forwarding headers itself
CLIENT = "203.0.113.7"
OTHER = "203.0.113.8"
METRICS_TOKEN = "metrics-token-0123456789abcdef"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def via(peer: str, client: str | None = None, **extra: str) -> dict[str, Any]:
    """Test-client kwargs for a request from `peer`, forwarding for `client`."""
    headers = dict(extra)
    if client is not None:
        headers["X-Forwarded-For"] = client
    return {"environ_base": {"REMOTE_ADDR": peer}, "headers": headers}


@pytest.fixture
def proxied(make_app: Callable[..., Flask]) -> Flask:
    return make_app(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))


@pytest.fixture
def api(proxied: Flask) -> Api:
    with proxied.extensions["linkgen"].db.session() as session:
        _, key = create_api_key(session, "proxy-tests")
    return Api(proxied.test_client(), key)


@pytest.fixture
def s(proxied: Flask, api: Api) -> Setup:
    return make_setup(proxied, proxied.test_client(), api)


def _click(s: Setup, path: str, peer: str, client: str | None, ua: str = DESKTOP) -> Any:
    headers = {"X-Forwarded-For": client} if client else {}
    return s.click(path, ua, ip=peer, headers=headers)


# -- the link domain --------------------------------------------------------------------------


def test_click_rows_carry_the_forwarded_client_only_from_a_trusted_peer(s: Setup) -> None:
    path = f"/{TEMPLATE}?pid=Email&c=spring"
    assert _click(s, path, PROXY, f"6.6.6.6, {CLIENT}").status_code == 302
    assert _click(s, path, OUTSIDER, CLIENT).status_code == 302
    s.click(path, DESKTOP, ip=PROXY, headers={"Forwarded": 'for="[2001:db8::7]:4711"'})
    assert [c.ip for c in s.clicks()] == [CLIENT, OUTSIDER, "2001:db8::7"]


def test_scanner_detection_tells_clients_behind_one_proxy_apart(s: Setup) -> None:
    # Five links of one recipient's message (same campaign, same CleverTap ID).
    paths = [s.short_path(campaign="spring", params={"af_sub5": "ct-1"})[0] for _ in range(5)]
    for i, path in enumerate(paths):
        _click(s, path, PROXY, f"203.0.113.{20 + i}")
    assert [c.bot_reason for c in s.clicks()] == [None] * 5  # five clients, not one scanner
    for path in paths:
        _click(s, path, PROXY, CLIENT)
    # One client opening every link of the message: a scanner, its first clicks re-flagged.
    assert [c.bot_reason for c in s.clicks()[5:]] == ["scanner:message"] * 5
    # An outsider cannot spread its opening over invented addresses: it is one client.
    for i, path in enumerate(paths):
        _click(s, path, OUTSIDER, f"192.0.2.{i}")
    assert [c.bot_reason for c in s.clicks()[10:]] == ["scanner:message"] * 5


def test_forwarded_proto_and_host_reach_the_click_handler(s: Setup) -> None:
    path = f"/{TEMPLATE}?pid=Email&c=spring"
    internal = {"Host": "127.0.0.1:8000"}  # what a proxy that rewrites Host sends
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST, **internal}
    preview = s.click(path, SLACKBOT, host="127.0.0.1:8000", ip=PROXY, headers=fwd)
    assert preview.status_code == 200
    assert f'content="https://{HOST}/{TEMPLATE}"' in preview.get_data(as_text=True)  # og:url
    # From an outsider the host is its own Host header: not the link domain, no click.
    refused = s.click(path, SLACKBOT, host="127.0.0.1:8000", ip=OUTSIDER, headers=fwd)
    assert refused.status_code == 404
    assert len(s.clicks()) == 1


def test_hsts_follows_the_forwarded_scheme_on_flask_and_the_edge(proxied: Flask, api: Api) -> None:
    client = proxied.test_client()
    https = {"X-Forwarded-Proto": "https"}
    assert (
        "Strict-Transport-Security" in client.get("/healthz", **via(PROXY, CLIENT, **https)).headers
    )
    assert (
        "Strict-Transport-Security"
        not in client.get("/healthz", **via(OUTSIDER, CLIENT, **https)).headers
    )
    make_setup(proxied, client, api)
    body = {"template_id": TEMPLATE, "campaign": "x", "channel": "sms"}
    edge = proxied.extensions["linkgen"].edge
    before = edge.answered
    for peer, secure in ((PROXY, True), (OUTSIDER, False)):
        kwargs = via(peer, CLIENT, **api.headers, **https)
        resp = client.post("/api/v1/links", json=body, **kwargs)
        assert resp.status_code == 201
        assert ("Strict-Transport-Security" in resp.headers) is secure
    assert edge.answered == before + 2


# -- SDK: attribution and the rate limit --------------------------------------------------------


@pytest.fixture
def sdk(proxied: Flask, api: Api) -> Sdk:
    return make_sdk(proxied, proxied.test_client(), api)


def _launch(sdk: Sdk, peer: str, client: str | None, query: str = "") -> dict[str, Any]:
    kwargs = via(peer, client, **{"X-SDK-Key": sdk.keys[ANDROID_APP], "User-Agent": ANDROID_UA})
    body = {"device_id": f"d-{peer}-{client}-{query}", "first_launch": True}
    resp = sdk.client.post(f"/api/v1/sdk/{ANDROID_APP}/launches{query}", json=body, **kwargs)
    assert resp.status_code == 200, resp.get_json()
    out: dict[str, Any] = resp.get_json()["attribution"]
    return out


@pytest.mark.parametrize("query", ["", "?via=query"])  # a query string changes nothing
def test_a_launch_matches_the_click_of_the_same_forwarded_client(sdk: Sdk, query: str) -> None:
    for client in (CLIENT, OTHER):
        resp = sdk.client.get(
            f"/{TEMPLATE}?pid=Email&c=spring",
            **via(PROXY, client, Host="go.example.com", **{"User-Agent": ANDROID_UA}),
        )
        assert resp.status_code == 302
    with sdk.app.extensions["linkgen"].db.session() as session:  # not a click injection
        session.execute(update(Click).values(ts=utc_now() - timedelta(hours=1)))
    # An outsider claiming to be CLIENT is not matched to CLIENT's click.
    assert _launch(sdk, OUTSIDER, CLIENT, query)["match_type"] is None
    got = _launch(sdk, PROXY, f"6.6.6.6, {CLIENT}", query)
    assert got["match_type"] == "probabilistic"
    with sdk.app.extensions["linkgen"].db.sessions() as session:
        ip = session.scalar(select(Click.ip).where(Click.click_id == got["click_id"]))
    assert ip == CLIENT


def test_the_sdk_rate_limit_bucket_is_the_forwarded_client(sdk: Sdk) -> None:
    rate_limiter(sdk.app).configure("sdk", rate=0.001, burst=1)
    kwargs = {"X-SDK-Key": sdk.keys[ANDROID_APP], "User-Agent": ANDROID_UA}

    def status(peer: str, client: str, n: int) -> int:
        body = {"device_id": f"rl-{peer}-{client}-{n}", "first_launch": True}
        path = f"/api/v1/sdk/{ANDROID_APP}/launches"
        return sdk.client.post(path, json=body, **via(peer, client, **kwargs)).status_code

    assert [status(PROXY, CLIENT, 1), status(PROXY, OTHER, 1), status(PROXY, CLIENT, 2)] == [
        200,
        200,
        429,
    ]
    # An outsider does not get a new bucket per invented address.
    assert [status(OUTSIDER, CLIENT, 3), status(OUTSIDER, OTHER, 4)] == [200, 429]


# -- the web app: login throttle, access log, /setup -------------------------------------------

EMAIL = "manager@example.com"
PASSWORD = "a long enough password"


def _token(client: FlaskClient, path: str, **kwargs: Any) -> str:
    match = TOKEN_RE.search(client.get(path, **kwargs).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def _login(client: FlaskClient, peer: str, fwd: str, password: str) -> int:
    data = {"csrf_token": _token(client, "/login"), "email": EMAIL, "password": password}
    return client.post("/login", data=data, **via(peer, fwd)).status_code


def test_the_login_throttle_counts_per_forwarded_client(proxied: Flask) -> None:
    with proxied.extensions["linkgen"].db.session() as db:
        create_user(db, EMAIL, PASSWORD)
    client = proxied.test_client()
    assert [_login(client, PROXY, CLIENT, "wrong password") for _ in range(5)] == [401] * 5
    assert _login(client, PROXY, CLIENT, PASSWORD) == 429
    assert _login(client, PROXY, OTHER, PASSWORD) == 302  # the next user of the proxy is not
    # An outsider's failures count against the outsider, whatever it claims to be.
    client = proxied.test_client()
    assert [_login(client, OUTSIDER, f"192.0.2.{i}", "wrong") for i in range(5)] == [401] * 5
    assert _login(client, OUTSIDER, "192.0.2.99", PASSWORD) == 429


def test_the_access_log_names_the_forwarded_client(
    proxied: Flask, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client = proxied.test_client()
    auth = api.headers
    client.get("/api/v1/links", **via(PROXY, CLIENT, **auth))
    client.get("/api/v1/links", **via(OUTSIDER, CLIENT, **auth))
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [r.client for r in records] == [CLIENT, OUTSIDER]  # type: ignore[attr-defined]
    assert records[0].getMessage().endswith(f"client={CLIENT}")


def _setup_post(client: FlaskClient, peer: str, fwd: str | None, **form: str) -> Any:
    token = _token(client, "/setup", **via(peer, fwd))
    data = {
        "csrf_token": token,
        "email": EMAIL,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        **form,
    }
    return client.post("/setup", data=data, **via(peer, fwd))


def _users(app: Flask) -> int:
    with app.extensions["linkgen"].db.session() as db:
        return int(db.scalar(select(func.count(User.id))) or 0)


@pytest.mark.parametrize(
    ("peer", "fwd"),
    [
        (PROXY, CLIENT),  # a public client through the trusted proxy
        (OUTSIDER, None),  # straight from the internet
        ("127.0.0.1", CLIENT),  # through a proxy on loopback that is not trusted
    ],
)
def test_setup_from_afar_needs_the_one_time_code(proxied: Flask, peer: str, fwd: str) -> None:
    client = proxied.test_client()
    assert 'name="setup_code"' in client.get("/setup", **via(peer, fwd)).get_data(as_text=True)
    assert _setup_post(client, peer, fwd).status_code == 403
    assert _setup_post(client, peer, fwd, setup_code="AAAA-BBBB-CCCC-DDDD").status_code == 403
    assert _users(proxied) == 0
    instance: Path = proxied.extensions["linkgen"].settings.instance_path
    code = setup_code.issue(instance)
    made = _setup_post(client, peer, fwd, setup_code=code.lower().replace("-", " "))
    assert made.status_code == 302 and made.location == "/links"
    assert _users(proxied) == 1
    assert not (instance / setup_code.FILE_NAME).exists()  # the code has ended


def test_setup_from_this_machine_needs_no_code(proxied: Flask) -> None:
    client = proxied.test_client()
    page = client.get("/setup", **via("127.0.0.1")).get_data(as_text=True)
    assert 'name="setup_code"' not in page
    # ... also through the trusted proxy, for a client on the proxy's own loopback
    assert _setup_post(client, PROXY, "127.0.0.1").status_code == 302
    assert _users(proxied) == 1


# -- /metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "fwd", "status"),
    [
        ("127.0.0.1", None, 200),
        ("::1", None, 200),
        (PROXY, None, 200),  # the proxy itself (a scraper on the proxy host)
        (PROXY, "127.0.0.1", 200),
        (PROXY, CLIENT, 404),  # a public client through the proxy
        (OUTSIDER, None, 404),
        (OUTSIDER, "127.0.0.1", 404),
        ("127.0.0.1", CLIENT, 404),  # an untrusted proxy on loopback forwarded it
    ],
)
def test_metrics_without_a_token_answer_only_local_and_proxy_clients(
    proxied: Flask, peer: str, fwd: str | None, status: int
) -> None:
    resp = proxied.test_client().get("/metrics", **via(peer, fwd))
    assert resp.status_code == status
    assert ("linkgen_redirects_total" in resp.get_data(as_text=True)) is (status == 200)


def test_metrics_with_a_token_answer_only_that_bearer_token(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app(metrics_token=METRICS_TOKEN)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401  # loopback is no longer enough
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
    assert wrong.status_code == 401
    assert client.get("/metrics", headers={"Authorization": METRICS_TOKEN}).status_code == 401
    for header in (f"Bearer {METRICS_TOKEN}", f"bearer  {METRICS_TOKEN}"):
        ok = client.get("/metrics", **via(OUTSIDER, Authorization=header))
        assert ok.status_code == 200 and "linkgen_redirects_total" in ok.get_data(as_text=True)
    assert METRICS_TOKEN not in caplog.text
