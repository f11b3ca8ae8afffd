"""LINKGEN_CLIENT_ADDRESS_STORAGE / LINKGEN_USER_AGENT_STORAGE: a real click through the link
domain, then an SDK launch; the stored rows keep only what the settings allow, and matching
compares the launch's address in the stored form (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from linkgen.domain.privacy import StoragePolicy
from linkgen.storage.models import Click
from tests.integration.clickfactory import CLIENT_IP, TEMPLATE, launches, make_sdk
from tests.integration.clicksetup import ANDROID
from tests.integration.test_api_integration import _api_for

CLICKER_IP = "198.51.100.99"  # the launch comes from CLIENT_IP, 198.51.100.7: the same /24


def _click_then_launch(app: Flask) -> tuple[Any, dict[str, Any]]:
    api = _api_for(app)
    sdk = make_sdk(app, api.client, api)
    resp = sdk.client.get(
        f"/{TEMPLATE}?pid=Email&c=spring",
        headers={"Host": "go.example.com", "User-Agent": ANDROID},
        environ_base={"REMOTE_ADDR": CLICKER_IP},
    )
    assert resp.status_code == 302
    with app.extensions["linkgen"].db.session() as session:
        (click,) = session.scalars(select(Click))
        # An hour ago: a launch seconds after its click is suspected click injection.
        click.ts -= timedelta(hours=1)
    launch = sdk.launch()
    assert launch.status_code == 200, launch.get_json()
    return click, launch.get_json()


@pytest.fixture
def with_policy(make_app: Callable[..., Flask]) -> Callable[[str, str], Flask]:
    def _make(address: str, user_agent: str) -> Flask:
        return make_app(privacy=StoragePolicy(address=address, user_agent=user_agent))  # type: ignore[arg-type]

    return _make


def test_truncated_and_parsed_keep_a_prefix_and_a_summary(
    with_policy: Callable[[str, str], Flask],
) -> None:
    app = with_policy("truncated", "parsed")
    click, launch = _click_then_launch(app)
    assert click.ip == "198.51.100.0"
    assert click.user_agent == "android; Android 14; Chrome Mobile"
    assert (click.platform, click.os_version) == ("android", "14")  # matching's inputs kept
    # Another address of the same /24, same platform and OS version: a probabilistic match.
    assert launch["attribution"]["match_type"] == "probabilistic"
    assert launch["attribution"]["click_id"] == click.click_id
    (row,) = launches(app)
    assert row.request["ip"] == "198.51.100.0"
    assert row.request["user_agent"].startswith("android; Android 14")
    assert "Pixel" not in row.request["user_agent"] and "Build" not in row.request["user_agent"]


def test_full_keeps_everything_and_matches_the_exact_address_only(
    with_policy: Callable[[str, str], Flask],
) -> None:
    app = with_policy("full", "full")
    click, launch = _click_then_launch(app)
    assert click.ip == CLICKER_IP and click.user_agent == ANDROID
    assert launch["attribution"]["is_organic"] is True  # 198.51.100.7 is not 198.51.100.99
    (row,) = launches(app)
    assert row.request["ip"] == CLIENT_IP and "Dalvik" in row.request["user_agent"]


def test_none_keeps_no_address_and_so_no_probabilistic_match(
    with_policy: Callable[[str, str], Flask],
) -> None:
    app = with_policy("none", "full")
    click, launch = _click_then_launch(app)
    assert click.ip is None
    assert launch["attribution"]["is_organic"] is True
    (row,) = launches(app)
    assert row.request["ip"] is None


def test_the_settings_come_from_the_environment() -> None:
    from linkgen.config import Settings

    settings = Settings.from_env(
        {"LINKGEN_CLIENT_ADDRESS_STORAGE": "truncated", "LINKGEN_USER_AGENT_STORAGE": "parsed"}
    )
    assert settings.privacy == StoragePolicy("truncated", "parsed")
    assert Settings.from_env({}).privacy == StoragePolicy("full", "full")
