"""The app factory, health and error shapes."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from linkgen.config import Settings
from linkgen.factory import create_app


def test_factory_takes_test_settings(app: Flask, settings: Settings) -> None:
    assert app.config["TESTING"] is True
    assert app.extensions["linkgen"].settings == settings


def test_factory_without_testing(settings: Settings) -> None:
    from dataclasses import replace

    application = create_app(replace(settings, testing=False))
    assert not application.testing
    application.extensions["linkgen"].db.dispose()


def test_healthz_ok(client: FlaskClient) -> None:
    resp = client.get("/healthz")  # the test settings run no worker
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok", "worker": "disabled"}


def test_healthz_degraded_while_an_expected_worker_is_missing(settings: Settings) -> None:
    from dataclasses import replace

    application = create_app(replace(settings, run_worker=True))
    try:
        resp = application.test_client().get("/healthz")
    finally:
        application.extensions["linkgen"].db.dispose()
    assert resp.status_code == 200  # the link domain still serves
    assert resp.get_json() == {"status": "degraded", "database": "ok", "worker": "stopped"}


def test_healthz_degraded_when_database_unreachable(settings: Settings) -> None:
    from dataclasses import replace

    bad = replace(settings, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    application = create_app(bad)
    resp = application.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["status"] == "degraded"


def test_api_without_key_is_401_json(client: FlaskClient) -> None:
    resp = client.get("/api/v1/apps")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


def test_api_with_bad_key_is_401(client: FlaskClient) -> None:
    resp = client.get("/api/v1/apps", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401


def test_unknown_api_path_is_json_404(client: FlaskClient, api_key: str) -> None:
    resp = client.get("/api/v1/nothing", headers={"Authorization": f"Bearer {api_key}"})
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_unknown_page_is_html_404(client: FlaskClient) -> None:
    resp = client.get("/no/such/page/here")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert b"404" in resp.data


def test_initial_api_key_becomes_first_admin_key(make_app: object) -> None:
    key = "initial-key-0123456789abcdef"
    application = make_app(initial_api_key=key)  # type: ignore[operator]
    client = application.test_client()
    resp = client.get("/api/v1/apps", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200
    assert resp.get_json() == {"items": [], "next": None}
