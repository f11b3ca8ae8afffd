"""`linkgen check`: each problem is a FAIL line saying what to fix and exit 1; CleverTap
credentials are tried against the real HTTP fake (SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alembic import command
from flask import Flask

from linkgen.storage.migrate import alembic_config
from tests.fakes.fake_clevertap import FakeCleverTap
from tests.integration.test_api_integration import ACCOUNT, FULL, PASSCODE, _api_for

APP = "com.example.shop"
INTEGRATION = f"/api/v1/apps/{APP}/integrations/clevertap"


@pytest.fixture
def fake() -> Iterator[FakeCleverTap]:
    with FakeCleverTap({ACCOUNT: PASSCODE}) as server:
        yield server


@pytest.fixture
def checked(make_app: Callable[..., Flask], fake: FakeCleverTap) -> Flask:
    """An app at head with an active integration, talking to the fake, and a template."""
    application = make_app(clevertap_api_base=fake.base_url)
    command.stamp(alembic_config(application.extensions["linkgen"].settings.database_url), "head")
    api = _api_for(application)
    assert api.post("/api/v1/apps", {"app_id": APP, "name": "Shop"}).status_code == 201
    assert api.put(INTEGRATION, FULL).status_code == 200
    body = {"template_id": "AbCd", "domain": "go.example.com", "android_app_id": APP}
    assert api.post("/api/v1/templates", body).status_code == 201, "template"
    return application


def _check(application: Flask, *args: str) -> Any:
    return application.test_cli_runner().invoke(args=["check", *args])


def test_a_sound_instance_passes(checked: Flask, fake: FakeCleverTap) -> None:
    result = _check(checked)
    assert result.exit_code == 0, result.output
    assert "ok   migrations: at head" in result.output
    assert f"ok   CleverTap for {APP}: CleverTap" in result.output
    assert "all checks passed" in result.output
    (request,) = fake.requests
    assert request.path.startswith("/eu1/v1/connect")


def test_wrong_credentials_fail_with_what_to_fix(
    checked: Flask, fake: FakeCleverTap, make_app: Callable[..., Flask]
) -> None:
    _api_for(checked).put(INTEGRATION, {**FULL, "account_passcode": "WRONG-PASSCODE"})
    result = _check(checked)
    assert result.exit_code == 1
    assert f"FAIL CleverTap for {APP}:" in result.output
    assert "HTTP 401" in result.output and "Fix the account ID, passcode or region" in result.output
    assert "WRONG-PASSCODE" not in result.output
    assert "1 problem(s) to fix" in result.output


def test_no_network_calls_nobody(checked: Flask, fake: FakeCleverTap) -> None:
    result = _check(checked, "--no-network")
    assert result.exit_code == 0, result.output
    assert "not checked: --no-network" in result.output
    assert fake.requests == []


def test_an_unreachable_clevertap_fails(make_app: Callable[..., Flask], checked: Flask) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = checked.extensions["linkgen"].settings
    other = make_app(
        clevertap_api_base=f"http://127.0.0.1:{port}/{{region}}",
        instance_path=settings.instance_path,
    )
    result = _check(other)
    assert result.exit_code == 1
    assert "Could not connect to CleverTap" in result.output


def test_migrations_behind_say_run_db_upgrade(checked: Flask) -> None:
    url = checked.extensions["linkgen"].settings.database_url
    command.stamp(alembic_config(url), "0002_click_storage", purge=True)
    result = _check(checked, "--no-network")
    assert result.exit_code == 1
    assert "FAIL migrations: at 0002_click_storage, head is " in result.output
    assert "run linkgen db upgrade" in result.output


def test_a_template_domain_outside_link_domains_fails(
    checked: Flask, make_app: Callable[..., Flask]
) -> None:
    other = make_app(link_domains=("links.example.org",))
    result = _check(other, "--no-network")
    assert result.exit_code == 1
    assert "FAIL template domain go.example.com: is used by a template but is neither" in (
        result.output
    )
    assert "warn link domain links.example.org" not in result.output  # https: fine


def test_an_unreachable_database_fails(make_app: Callable[..., Flask]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    other = make_app(database_url=f"postgresql+psycopg://nobody@127.0.0.1:{port}/none")
    result = _check(other, "--no-network")
    assert result.exit_code == 1
    assert "FAIL database: does not answer: check LINKGEN_DATABASE_URL" in result.output
