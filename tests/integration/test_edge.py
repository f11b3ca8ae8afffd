"""The edge (linkgen/web/edge.py) answers every POST to the SDK endpoints and to link creation
whole, refusals included, with what the contract says (SQLite and PostgreSQL).

Nothing here compares with a second implementation: each test states the answer it expects."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from linkgen.logs import RequestIdFilter
from linkgen.services.accounts import create_api_key
from linkgen.web import sdk as sdk_views
from linkgen.web.edge import Edge
from linkgen.web.metrics import render
from linkgen.web.ratelimit import rate_limiter
from tests.conftest import Api
from tests.integration.clickfactory import (
    ANDROID_APP,
    IOS_APP,
    TEMPLATE,
    Sdk,
    events,
    launches,
    make_sdk,
    new_device,
)

LAUNCHES = f"/api/v1/sdk/{ANDROID_APP}/launches"
# The headers of every JSON answer, in order (X-Request-Id last); Retry-After or Allow come
# after Content-Length when an error has them, HSTS before X-Request-Id over https.
SECURITY = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox"),
]


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    return make_sdk(app, client, api)


@pytest.fixture
def edge(app: Flask) -> Edge:
    found = app.extensions["linkgen"].edge
    assert isinstance(found, Edge)
    return found


def _headers(resp: Any) -> list[tuple[str, str]]:
    return list(resp.headers.items())


def _expected_headers(resp: Any, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(resp.data))),
        *extra,
        *SECURITY,
        ("X-Request-Id", resp.headers["X-Request-Id"]),
    ]


def _error(resp: Any) -> dict[str, Any]:
    body: dict[str, Any] = resp.get_json()["error"]
    return body


def _launch_body() -> bytes:
    return json.dumps({"device_id": new_device(), "first_launch": True}).encode()


# ---- the usual case --------------------------------------------------------------------------


def test_a_launch_is_answered_by_the_edge(app: Flask, sdk: Sdk, edge: Edge) -> None:
    before = edge.answered
    resp = sdk.launch(new_device())
    assert resp.status_code == 200
    assert edge.answered == before + 1
    assert resp.get_json()["type"] == "install"
    assert _headers(resp) == _expected_headers(resp)
    with app.app_context():  # byte for byte what jsonify sends for the same value
        assert resp.data == jsonify(resp.get_json()).data
    assert [launch.launch_id for launch in launches(app)] == [resp.get_json()["launch_id"]]


def test_a_retried_first_launch_gets_the_stored_answer(app: Flask, sdk: Sdk) -> None:
    device = new_device()
    first = sdk.launch(device)
    again = sdk.launch(device)
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert len(launches(app)) == 1


def test_an_event_is_answered_by_the_edge(app: Flask, sdk: Sdk, edge: Edge) -> None:
    device = new_device()
    assert sdk.launch(device).status_code == 200
    resp = sdk.event(device_id=device, event_name="af_purchase", af_revenue="9.99")
    assert resp.status_code == 201, resp.get_json()
    assert _headers(resp) == _expected_headers(resp)
    assert edge.answered == 2
    assert [event.event_name for event in events(app)] == ["af_purchase"]


def test_a_link_is_created_by_the_edge(sdk: Sdk, api: Api, edge: Edge) -> None:
    body = {
        "template_id": TEMPLATE,
        "channel": "sms",
        "campaign": "spring",
        "params": {"af_sub5": "{{Profile.objectId}}"},
    }
    before = edge.answered
    resp = api.post("/api/v1/links", body)
    assert resp.status_code == 201, resp.get_json()
    assert edge.answered == before + 1
    assert _headers(resp) == _expected_headers(resp)
    created = resp.get_json()
    assert "{{Profile.objectId}}" in created["long_url"]
    assert created["created_by"]
    listed = api.get("/api/v1/links").get_json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]


def test_https_answers_carry_hsts(sdk: Sdk) -> None:
    resp = sdk.client.post(
        LAUNCHES,
        data=_launch_body(),
        headers={"X-SDK-Key": sdk.keys[ANDROID_APP]},
        base_url="https://go.example.com",
    )
    assert resp.status_code == 200
    hsts = ("Strict-Transport-Security", "max-age=31536000")
    assert _headers(resp)[-2] == hsts
    refused = sdk.client.post(LAUNCHES, data=b"[1]", base_url="https://go.example.com")
    assert refused.status_code == 401 and hsts in _headers(refused)
    plain = sdk.launch(new_device())
    assert "Strict-Transport-Security" not in plain.headers


def test_request_id_access_log_and_metrics(
    app: Flask, sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="linkgen.access")
    resp = sdk.client.post(
        LAUNCHES,
        data=_launch_body(),
        headers={"X-SDK-Key": sdk.keys[ANDROID_APP], "X-Request-Id": "req-edge-1"},
    )
    assert resp.status_code == 200
    assert resp.headers["X-Request-Id"] == "req-edge-1"
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == "req-edge-1"]
    assert len(lines) == 1
    line: Any = lines[0]
    assert (line.method, line.path, line.status) == ("POST", LAUNCHES, 200)
    # A malformed id is replaced by a new one; a refusal is logged and counted too.
    resp = sdk.client.post(LAUNCHES, data=b"{}", headers={"X-Request-Id": "bad id"})
    assert resp.status_code == 401 and len(resp.headers["X-Request-Id"]) == 32
    with app.app_context():
        scraped = render(app)

    def count(status: str) -> float:
        line = next(
            line
            for line in scraped.splitlines()
            if line.startswith("linkgen_http_request_duration_seconds_count")
            and 'endpoint="sdk.post_launch"' in line
            and f'status="{status}"' in line
        )
        return float(line.rsplit(" ", 1)[1])

    assert (count("2xx"), count("4xx")) == (1, 1)


def test_records_logged_while_the_edge_answers_carry_the_request_id(
    sdk: Sdk, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    authenticate = sdk_views.authenticate_sdk

    def logged(*args: Any) -> Any:
        logging.getLogger("linkgen.test").warning("authenticating an SDK call")
        return authenticate(*args)

    monkeypatch.setattr(sdk_views, "authenticate_sdk", logged)
    caplog.set_level(logging.WARNING, logger="linkgen.test")
    caplog.handler.addFilter(RequestIdFilter())
    resp = sdk.launch(raw=b"[1]")
    assert resp.status_code == 400
    ids = [getattr(r, "request_id", None) for r in caplog.records if r.name == "linkgen.test"]
    assert ids == [resp.headers["X-Request-Id"]]


# ---- refusals: the edge's own, with the contract's bodies -------------------------------------


def test_sdk_refusals(app: Flask, sdk: Sdk, edge: Edge, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    handle = sdk_views.handle_launch

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])
        return handle(*args, **kwargs)

    monkeypatch.setattr(sdk_views, "handle_launch", counted)
    cases: list[tuple[Any, int, str, str | None]] = [
        (lambda: sdk.launch(new_device(), key=""), 401, "unauthorized", None),
        (lambda: sdk.launch(new_device(), key="sdk_not_a_key"), 401, "unauthorized", None),
        (lambda: sdk.launch(raw=b'{"device_id": '), 400, "invalid_parameter", "body"),
        (lambda: sdk.launch(raw=b""), 400, "invalid_parameter", "body"),
        (lambda: sdk.launch(raw=b"[1, 2]"), 400, "invalid_parameter", "body"),
        (lambda: sdk.launch(raw={"first_launch": True}), 400, "invalid_parameter", "device_id"),
        (
            lambda: sdk.launch(new_device(), app_id=IOS_APP, key=sdk.keys[ANDROID_APP]),
            401,
            "unauthorized",
            None,
        ),
        (lambda: sdk.event(event_name="af_purchase"), 400, "invalid_parameter", None),
    ]
    before = edge.answered
    for send, status, code, field in cases:
        resp = send()
        assert resp.status_code == status, resp.get_json()
        assert _error(resp)["code"] == code
        if field is not None:
            assert _error(resp)["field"] == field
        assert _headers(resp) == _expected_headers(resp)
    assert edge.answered == before + len(cases)
    assert launches(app) == [] and events(app) == []
    # Each launch that got past authentication and JSON parsing was validated once, not twice.
    assert calls == [[1, 2], {"first_launch": True}]


def test_link_refusals(app: Flask, sdk: Sdk, api: Api) -> None:
    with app.extensions["linkgen"].db.session() as session:
        _, read_only = create_api_key(session, "viewer", scope="read")
    body = {"template_id": TEMPLATE, "channel": "sms"}
    resp = sdk.client.post(
        "/api/v1/links", json=body, headers={"Authorization": f"Bearer {read_only}"}
    )
    assert (resp.status_code, _error(resp)) == (
        403,
        {"code": "forbidden", "message": "this API key is read-only"},
    )
    resp = sdk.client.post("/api/v1/links", json=body, headers={"Authorization": "x"})
    assert resp.status_code == 401 and _error(resp)["code"] == "unauthorized"
    resp = sdk.client.post("/api/v1/links", json=body, headers={"Authorization": "Bearer nope"})
    assert _error(resp) == {"code": "unauthorized", "message": "unknown or revoked API key"}
    resp = api.post("/api/v1/links", data=b"[]", content_type="application/json")
    assert resp.status_code == 400 and _error(resp)["field"] == "body"
    resp = api.post("/api/v1/links", {**body, "pid": "a/b"})
    assert resp.status_code == 400 and _error(resp)["field"] == "pid"
    resp = api.post("/api/v1/links", {**body, "template_id": "Nope"})
    assert resp.status_code in (400, 404)
    assert api.post("/api/v1/links", {**body, "shortlink_id": "spring1"}).status_code == 201
    resp = api.post("/api/v1/links", {**body, "shortlink_id": "spring1"})
    assert resp.status_code == 409 and _error(resp)["code"] == "conflict"
    items = api.get("/api/v1/links").get_json()["items"]
    assert [item["shortlink_id"] for item in items] == ["spring1"]


def test_throttled_callers_get_429_with_retry_after(app: Flask, sdk: Sdk) -> None:
    rate_limiter(app).configure("sdk", rate=0.01, burst=2)
    assert sdk.launch(raw=b"[1]").status_code == 400  # a refusal takes its token too
    assert sdk.launch(new_device()).status_code == 200
    resp = sdk.launch(new_device())
    assert resp.status_code == 429
    assert _error(resp) == {
        "code": "rate_limited",
        "message": "Too many requests; slow down and retry.",
    }
    retry = resp.headers["Retry-After"]
    assert int(retry) >= 1
    assert _headers(resp) == _expected_headers(resp, ("Retry-After", retry))
    assert len(launches(app)) == 1


def test_other_methods_and_paths_are_routed_by_flasks_url_map(sdk: Sdk, edge: Edge) -> None:
    key = {"X-SDK-Key": sdk.keys[ANDROID_APP]}
    put = sdk.client.put(LAUNCHES, data=_launch_body(), headers=key)
    assert put.status_code == 405 and _error(put)["code"] == "method_not_allowed"
    assert set(put.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    options = sdk.client.options(LAUNCHES)
    assert options.status_code == 200 and "POST" in options.headers["Allow"]
    assert sdk.client.post(LAUNCHES + "/", data=_launch_body(), headers=key).status_code == 404
    assert edge.answered == 0
    # A query string changes nothing; a NUL byte in it is a bad value, as everywhere.
    assert sdk.client.post(LAUNCHES + "?x=1", data=_launch_body(), headers=key).status_code == 200
    resp = sdk.client.post(LAUNCHES + "?x=%00", data=_launch_body(), headers=key)
    assert resp.status_code == 400 and _error(resp)["field"] == "x"
    assert edge.answered == 2


# ---- the body as werkzeug reads it ------------------------------------------------------------


def test_bodies_are_read_within_their_length_and_the_limit(app: Flask, sdk: Sdk) -> None:
    key = {"X-SDK-Key": sdk.keys[ANDROID_APP]}
    # Chunked, from a server that does not say it terminates the stream: nothing is read.
    resp = sdk.client.post(
        LAUNCHES, data=_launch_body(), headers={**key, "Transfer-Encoding": "chunked"}
    )
    assert resp.status_code == 400 and _error(resp)["field"] == "body"
    # The client went away before sending all it announced.
    body = _launch_body()
    resp = sdk.client.post(
        LAUNCHES, data=body, headers=key, environ_overrides={"CONTENT_LENGTH": str(len(body) + 9)}
    )
    assert resp.status_code == 400 and _error(resp)["code"] == "bad_request"
    # A terminated stream is read to its end, whatever Content-Length says.
    resp = sdk.client.post(
        LAUNCHES,
        data=body + b" trailing bytes",
        headers=key,
        environ_overrides={"CONTENT_LENGTH": str(len(body)), "wsgi.input_terminated": True},
    )
    assert resp.status_code == 400 and _error(resp)["field"] == "body"
    assert launches(app) == []
    shorter = sdk.client.post(
        LAUNCHES,
        data=body,
        headers=key,
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 9), "wsgi.input_terminated": True},
    )
    assert shorter.status_code == 200
    # Past MAX_CONTENT_LENGTH: 413 from the header.
    limit = app.config["MAX_CONTENT_LENGTH"]
    resp = sdk.client.post(
        LAUNCHES, data=b"{}", headers=key, environ_overrides={"CONTENT_LENGTH": str(limit + 1)}
    )
    assert resp.status_code == 413 and _error(resp)["code"] == "payload_too_large"
    assert [launch.launch_id for launch in launches(app)] == [shorter.get_json()["launch_id"]]


# ---- errors past the refusals -----------------------------------------------------------------


def test_an_error_after_a_links_commit_is_a_500_and_the_link_is_stored_once(
    app: Flask, sdk: Sdk, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    db = app.extensions["linkgen"].db

    def failing_listener() -> None:
        raise RuntimeError("an epoch listener failed")

    caplog.set_level(logging.ERROR, logger="linkgen.web")
    db.epoch_listeners.append(failing_listener)
    try:
        resp = api.post("/api/v1/links", {"template_id": TEMPLATE, "channel": "sms"})
    finally:
        db.epoch_listeners.remove(failing_listener)
    assert resp.status_code == 500
    assert _error(resp) == {
        "code": "internal_error",
        "message": "Something went wrong on our side.",
    }
    assert len(api.get("/api/v1/links").get_json()["items"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.name == "linkgen.web"]
    assert errors == ["unhandled error on POST /api/v1/links"]


def test_a_database_that_cannot_be_reached_is_a_503_to_retry(
    app: Flask, sdk: Sdk, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, ConnectionError("the server closed the connection"))

    monkeypatch.setattr(sdk_views, "handle_launch", unreachable)
    resp = sdk.launch(new_device())
    assert resp.status_code == 503
    assert _error(resp)["code"] == "database_unavailable"
    assert _headers(resp) == _expected_headers(resp, ("Retry-After", "1"))
