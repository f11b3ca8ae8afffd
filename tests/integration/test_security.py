"""What docs/security.md promises: authentication, injection, open redirects, headers, rate
limits and secrets kept out of logs."""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from linkgen.config import REPO_ROOT, Settings
from linkgen.logs import JsonFormatter, RequestIdFilter
from linkgen.services import accounts
from linkgen.services.accounts import create_api_key
from linkgen.storage.models import ApiKey, App, Link, Template
from linkgen.web.ratelimit import rate_limiter
from linkgen.web.security import PAGE_CSP
from tests.conftest import Api
from tests.fakes.fake_clevertap import FakeCleverTap

DESKTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"

IOS_APP = "id1234567890"
ANDROID_APP = "com.example.shop"
TEMPLATE = "Sec1"
LINK_HOST = "go.example.com"
FALLBACK = "https://fallback.example.org/home"


SETTINGS_RULE = "/api/v1/apps/<app_id>/integrations/clevertap"


def _routed(app: Flask, rule: str, method: str) -> bool:
    return any(r.rule == rule and method in (r.methods or set()) for r in app.url_map.iter_rules())


def requires_route(app: Flask, rule: str, method: str) -> None:
    """Skip (until it lands) when the contract's route is not in the URL map yet."""
    if not _routed(app, rule, method):
        pytest.skip(f"{method} {rule} is not routed yet (contract route; the test runs once it is)")


def _count(app: Flask, model: Any) -> int:
    with app.extensions["linkgen"].db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def world(app: Flask, api: Api) -> dict[str, Any]:
    """Two apps, a template with an allow-list, and a short link."""
    out: dict[str, Any] = {}
    for app_id in (IOS_APP, ANDROID_APP):
        resp = api.post("/api/v1/apps", json={"app_id": app_id, "name": f"App {app_id}"})
        assert resp.status_code == 201, resp.json
        out[app_id] = resp.json["sdk_key"]
    resp = api.post(
        "/api/v1/templates",
        json={
            "template_id": TEMPLATE,
            "domain": LINK_HOST,
            "ios_app_id": IOS_APP,
            "android_app_id": ANDROID_APP,
            "web_fallback_url": FALLBACK,
            "redirect_allowlist": ["example.com"],
        },
    )
    assert resp.status_code == 201, resp.json
    resp = api.post(
        "/api/v1/links",
        json={"template_id": TEMPLATE, "channel": "sms", "campaign": "spring"},
    )
    assert resp.status_code == 201, resp.json
    out["link"] = resp.json
    return out


# -- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic dGVzdHM6c2VjcmV0"},
        {"Authorization": "Token lg_not_a_key"},
        {"Authorization": "Bearer lg_not_a_key"},
        {"Authorization": "Bearer ' OR '1'='1"},
        {"X-API-Key": "lg_not_a_key"},
    ],
    ids=lambda h: repr(h)[:40],
)
def test_requests_without_a_valid_key_get_401(client: FlaskClient, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/api/v1/apps"), ("POST", "/api/v1/links")):
        resp = client.open(path, method=method, headers=headers, json={})
        assert resp.status_code == 401, (method, path, resp.json)
        assert resp.json["error"]["code"] == "unauthorized"


def test_a_real_key_is_not_accepted_outside_the_authorization_header(
    client: FlaskClient, api_key: str
) -> None:
    assert client.get(f"/api/v1/apps?api_key={api_key}").status_code == 401
    assert client.get("/api/v1/apps", headers={"Authorization": api_key}).status_code == 401
    assert client.get("/api/v1/apps", headers={"X-API-Key": api_key}).status_code == 401
    client.set_cookie("api_key", api_key)
    assert client.get("/api/v1/apps").status_code == 401
    # The scheme name is case-insensitive (RFC 9110); the key itself is not.
    assert (
        client.get("/api/v1/apps", headers={"Authorization": f"bearer {api_key}"}).status_code
        == 200
    )
    wrong_case = {"Authorization": f"Bearer {api_key.swapcase()}"}
    assert client.get("/api/v1/apps", headers=wrong_case).status_code == 401


def test_a_401_never_echoes_the_key_sent(client: FlaskClient) -> None:
    probe = "lg_probe_value_that_must_not_come_back"
    resp = client.get("/api/v1/apps", headers={"Authorization": f"Bearer {probe}"})
    assert resp.status_code == 401
    assert probe not in resp.get_data(as_text=True)


def test_revoked_api_key_is_refused_at_once_by_the_process_that_revoked_it(
    app: Flask, client: FlaskClient, make_app: Any
) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(args=["create-api-key", "ci-bot"])
    assert made.exit_code == 0, made.output
    raw = made.output.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/apps", headers=auth).status_code == 200  # now remembered

    revoked = runner.invoke(args=["revoke-api-key", "ci-bot"])
    assert revoked.exit_code == 0, revoked.output
    resp = client.get("/api/v1/apps", headers=auth)
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthorized"
    assert client.post("/api/v1/apps", headers=auth, json={}).status_code == 401
    # Another app on the same database (nothing remembered) refuses it too.
    assert make_app().test_client().get("/api/v1/apps", headers=auth).status_code == 401
    # Revoking again (nothing active under that name) is an error, not a silent success.
    assert runner.invoke(args=["revoke-api-key", "ci-bot"]).exit_code != 0


def test_a_key_revoked_by_another_process_is_refused_within_the_epoch_interval(
    app: Flask, client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "elsewhere")
    auth = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/apps", headers=auth).status_code == 200  # now remembered
    cache = app.extensions["linkgen"].api_keys

    # `linkgen revoke-api-key` is a process of its own: only the database tells this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKGEN_")}
    env.update(
        {"LINKGEN_DATABASE_URL": settings.database_url, "LINKGEN_INSTANCE_PATH": str(tmp_path)}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "linkgen", "revoke-api-key", "elsewhere"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert raw not in proc.stdout + proc.stderr

    later = time.monotonic() + accounts.EPOCH_CHECK_SECONDS
    cache.clock = lambda: later
    resp = client.get("/api/v1/apps", headers=auth)
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthorized"


def test_the_key_cache_asks_the_database_once_per_epoch_interval(app: Flask) -> None:
    db = app.extensions["linkgen"].db
    with db.session() as session:
        _, raw = create_api_key(session, "steady")
    cache = accounts.ApiKeyCache(db.engine)
    now = [1000.0]
    cache.clock = lambda: now[0]
    queries: list[str] = []

    def count(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            queries.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert cache.principal(raw) == accounts.Principal("api_key", "steady", "admin")
        first = len(queries)  # the epoch and the key
        now[0] += accounts.EPOCH_CHECK_SECONDS / 2
        assert cache.principal(raw) is not None
        assert len(queries) == first  # remembered: no query at all
        now[0] += accounts.EPOCH_CHECK_SECONDS
        assert cache.principal(raw) is not None
        assert len(queries) == first + 1  # the epoch only: it has not moved
        assert cache.principal("lg_unknown") is None
        assert cache.principal("lg_unknown") is None
        assert len(queries) == first + 3  # unknown keys are never remembered
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_a_key_loaded_while_a_revocation_commits_is_not_remembered(app: Flask) -> None:
    db = app.extensions["linkgen"].db
    with db.session() as session:
        _, raw = create_api_key(session, "racy")
    cache = accounts.ApiKeyCache(db.engine)
    cache.principal("lg_warm_up")  # the epoch is read: the next lookups only read the key
    key_reads: list[str] = []

    def revoke_meanwhile(*args: Any) -> None:
        if "api_keys" in args[2] and "SELECT" in args[2].upper():
            key_reads.append(args[2])
            accounts._revoked_here()  # a revocation commits while the row is on its way

    event.listen(db.engine, "before_cursor_execute", revoke_meanwhile)
    try:
        assert cache.principal(raw) is not None  # valid when read ...
        assert cache.principal(raw) is not None
        assert len(key_reads) == 2  # ... but not trusted later: read again
    finally:
        event.remove(db.engine, "before_cursor_execute", revoke_meanwhile)


def test_read_only_key_may_read_but_not_write(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "dashboards", scope="read")
    auth = {"Authorization": f"Bearer {raw}"}
    link_id = world["link"]["id"]
    assert client.get("/api/v1/apps", headers=auth).status_code == 200
    assert client.get(f"/api/v1/links/{link_id}", headers=auth).status_code == 200
    writes = [
        ("POST", "/api/v1/apps", {"app_id": "com.example.other", "name": "x"}),
        ("PATCH", f"/api/v1/apps/{ANDROID_APP}", {"name": "renamed"}),
        ("POST", "/api/v1/templates", {"domain": LINK_HOST}),
        ("PATCH", f"/api/v1/templates/{TEMPLATE}", {"app_links": True}),
        ("POST", "/api/v1/links", {"template_id": TEMPLATE, "channel": "email"}),
        ("PATCH", f"/api/v1/links/{link_id}", {"campaign": "x"}),
        ("DELETE", f"/api/v1/links/{link_id}", None),
        ("POST", "/api/v1/links/bulk", [{"template_id": TEMPLATE, "channel": "email"}]),
    ]
    if _routed(app, SETTINGS_RULE, "PUT"):
        writes.append(("PUT", f"/api/v1/apps/{ANDROID_APP}/integrations/clevertap", {}))
    for method, path, body in writes:
        resp = client.open(path, method=method, headers=auth, json=body)
        assert resp.status_code == 403, (method, path, resp.status_code)
        assert resp.json["error"]["code"] == "forbidden"
    assert _count(app, Link) == 1
    assert client.get(f"/api/v1/apps/{ANDROID_APP}", headers=auth).json["name"] != "renamed"


def test_sdk_endpoints_need_the_apps_own_key(client: FlaskClient, world: dict[str, Any]) -> None:
    launch = {"device_id": "1712345678901-1234567", "first_launch": True}
    path = f"/api/v1/sdk/{ANDROID_APP}/launches"
    other_apps_key = world[IOS_APP]
    for headers in (
        {},
        {"X-SDK-Key": ""},
        {"X-SDK-Key": "not-a-key"},
        {"X-SDK-Key": other_apps_key},
        {"Authorization": f"Bearer {other_apps_key}"},
    ):
        resp = client.post(path, json=launch, headers=headers)
        assert resp.status_code == 401, (headers, resp.json)
    ok = client.post(path, json=launch, headers={"X-SDK-Key": world[ANDROID_APP]})
    assert ok.status_code in (200, 201), ok.json
    event = {"event_id": "e-1", "event_name": "af_purchase", "device_id": launch["device_id"]}
    resp = client.post(
        f"/api/v1/sdk/{ANDROID_APP}/events", json=event, headers={"X-SDK-Key": other_apps_key}
    )
    assert resp.status_code == 401


def test_an_admin_api_key_is_not_an_sdk_key(client: FlaskClient, api_key: str) -> None:
    resp = client.post(
        f"/api/v1/sdk/{ANDROID_APP}/launches",
        json={"device_id": "d-1"},
        headers={"Authorization": f"Bearer {api_key}", "X-SDK-Key": api_key},
    )
    assert resp.status_code == 401


# -- injection ----------------------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE links; --",
    '" OR ""="',
    "x' UNION SELECT key_hash, key_hash FROM api_keys --",
    "%' OR 1=1 --",
    "') OR ('1'='1",
    "\\'; DELETE FROM apps; --",
    "1 OR 1=1",
    "*",
    "%",
    "_",
]


def test_injection_strings_in_paths_and_filters_are_plain_data(
    app: Flask, api: Api, world: dict[str, Any]
) -> None:
    before = {m: _count(app, m) for m in (App, Template, Link, ApiKey)}
    for payload in INJECTIONS:
        q = quote(payload, safe="")
        for path in (
            f"/api/v1/apps/{q}",
            f"/api/v1/templates/{q}",
            f"/api/v1/links/{q}",
            f"/api/v1/links/{q}/qr.png",
        ):
            resp = api.get(path)
            assert resp.status_code in (400, 404), (path, resp.status_code)
            assert resp.json["error"]["code"] in ("not_found", "invalid_parameter")
        for name in ("campaign", "channel", "template_id", "q"):
            resp = api.get(f"/api/v1/links?{name}={q}")
            assert resp.status_code in (200, 400), (name, payload, resp.status_code)
            if resp.status_code == 200:
                assert resp.json["items"] == [], (name, payload)  # matched nothing, not everything
        for query in (f"cursor={q}", f"limit={q}"):
            assert api.get(f"/api/v1/links?{query}").status_code == 400, query
        for query in (f"group_by={q}", f"from={q}", f"to={q}"):
            assert api.get(f"/api/v1/stats?{query}").status_code == 400, query
        resp = api.post(f"/api/v1/sdk/{q}/launches", json={"device_id": payload})
        assert resp.status_code in (401, 404), payload
    assert {m: _count(app, m) for m in before} == before


def test_injection_strings_in_json_fields_are_refused_or_stored_verbatim(
    app: Flask, api: Api, world: dict[str, Any]
) -> None:
    created = 0
    for payload in INJECTIONS:
        resp = api.post("/api/v1/apps", json={"app_id": payload, "name": payload})
        assert resp.status_code == 400, payload
        assert resp.json["error"]["field"] == "app_id"
        resp = api.post("/api/v1/templates", json={"domain": payload})
        assert resp.status_code == 400, payload
        resp = api.post(
            "/api/v1/links",
            json={
                "template_id": TEMPLATE,
                "channel": "email",
                "campaign": payload,
                "params": {"af_sub1": payload},
            },
        )
        assert resp.status_code in (201, 400), (payload, resp.json)
        if resp.status_code == 201:
            created += 1
            assert resp.json["campaign"] == payload
            assert resp.json["params"]["af_sub1"] == payload
            fetched = api.get(f"/api/v1/links/{resp.json['id']}")
            assert fetched.json["campaign"] == payload
            listed = api.get(f"/api/v1/links?campaign={quote(payload, safe='')}")
            assert [item["id"] for item in listed.json["items"]] == [resp.json["id"]]
    assert _count(app, App) == 2
    assert _count(app, Template) == 1
    assert _count(app, Link) == 1 + created
    assert _count(app, ApiKey) == 1


def test_nul_bytes_in_urls_are_refused(
    client: FlaskClient, api: Api, world: dict[str, Any]
) -> None:
    """PostgreSQL cannot compare text with a NUL byte: without the guard these were 500s."""
    sdk = {"X-SDK-Key": world[ANDROID_APP]}
    for method, path, headers in (
        ("GET", "/api/v1/apps/%00", api.headers),
        ("PATCH", "/api/v1/apps/com.example%00", api.headers),
        ("GET", "/api/v1/templates/%00", api.headers),
        ("GET", "/api/v1/apps/%00/integrations/clevertap", api.headers),
        ("POST", "/api/v1/sdk/%00/launches", sdk),
        ("POST", "/api/v1/sdk/%00/events", sdk),
    ):
        resp = client.open(path, method=method, headers=headers, json={"device_id": "d"})
        assert resp.status_code == 404, (method, path, resp.status_code)
    for path, field in (
        ("/api/v1/postbacks?app_id=%00", "app_id"),
        ("/api/v1/links?limit=5&campaign=a%00b", "campaign"),
        ("/api/v1/stats?group_by=link&from=%00", "from"),
    ):
        resp = api.get(path)
        assert resp.status_code == 400, (path, resp.status_code)
        assert resp.json["error"]["field"] == field


def test_absurdly_nested_json_is_a_400(
    client: FlaskClient, api: Api, world: dict[str, Any]
) -> None:
    deep_list = "[" * 100_000 + "]" * 100_000
    deep_object = '{"a":' * 100_000 + "1" + "}" * 100_000
    sdk = {"X-SDK-Key": world[ANDROID_APP]}
    for method, path, headers in (
        ("POST", "/api/v1/apps", api.headers),
        ("POST", "/api/v1/links", api.headers),
        ("POST", "/api/v1/links/bulk", api.headers),
        ("POST", "/api/v1/links/qr.zip", api.headers),
        ("PATCH", f"/api/v1/templates/{TEMPLATE}", api.headers),
        ("PUT", f"/api/v1/apps/{ANDROID_APP}/integrations/clevertap", api.headers),
        ("POST", f"/api/v1/sdk/{ANDROID_APP}/launches", sdk),
        ("POST", f"/api/v1/sdk/{ANDROID_APP}/events", sdk),
    ):
        for body in (deep_list, deep_object):
            resp = client.open(
                path, method=method, headers=headers, data=body, content_type="application/json"
            )
            assert resp.status_code == 400, (method, path, resp.status_code)
            assert resp.json["error"]["code"] == "invalid_parameter"


def test_forged_limits_and_cursors_are_a_400(api: Api, world: dict[str, Any]) -> None:
    huge = base64.urlsafe_b64encode(b"9" * 30).decode().rstrip("=")
    superscript = base64.urlsafe_b64encode("³".encode()).decode().rstrip("=")
    for path in (
        "/api/v1/apps",
        "/api/v1/templates",
        "/api/v1/links",
        "/api/v1/postbacks",
        f"/api/v1/apps/{ANDROID_APP}/integrations/clevertap/audit",
    ):
        for query in (f"cursor={huge}", f"cursor={superscript}", "limit=%C2%B3"):
            resp = api.get(f"{path}?{query}")
            assert resp.status_code == 400, (path, query, resp.status_code)


def test_unicode_digit_postback_ids_are_a_404(api: Api) -> None:
    assert api.get("/api/v1/postbacks/%C2%B3").status_code == 404
    assert api.post("/api/v1/postbacks/%C2%B3/retry").status_code == 404


# -- open redirects -----------------------------------------------------------------------------

OFF_LIST = [
    "https://evil.com",
    "https://evil.com/path?next=https://example.com",
    "http://example.com/",
    "https://example.com.evil.com/",
    "https://evilexample.com/",
    "https://example.com@evil.com/",
    "https://user:pw@example.com/",
    "https://example.com%40evil.com/",
    "https://evil.com\\@example.com/",
    "https://evil.com#example.com",
    "//evil.com/",
    "/\\evil.com",
    "https:evil.com",
    "javascript:alert(document.domain)",
    "data:text/html,<script>alert(1)</script>",
    "https://evil.com%2F.example.com/",
    "https://[::1]/",
    " https://evil.com",
]
REDIRECT_PARAMS = ("af_r", "af_web_dp", "af_ios_url", "af_android_url")


def test_links_with_off_list_redirects_are_refused(api: Api, world: dict[str, Any]) -> None:
    for param in REDIRECT_PARAMS:
        for target in OFF_LIST:
            resp = api.post(
                "/api/v1/links",
                json={"template_id": TEMPLATE, "channel": "email", "params": {param: target}},
            )
            assert resp.status_code == 400, (param, target, resp.status_code)
            assert resp.json["error"]["field"] == f"params.{param}", (param, target)
        ok = api.post(
            "/api/v1/links",
            json={
                "template_id": TEMPLATE,
                "channel": "email",
                "params": {param: "https://shop.example.com/sale"},
            },
        )
        assert ok.status_code == 201, (param, ok.json)


def _allowed_location(location: str) -> bool:
    parts = urlsplit(location)
    host = (parts.hostname or "").lower()
    if parts.scheme == "intent":
        return True  # Chrome intent: opens the app; its fallback is checked separately
    if parts.scheme != "https":
        return False
    return (
        host == "example.com"
        or host.endswith(".example.com")
        or host == "fallback.example.org"
        or host in ("apps.apple.com", "itunes.apple.com", "play.google.com")
    )


def test_clicks_never_redirect_off_the_allow_list(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    short_path = urlsplit(world["link"]["short_url"]).path
    for target in OFF_LIST:
        q = quote(target, safe="")
        for ua in (DESKTOP_UA, IPHONE_UA, ANDROID_UA):
            for path in (
                f"/{TEMPLATE}?pid=Email&c=x&af_r={q}",
                f"/{TEMPLATE}?pid=Email&af_r={q}&af_web_dp={q}&af_ios_url={q}&af_android_url={q}",
                f"{short_path}?af_r={q}&af_web_dp={q}",
            ):
                resp = client.get(path, base_url=f"https://{LINK_HOST}", headers={"User-Agent": ua})
                assert resp.status_code in (200, 302), (path, resp.status_code)
                location = resp.headers.get("Location")
                if location is not None:
                    assert _allowed_location(location), (path, ua, location)
                body = resp.get_data(as_text=True)
                assert "evil.com" not in body, (path, ua)


def test_forced_deep_links_never_put_a_script_url_in_the_page(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    for scheme_url in ("javascript:alert(1)", "data:text/html,x", "vbscript:x", "JaVaScRiPt:x"):
        path = f"/{TEMPLATE}?pid=Email&af_force_deeplink=true&af_dp={quote(scheme_url, safe='')}"
        for ua in (IPHONE_UA, ANDROID_UA):
            resp = client.get(path, base_url=f"https://{LINK_HOST}", headers={"User-Agent": ua})
            assert resp.status_code in (200, 302)
            text = resp.get_data(as_text=True).lower()
            for bad in ("javascript:", "data:text", "vbscript:"):
                assert bad not in text, (scheme_url, ua)
                assert bad not in resp.headers.get("Location", "").lower()


# -- headers --------------------------------------------------------------------------------


def _assert_common_headers(resp: Any) -> None:
    headers = resp.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_api_answers_carry_security_headers(client: FlaskClient, api: Api) -> None:
    for resp in (
        api.get("/api/v1/apps"),
        api.get("/api/v1/apps/nope"),
        client.get("/api/v1/apps"),
        client.get("/api/v1/openapi.json"),
        client.get("/healthz"),
        client.get("/metrics"),
    ):
        _assert_common_headers(resp)
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "Strict-Transport-Security" not in resp.headers  # plain http


def test_pages_carry_a_self_only_content_security_policy(client: FlaskClient) -> None:
    for path in ("/no/such/page", "/login"):
        resp = client.get(path)
        if resp.status_code in (301, 302, 303):
            continue
        assert resp.mimetype == "text/html", path
        _assert_common_headers(resp)
        csp = resp.headers["Content-Security-Policy"]
        assert csp == PAGE_CSP
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_hsts_only_over_https(client: FlaskClient, api: Api) -> None:
    secure = api.get("/api/v1/apps", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Strict-Transport-Security" not in api.get("/api/v1/apps").headers


def test_templates_have_no_inline_script_or_style() -> None:
    """The page CSP allows only self-hosted scripts and styles: inline code would be blocked."""
    offenders = []
    for path in sorted((REPO_ROOT / "linkgen" / "templates").rglob("*.html")):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text, re.IGNORECASE):
            offenders.append(f"{path}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE):
            offenders.append(f"{path}: on*= event handler attribute")
        if re.search(r"\sstyle\s*=", text, re.IGNORECASE):
            offenders.append(f"{path}: style= attribute")
        if re.search(r"<style[\s>]", text, re.IGNORECASE):
            offenders.append(f"{path}: <style> element")
    assert offenders == []


# -- rate limits --------------------------------------------------------------------------------


def test_link_creation_is_rate_limited_per_api_key(
    app: Flask, client: FlaskClient, api: Api, world: dict[str, Any]
) -> None:
    rate_limiter(app).configure("link_create", rate=0.01, burst=2)
    body = {"template_id": TEMPLATE, "channel": "email"}
    assert [api.post("/api/v1/links", json=body).status_code for _ in range(2)] == [201, 201]
    throttled = api.post("/api/v1/links", json=body)
    assert throttled.status_code == 429
    assert throttled.json["error"]["code"] == "rate_limited"
    assert int(throttled.headers["Retry-After"]) >= 1
    _assert_common_headers(throttled)
    # Reading is not throttled, and another key has its own bucket.
    assert api.get("/api/v1/links").status_code == 200
    with app.extensions["linkgen"].db.session() as session:
        _, other = create_api_key(session, "other")
    resp = client.post("/api/v1/links", json=body, headers={"Authorization": f"Bearer {other}"})
    assert resp.status_code == 201


def test_every_spelling_of_one_api_key_takes_from_one_bucket(
    app: Flask, client: FlaskClient, api: Api, world: dict[str, Any]
) -> None:
    rate_limiter(app).configure("link_create", rate=0.01, burst=3)
    key = api.headers["Authorization"].removeprefix("Bearer ")
    body = {"template_id": TEMPLATE, "channel": "email"}
    spellings = [
        f"Bearer {key}",
        f"bearer {key}",
        f"BEARER {key}",
        f"Bearer   {key}  ",
        f" Bearer {key}",
    ]
    statuses = [
        client.post("/api/v1/links", json=body, headers={"Authorization": spelling}).status_code
        for spelling in spellings
    ]
    assert statuses == [201, 201, 201, 429, 429]  # all five are the same key


def test_sdk_endpoints_are_rate_limited_per_app_and_ip(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    rate_limiter(app).configure("sdk", rate=0.01, burst=1)
    headers = {"X-SDK-Key": world[ANDROID_APP]}
    path = f"/api/v1/sdk/{ANDROID_APP}/launches"
    first = client.post(path, json={"device_id": "d-1", "first_launch": True}, headers=headers)
    assert first.status_code in (200, 201)
    second = client.post(path, json={"device_id": "d-2", "first_launch": True}, headers=headers)
    assert second.status_code == 429
    assert second.json["error"]["code"] == "rate_limited"
    assert "Retry-After" in second.headers
    # Another client IP of the same app is not held back by this one.
    other_ip = client.post(
        path,
        json={"device_id": "d-3", "first_launch": True},
        headers=headers,
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert other_ip.status_code in (200, 201)


def test_clicks_are_never_rate_limited(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    limiter = rate_limiter(app)
    for name in list(limiter.limits):
        limiter.configure(name, rate=0.001, burst=1)
    for _ in range(5):
        resp = client.get(
            f"/{TEMPLATE}?pid=Email&c=spring",
            base_url=f"https://{LINK_HOST}",
            headers={"User-Agent": DESKTOP_UA},
        )
        assert resp.status_code == 302


# -- secrets and logs -----------------------------------------------------------------------


def test_secrets_never_reach_the_logs(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    # Both formats: the records themselves, and the JSON lines (which also carry every `extra`
    # field and the access log's fields) that LINKGEN_LOG_FORMAT=json writes.
    json_lines = io.StringIO()
    json_handler = logging.StreamHandler(json_lines)
    json_handler.setFormatter(JsonFormatter())
    json_handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(json_handler)
    try:
        secrets = _exercise_every_secret(make_app, caplog)
    finally:
        logging.getLogger().removeHandler(json_handler)
    assert json_lines.getvalue().count("\n") > 10  # the JSON handler saw the flow
    logged = [caplog.text, json_lines.getvalue()]
    for record in caplog.records:
        logged.append(record.getMessage())
        logged.append(repr(vars(record)))
    everything = "\n".join(logged)
    leaked = [name for name, value in secrets.items() if value in everything]
    assert leaked == [], f"secrets in the logs: {leaked}"


def _exercise_every_secret(make_app: Any, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """A flow that handles every kind of secret, with logging at DEBUG; returns the secrets."""
    passcode = "PASS-code-7f3a9c2e51"
    token = "tok-4b8d1e6f90aa"
    password = "correct horse battery staple"
    with FakeCleverTap(accounts={"W6K-556-4K6Z": passcode}) as fake:
        app = make_app(clevertap_api_base=fake.base_url)
        requires_route(app, SETTINGS_RULE, "PUT")
        client = app.test_client()
        caplog.set_level(logging.DEBUG)
        runner = app.test_cli_runner()
        made = runner.invoke(args=["create-api-key", "log-scan"])
        assert made.exit_code == 0, made.output
        api_key = made.output.strip().splitlines()[-1]
        api = Api(client, api_key)
        resp = api.post("/api/v1/apps", json={"app_id": ANDROID_APP, "name": "Shop"})
        assert resp.status_code == 201
        sdk_key = resp.json["sdk_key"]
        secrets = {
            "api key": api_key,
            "sdk key": sdk_key,
            "passcode": passcode,
            "token": token,
            "password": password,
        }

        settings_path = f"/api/v1/apps/{ANDROID_APP}/integrations/clevertap"
        resp = api.put(
            settings_path,
            json={
                "active": True,
                "account_id": "W6K-556-4K6Z",
                "account_passcode": passcode,
                "account_token": token,
                "region": "EU1",
                "default_postbacks": "all_sources",
            },
        )
        assert resp.status_code == 200, resp.json
        answers = [resp, api.get(settings_path)]
        if _routed(app, SETTINGS_RULE + "/audit", "GET"):
            answers.append(api.get(f"{settings_path}/audit"))
        if _routed(app, SETTINGS_RULE + "/test", "POST"):
            answers.append(api.post(f"{settings_path}/test"))
        for answer in answers:
            text = answer.get_data(as_text=True)
            assert passcode not in text and token not in text, answer.request.path

        sdk = {"X-SDK-Key": sdk_key}
        client.post(
            f"/api/v1/sdk/{ANDROID_APP}/launches",
            json={"device_id": "1712345678901-1", "first_launch": True, "customer_user_id": "u1"},
            headers=sdk,
        )
        client.post(
            f"/api/v1/sdk/{ANDROID_APP}/events",
            json={"event_id": "e1", "event_name": "af_purchase", "device_id": "1712345678901-1"},
            headers=sdk,
        )
        # Failures must not log the secrets either: a wrong key, a key of the wrong kind.
        client.get("/api/v1/apps", headers={"Authorization": f"Bearer {sdk_key}"})
        client.post(f"/api/v1/sdk/{ANDROID_APP}/launches", json={}, headers={"X-SDK-Key": api_key})
        created = runner.invoke(
            args=["create-user", "ops@example.com", "--password-stdin"], input=password + "\n"
        )
        assert created.exit_code == 0, created.output
        api.put(settings_path, json={"account_token": token + "-2"})  # an update keeps secrets
    return secrets
