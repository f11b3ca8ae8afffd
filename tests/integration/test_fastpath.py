"""The fast path (linkgen/web/fastpath.py) answers the hot API calls' usual case exactly as Flask
would, and hands every other request to Flask untouched (SQLite and PostgreSQL).

Each comparison sends the same kind of request twice, once with the fast path on and once with it
off (Flask's own views and hooks), and checks status, headers and body."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from linkgen.logs import RequestIdFilter
from linkgen.runtime import get_runtime
from linkgen.services.accounts import create_api_key
from linkgen.web.fastpath import FastPath
from linkgen.web.metrics import render
from linkgen.web.ratelimit import rate_limiter
from linkgen.web.sdk import app_cache
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

VARYING = {"X-Request-Id", "Content-Length"}  # differ between any two answers


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    return make_sdk(app, client, api)


@pytest.fixture
def fast(app: Flask) -> FastPath:
    path = app.extensions["linkgen"].fast_path
    assert isinstance(path, FastPath) and path.enabled
    return path


def _by_flask(fast: FastPath, send: Any) -> Any:
    """`send()` with the fast path off: Flask's own views and hooks answer."""
    fast.enabled = False
    try:
        return send()
    finally:
        fast.enabled = True


def _both(fast: FastPath, send: Any) -> tuple[Any, Any]:
    """`send()` answered by the fast path, then by Flask; the fast one must have been answered
    by the fast path itself."""
    before = fast.answered
    by_fast = send()
    assert fast.answered == before + 1, by_fast.get_json()
    by_flask = _by_flask(fast, send)
    assert fast.answered == before + 1
    return by_fast, by_flask


def _same_headers(a: Any, b: Any) -> None:
    def strip(resp: Any) -> list[tuple[str, str]]:
        return [(k, v) for k, v in resp.headers.items() if k not in VARYING]

    assert strip(a) == strip(b)
    assert [k for k, _ in a.headers.items()] == [k for k, _ in b.headers.items()]


def _shape(value: Any) -> Any:
    """A JSON value's structure: keys kept, every leaf replaced by its type's name."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _refused_alike(fast: FastPath, send: Any) -> Any:
    """`send()` refused: the fast path hands it to Flask, whose answer is the one Flask alone
    gives."""
    before = fast.answered, fast.fallbacks
    first = send()
    assert (fast.answered, fast.fallbacks) == (before[0], before[1] + 1)
    return _same_answer(first, _by_flask(fast, send))


def _flasks_alike(fast: FastPath, send: Any) -> Any:
    """`send()` not answered by the fast path (handed over or never taken), and answered as Flask
    alone answers it."""
    before = fast.answered
    first = send()
    assert fast.answered == before
    return _same_answer(first, _by_flask(fast, send))


def _same_answer(first: Any, second: Any) -> Any:
    assert first.status_code == second.status_code
    assert first.get_json() == second.get_json()
    _same_headers(first, second)
    return first


# ---- the usual case --------------------------------------------------------------------------


def test_a_launch_is_answered_as_flask_answers_it(app: Flask, sdk: Sdk, fast: FastPath) -> None:
    by_fast, by_flask = _both(fast, lambda: sdk.launch(new_device()))
    assert by_fast.status_code == by_flask.status_code == 200
    _same_headers(by_fast, by_flask)
    assert _shape(by_fast.get_json()) == _shape(by_flask.get_json())
    assert by_fast.get_json()["type"] == by_flask.get_json()["type"] == "install"
    # Byte for byte what jsonify sends for the same value.
    with app.app_context():
        from flask import jsonify

        assert by_fast.data == jsonify(by_fast.get_json()).data
    assert {launch.launch_id for launch in launches(app)} == {
        by_fast.get_json()["launch_id"],
        by_flask.get_json()["launch_id"],
    }


def test_a_retried_first_launch_gets_the_stored_answer(
    app: Flask, sdk: Sdk, fast: FastPath
) -> None:
    device = new_device()
    first = sdk.launch(device)
    again = sdk.launch(device)
    assert fast.answered == 2
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert len(launches(app)) == 1


def test_an_event_is_answered_as_flask_answers_it(app: Flask, sdk: Sdk, fast: FastPath) -> None:
    device = new_device()
    assert sdk.launch(device).status_code == 200
    by_fast, by_flask = _both(
        fast, lambda: sdk.event(device_id=device, event_name="af_purchase", af_revenue="9.99")
    )
    assert by_fast.status_code == by_flask.status_code == 201
    _same_headers(by_fast, by_flask)
    assert _shape(by_fast.get_json()) == _shape(by_flask.get_json())
    assert len(events(app)) == 2


def test_a_link_is_created_as_flask_creates_it(sdk: Sdk, api: Api, fast: FastPath) -> None:
    body = {
        "template_id": TEMPLATE,
        "channel": "sms",
        "campaign": "spring",
        "params": {"af_sub5": "{{Profile.objectId}}"},
    }
    by_fast, by_flask = _both(fast, lambda: api.post("/api/v1/links", body))
    assert by_fast.status_code == by_flask.status_code == 201
    _same_headers(by_fast, by_flask)
    a, b = by_fast.get_json(), by_flask.get_json()
    assert _shape(a) == _shape(b)
    assert a["shortlink_id"] != b["shortlink_id"]
    assert "{{Profile.objectId}}" in a["long_url"]
    assert a["created_by"] == b["created_by"]
    listed = api.get("/api/v1/links").get_json()["items"]
    assert {item["id"] for item in listed} == {a["id"], b["id"]}


def test_a_link_with_details_is_created_as_flask_creates_it(
    sdk: Sdk, api: Api, fast: FastPath
) -> None:
    body = {
        "template_id": TEMPLATE,
        "channel": "email",
        "title": " Spring newsletter ",
        "tags": ["Spring", "news", "spring"],
        "notes": "Footer link.\nSecond line.",
    }
    by_fast, by_flask = _both(fast, lambda: api.post("/api/v1/links", body))
    assert by_fast.status_code == by_flask.status_code == 201
    _same_headers(by_fast, by_flask)
    a, b = by_fast.get_json(), by_flask.get_json()
    assert _shape(a) == _shape(b)
    details = ("Spring newsletter", ["spring", "news"], "Footer link.\nSecond line.")
    assert (a["title"], a["tags"], a["notes"]) == (b["title"], b["tags"], b["notes"]) == details
    tagged = api.get("/api/v1/links?tag=news").get_json()["items"]
    assert {item["id"] for item in tagged} == {a["id"], b["id"]}
    refused = _refused_alike(fast, lambda: api.post("/api/v1/links", {**body, "tags": ["a b"]}))
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "tags[0]"


def test_https_answers_carry_hsts(sdk: Sdk, fast: FastPath) -> None:
    def send() -> Any:
        return sdk.client.post(
            f"/api/v1/sdk/{ANDROID_APP}/launches",
            json={"device_id": new_device(), "first_launch": True},
            headers={"X-SDK-Key": sdk.keys[ANDROID_APP]},
            base_url="https://go.example.com",
        )

    by_fast, by_flask = _both(fast, send)
    assert by_fast.headers["Strict-Transport-Security"] == "max-age=31536000"
    _same_headers(by_fast, by_flask)


def test_request_id_access_log_and_metrics(
    app: Flask, sdk: Sdk, fast: FastPath, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="linkgen.access")
    resp = sdk.client.post(
        f"/api/v1/sdk/{ANDROID_APP}/launches",
        json={"device_id": new_device(), "first_launch": True},
        headers={"X-SDK-Key": sdk.keys[ANDROID_APP], "X-Request-Id": "req-fast-1"},
    )
    assert resp.status_code == 200 and fast.answered == 1
    assert resp.headers["X-Request-Id"] == "req-fast-1"
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == "req-fast-1"]
    assert len(lines) == 1
    line: Any = lines[0]
    assert (line.method, line.path, line.status) == (
        "POST",
        f"/api/v1/sdk/{ANDROID_APP}/launches",
        200,
    )
    # A malformed id is replaced, as Flask's hook replaces it.
    resp = sdk.launch(new_device())
    assert len(resp.headers["X-Request-Id"]) == 32
    with app.app_context():
        scraped = render(app)
    assert 'endpoint="sdk.post_launch",method="POST",status="2xx"' in scraped
    count = next(
        line
        for line in scraped.splitlines()
        if line.startswith("linkgen_http_request_duration_seconds_count")
        and 'endpoint="sdk.post_launch"' in line
    )
    assert float(count.rsplit(" ", 1)[1]) == 2


# ---- everything else goes to Flask ------------------------------------------------------------


def test_sdk_refusals_are_flasks(app: Flask, sdk: Sdk, fast: FastPath) -> None:
    resp = _refused_alike(fast, lambda: sdk.launch(new_device(), key=""))
    assert resp.status_code == 401
    resp = _refused_alike(fast, lambda: sdk.launch(new_device(), key="sdk_not_a_key"))
    assert resp.status_code == 401
    resp = _refused_alike(fast, lambda: sdk.launch(raw=b'{"device_id": '))
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "body"
    resp = _refused_alike(fast, lambda: sdk.launch(raw=b"[1, 2]"))
    assert resp.status_code == 400
    resp = _refused_alike(fast, lambda: sdk.launch(raw={"first_launch": True}))
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "device_id"
    resp = _refused_alike(
        fast, lambda: sdk.launch(new_device(), app_id=IOS_APP, key=sdk.keys[ANDROID_APP])
    )
    assert resp.status_code == 401
    resp = _refused_alike(fast, lambda: sdk.event(event_name="af_purchase"))
    assert resp.status_code == 400
    assert launches(app) == [] and events(app) == []


def test_link_refusals_are_flasks(app: Flask, sdk: Sdk, api: Api, fast: FastPath) -> None:
    with app.extensions["linkgen"].db.session() as session:
        _, read_only = create_api_key(session, "viewer", scope="read")
    body = {"template_id": TEMPLATE, "channel": "sms"}
    resp = _refused_alike(
        fast,
        lambda: sdk.client.post(
            "/api/v1/links", json=body, headers={"Authorization": f"Bearer {read_only}"}
        ),
    )
    assert resp.status_code == 403
    resp = _refused_alike(
        fast, lambda: sdk.client.post("/api/v1/links", json=body, headers={"Authorization": "x"})
    )
    assert resp.status_code == 401
    resp = _refused_alike(fast, lambda: api.post("/api/v1/links", {**body, "pid": "a/b"}))
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "pid"
    resp = _refused_alike(fast, lambda: api.post("/api/v1/links", {**body, "template_id": "Nope"}))
    assert resp.status_code in (400, 404)
    first = api.post("/api/v1/links", {**body, "shortlink_id": "spring1"})
    assert first.status_code == 201
    resp = _refused_alike(
        fast, lambda: api.post("/api/v1/links", {**body, "shortlink_id": "spring1"})
    )
    assert resp.status_code == 409
    assert [item["shortlink_id"] for item in api.get("/api/v1/links").get_json()["items"]] == [
        "spring1"
    ]


def test_throttled_callers_get_flasks_429(app: Flask, sdk: Sdk, fast: FastPath) -> None:
    rate_limiter(app).configure("sdk", rate=0.01, burst=1)
    assert sdk.launch(new_device()).status_code == 200
    resp = sdk.launch(new_device())
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1
    assert fast.answered == 1 and fast.fallbacks == 1
    assert len(launches(app)) == 1


def test_what_the_fast_path_does_not_match_is_flasks(sdk: Sdk, api: Api, fast: FastPath) -> None:
    key = {"X-SDK-Key": sdk.keys[ANDROID_APP]}
    body = {"device_id": new_device(), "first_launch": True}
    path = f"/api/v1/sdk/{ANDROID_APP}/launches"
    assert sdk.client.post(path + "?x=1", json=body, headers=key).status_code == 200
    assert sdk.client.post(path + "/", json=body, headers=key).status_code in (308, 404, 405)
    assert sdk.client.put(path, json=body, headers=key).status_code == 405
    assert api.get("/api/v1/links").status_code == 200
    assert sdk.client.post(path, data=b"", headers=key).status_code == 400
    assert (fast.answered, fast.fallbacks) == (0, 0)


# ---- the body as Flask reads it, the scheme ---------------------------------------------------


def _launch_body() -> bytes:
    return json.dumps({"device_id": new_device(), "first_launch": True}).encode()


def test_a_chunked_body_is_read_as_flask_reads_it(app: Flask, sdk: Sdk, fast: FastPath) -> None:
    # With Transfer-Encoding: chunked, Flask ignores Content-Length and reads the stream only
    # when the server says it terminates it (wsgi.input_terminated); here it does not.
    def send() -> Any:
        return sdk.client.post(
            f"/api/v1/sdk/{ANDROID_APP}/launches",
            data=_launch_body(),
            headers={"X-SDK-Key": sdk.keys[ANDROID_APP], "Transfer-Encoding": "chunked"},
        )

    resp = _flasks_alike(fast, send)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "body"
    assert launches(app) == []


def test_a_body_of_another_length_than_said_is_read_as_flask_reads_it(
    app: Flask, sdk: Sdk, fast: FastPath
) -> None:
    path = f"/api/v1/sdk/{ANDROID_APP}/launches"
    key = {"X-SDK-Key": sdk.keys[ANDROID_APP]}

    def truncated() -> Any:  # the client went away before sending all it announced
        body = _launch_body()
        return sdk.client.post(
            path, data=body, headers=key, environ_overrides={"CONTENT_LENGTH": str(len(body) + 9)}
        )

    resp = _flasks_alike(fast, truncated)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_request"

    def longer() -> Any:  # a terminated stream is read to its end, whatever Content-Length says
        body = _launch_body()
        return sdk.client.post(
            path,
            data=body + b" trailing bytes",
            headers=key,
            environ_overrides={"CONTENT_LENGTH": str(len(body)), "wsgi.input_terminated": True},
        )

    resp = _flasks_alike(fast, longer)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "body"
    assert launches(app) == []

    def shorter() -> Any:
        body = _launch_body()
        return sdk.client.post(
            path,
            data=body,
            headers=key,
            environ_overrides={"CONTENT_LENGTH": str(len(body) + 9), "wsgi.input_terminated": True},
        )

    resp = shorter()  # Flask reads what came and takes it
    assert resp.status_code == 200 and fast.answered == 0
    assert [launch.launch_id for launch in launches(app)] == [resp.get_json()["launch_id"]]


def test_websocket_schemes_are_flasks(app: Flask, sdk: Sdk, fast: FastPath) -> None:
    def send() -> Any:
        return sdk.client.post(
            f"/api/v1/sdk/{ANDROID_APP}/launches",
            data=_launch_body(),
            headers={"X-SDK-Key": sdk.keys[ANDROID_APP]},
            environ_overrides={"wsgi.url_scheme": "wss"},
        )

    assert _flasks_alike(fast, send).status_code == 400  # werkzeug's websocket mismatch
    assert launches(app) == []


# ---- what Flask must not do again -------------------------------------------------------------


def test_a_handed_over_request_takes_one_rate_limit_token(
    app: Flask, sdk: Sdk, fast: FastPath
) -> None:
    answers = []
    for enabled in (True, False):
        fast.enabled = enabled
        try:
            rate_limiter(app).configure("sdk", rate=0.01, burst=2)
            refused = sdk.launch(raw=b"[1]")  # a token, then Flask's 400
            answers.append(
                [refused.status_code, *(sdk.launch(new_device()).status_code for _ in range(2))]
            )
        finally:
            fast.enabled = True
    assert answers == [[400, 200, 429], [400, 200, 429]]
    assert (fast.answered, fast.fallbacks) == (1, 2)


def test_records_logged_before_a_hand_over_carry_the_answers_request_id(
    app: Flask,
    sdk: Sdk,
    fast: FastPath,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = app_cache(get_runtime(app))
    look_up = cache.get

    def logged_look_up(*args: Any) -> Any:
        logging.getLogger("linkgen.test").warning("looking up an SDK key")
        return look_up(*args)

    monkeypatch.setattr(cache, "get", logged_look_up)
    caplog.set_level(logging.WARNING, logger="linkgen.test")
    caplog.handler.addFilter(RequestIdFilter())
    resp = sdk.launch(raw=b"[1]")  # no X-Request-Id: the fast path draws one, Flask keeps it
    assert resp.status_code == 400 and fast.fallbacks == 1
    ids = [getattr(r, "request_id", None) for r in caplog.records if r.name == "linkgen.test"]
    assert ids == [resp.headers["X-Request-Id"]] * 2  # the fast path's look-up, then Flask's


def test_an_error_after_a_links_commit_is_answered_once_as_flask_answers_it(
    app: Flask, sdk: Sdk, api: Api, fast: FastPath, caplog: pytest.LogCaptureFixture
) -> None:
    db = app.extensions["linkgen"].db

    def failing_listener() -> None:
        raise RuntimeError("an epoch listener failed")

    def stored() -> int:
        return len(api.get("/api/v1/links").get_json()["items"])

    caplog.set_level(logging.ERROR, logger="linkgen.web")
    body = {"template_id": TEMPLATE, "channel": "sms"}
    db.epoch_listeners.append(failing_listener)
    try:
        by_fast = api.post("/api/v1/links", body)
        assert (fast.answered, fast.fallbacks) == (0, 1)
        assert stored() == 1  # committed once, not written again by Flask
        by_flask = _by_flask(fast, lambda: api.post("/api/v1/links", body))
        assert stored() == 2
    finally:
        db.epoch_listeners.remove(failing_listener)
    assert by_fast.status_code == by_flask.status_code == 500
    assert by_fast.get_json() == by_flask.get_json()
    _same_headers(by_fast, by_flask)
    errors = [r.getMessage() for r in caplog.records if r.name == "linkgen.web"]
    assert errors == ["unhandled error on POST /api/v1/links"] * 2
