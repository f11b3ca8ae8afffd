"""The access log (linkgen/logs.py): one line per API / web request, none per click.

SQLite only: the access log does not touch the database.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from linkgen.logs import ACCESS_LOGGER, REQUEST_ID_HEADER, JsonFormatter, RequestIdFilter
from linkgen.services.accounts import create_api_key
from tests.conftest import Api
from tests.integration.clicksetup import IPHONE, Setup, make_setup
from tests.integration.sqlite_only import make_sqlite_app


@pytest.fixture
def sqlite_app(sqlite_template: Path, tmp_path: Path) -> Iterator[Flask]:
    app = make_sqlite_app(sqlite_template, tmp_path)
    yield app
    app.extensions["linkgen"].close()


@pytest.fixture
def api(sqlite_app: Flask) -> Api:
    with sqlite_app.extensions["linkgen"].db.session() as session:
        _, key = create_api_key(session, "access-log")
    return Api(sqlite_app.test_client(), key)


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_api_requests_are_logged_without_their_query_string(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    resp = api.get("/api/v1/links?limit=5&campaign=secret-looking-value")
    assert resp.status_code == 200
    [record] = _access(caplog)
    fields = {k: getattr(record, k) for k in ("method", "path", "status", "request_id")}
    assert fields == {
        "method": "GET",
        "path": "/api/v1/links",
        "status": 200,
        "request_id": resp.headers[REQUEST_ID_HEADER],
    }
    assert isinstance(record.duration_ms, float) and record.duration_ms >= 0
    assert "secret" not in record.getMessage() and "limit" not in record.getMessage()
    assert record.getMessage().startswith("GET /api/v1/links 200 ")


def test_errors_and_refusals_are_logged_too(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    assert api.post("/api/v1/apps", {"app_id": ""}).status_code == 400
    assert api.client.get("/api/v1/apps").status_code == 401  # no key
    assert api.get("/api/v1/nothing-here").status_code == 404
    assert [(r.method, r.path, r.status) for r in _access(caplog)] == [
        ("POST", "/api/v1/apps", 400),
        ("GET", "/api/v1/apps", 401),
        ("GET", "/api/v1/nothing-here", 404),
    ]


def test_a_well_formed_request_id_is_kept_and_echoed(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    given = "6f1c9c2e-8f5b-4a53-9b51-6f0a3c2d1e4f"
    resp = api.get("/api/v1/apps", headers={REQUEST_ID_HEADER: given})
    assert resp.headers[REQUEST_ID_HEADER] == given
    forged = api.get("/api/v1/apps", headers={REQUEST_ID_HEADER: "x y\tINFO forged"})
    made = forged.headers[REQUEST_ID_HEADER]
    assert made != given and "forged" not in made
    other = api.get("/api/v1/apps")
    assert other.headers[REQUEST_ID_HEADER] not in (given, made)
    assert [r.request_id for r in _access(caplog)] == [
        given,
        made,
        other.headers[REQUEST_ID_HEADER],
    ]


def test_probes_log_at_debug_only(sqlite_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    client = sqlite_app.test_client()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert _access(caplog) == []
    caplog.set_level(logging.DEBUG, logger=ACCESS_LOGGER)
    client.get("/healthz")
    assert [(r.levelno, r.path) for r in _access(caplog)] == [(logging.DEBUG, "/healthz")]


def test_web_pages_are_logged(sqlite_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    resp = sqlite_app.test_client().get("/login")
    assert resp.status_code in (200, 302)
    assert [(r.method, r.path) for r in _access(caplog)] == [("GET", "/login")]


def test_nothing_is_logged_per_click(
    sqlite_app: Flask, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    s: Setup = make_setup(sqlite_app, api.client, api)
    path, _ = s.short_path()
    caplog.set_level(logging.DEBUG)
    resp = s.click(path + "?af_sub1=device-123", IPHONE)
    assert resp.status_code == 302
    assert len(s.clicks()) == 1
    assert caplog.records == []
    assert REQUEST_ID_HEADER not in resp.headers


def test_json_lines_of_a_request(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """What a log collector sees: the access fields, and the request id on other records."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.INFO)
    app = api.client.application

    @app.get("/api/v1/_log_probe")
    def _probe() -> str:
        logging.getLogger("linkgen.web").warning("inside the request")
        return "ok"

    try:
        resp = api.get("/api/v1/_log_probe?token=abc")
    finally:
        root.removeHandler(handler)
    rid = resp.headers[REQUEST_ID_HEADER]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    inner = next(x for x in lines if x["logger"] == "linkgen.web")
    assert inner["message"] == "inside the request" and inner["request_id"] == rid
    access = next(x for x in lines if x["logger"] == ACCESS_LOGGER)
    assert {k: access[k] for k in ("level", "method", "path", "status", "request_id")} == {
        "level": "INFO",
        "method": "GET",
        "path": "/api/v1/_log_probe",
        "status": 200,
        "request_id": rid,
    }
    assert isinstance(access["duration_ms"], float) and access["process"] > 0
    assert "token" not in stream.getvalue()
