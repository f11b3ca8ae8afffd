"""Launches from apps' own HTTP clients match clicks from the phone's browser (SQLite and
PostgreSQL): a real click on the link domain, then a real SDK launch from the same address."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from linkgen.storage.models import Click
from tests.conftest import Api
from tests.integration.clickfactory import (
    ANDROID_APP,
    CLIENT_IP,
    IOS_APP,
    TEMPLATE,
    Sdk,
    launches,
    make_sdk,
)

LONG = f"/{TEMPLATE}?pid=Email&c=spring_sale"
IOS_APP_UA = "Shop/3.2 CFNetwork/1494.0.7 Darwin/23.4.0"  # iOS 17.4
FLUTTER_UA = "Dart/3.2 (dart:io)"  # names no platform at all
DALVIK_14 = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004)"


def safari(os_token: str, version: str) -> str:
    return (
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {os_token} like Mac OS X) AppleWebKit/605.1.15 "
        f"(KHTML, like Gecko) Version/{version} Mobile/15E148 Safari/604.1"
    )


def chrome_android(os_token: str) -> str:
    return (
        f"Mozilla/5.0 (Linux; Android {os_token}) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.6422.113 Mobile Safari/537.36"
    )


SAFARI_17_4_1 = safari("17_4_1", "17.4.1")
SAFARI_16_7 = safari("16_7_8", "16.6")
SAFARI_26 = safari("18_6", "26.1")  # iOS 26 Safari still says 18_6


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    return make_sdk(app, client, api)


def click(sdk: Sdk, ua: str, ip: str = CLIENT_IP) -> None:
    """A click on the link domain, made an hour ago (a launch seconds later is click injection)."""
    resp = sdk.client.get(
        LONG, headers={"Host": "go.example.com", "User-Agent": ua}, environ_base={"REMOTE_ADDR": ip}
    )
    assert resp.status_code == 302, resp.status_code
    with sdk.app.extensions["linkgen"].db.session() as session:
        for row in session.scalars(select(Click)):
            row.ts -= timedelta(hours=1)


def launch(client: Sdk, app_id: str, ua: str, **body: Any) -> dict[str, Any]:
    resp = client.launch(app_id=app_id, ua=ua, **body)
    assert resp.status_code == 200, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def reasons(app: Flask) -> list[str]:
    return [p["reason"] for p in launches(app)[-1].explain["passed_over"]]


@pytest.mark.parametrize(
    ("browser", "app_ua"),
    [
        (SAFARI_17_4_1, IOS_APP_UA),
        (safari("17_4", "17.4"), IOS_APP_UA),
        (SAFARI_26, "Shop/3.2 CFNetwork/3860.200.71 Darwin/25.1.0"),  # iOS 26.1
    ],
)
def test_ios_app_client_launch_matches_the_safari_click(
    sdk: Sdk, browser: str, app_ua: str
) -> None:
    click(sdk, browser)
    body = launch(sdk, IOS_APP, app_ua)
    assert body["attribution"]["match_type"] == "probabilistic"
    assert body["attribution"]["media_source"] == "Email"
    explain = launches(sdk.app)[-1].explain
    assert explain["platform"] == "ios"
    assert explain["os_source"] == {"platform": "user_agent", "os_version": "user_agent"}


def test_real_ios_version_mismatch_is_still_not_a_match(sdk: Sdk) -> None:
    click(sdk, SAFARI_16_7)
    body = launch(sdk, IOS_APP, IOS_APP_UA)
    assert body["attribution"]["is_organic"] is True
    assert reasons(sdk.app) == ["os_version_mismatch"]


def test_explicit_os_version_decides_when_the_user_agent_names_none(sdk: Sdk) -> None:
    click(sdk, SAFARI_16_7)
    body = launch(sdk, IOS_APP, FLUTTER_UA, os="iOS", os_version="17.4")
    assert body["attribution"]["is_organic"] is True
    assert reasons(sdk.app) == ["os_version_mismatch"]

    body = launch(sdk, IOS_APP, FLUTTER_UA, os="ios", os_version="16.7.8")
    assert body["attribution"]["match_type"] == "probabilistic"
    stored = launches(sdk.app)[-1]
    assert stored.explain["os_version"] == "16.7.8"
    assert stored.explain["os_source"] == {"platform": "body", "os_version": "body"}


def test_explicit_os_version_wins_over_the_user_agent(sdk: Sdk) -> None:
    click(sdk, SAFARI_17_4_1)
    body = launch(sdk, IOS_APP, IOS_APP_UA, os_version="16.7")
    assert body["attribution"]["is_organic"] is True
    assert reasons(sdk.app) == ["os_version_mismatch"]


@pytest.mark.parametrize("browser", [chrome_android("14; Pixel 8"), chrome_android("10; K")])
def test_android_dalvik_launch_matches_the_chrome_click(sdk: Sdk, browser: str) -> None:
    # "Android 10; K" is Chrome's reduced user agent, sent by every Android version.
    click(sdk, browser)
    body = launch(sdk, ANDROID_APP, DALVIK_14)
    assert body["attribution"]["match_type"] == "probabilistic"
    assert launches(sdk.app)[-1].explain["os_version"] == "14"


def test_android_version_mismatch_is_not_a_match(sdk: Sdk) -> None:
    click(sdk, chrome_android("13; SM-S911B"))
    body = launch(sdk, ANDROID_APP, DALVIK_14)
    assert body["attribution"]["is_organic"] is True
    assert reasons(sdk.app) == ["os_version_mismatch"]


def test_okhttp_launch_is_android_with_an_unknown_version(sdk: Sdk) -> None:
    click(sdk, chrome_android("13; SM-S911B"))
    body = launch(sdk, ANDROID_APP, "okhttp/4.12.0")
    assert body["attribution"]["match_type"] == "probabilistic"
    explain = launches(sdk.app)[-1].explain
    assert (explain["platform"], explain["os_version"]) == ("android", None)


def test_app_version_and_sdk_are_kept_on_the_launch(sdk: Sdk) -> None:
    launch(sdk, IOS_APP, IOS_APP_UA, app_version="3.2 (421)", sdk="linkgen-ios/1.4.0")
    request = launches(sdk.app)[-1].request
    assert (request["app_version"], request["sdk"]) == ("3.2 (421)", "linkgen-ios/1.4.0")
    assert (request["os"], request["os_version"]) == (None, None)


@pytest.mark.parametrize(
    ("app_id", "body", "field"),
    [
        (IOS_APP, {"os": "windows"}, "os"),
        (IOS_APP, {"os": 3}, "os"),
        (IOS_APP, {"os": "android"}, "os"),  # an iOS app's launch
        (ANDROID_APP, {"os": "ios", "os_version": "17.4"}, "os"),
        (IOS_APP, {"os_version": "seventeen"}, "os_version"),
        (IOS_APP, {"os_version": 17.4}, "os_version"),
        (IOS_APP, {"os_version": "17.4.1.2.3"}, "os_version"),
        (IOS_APP, {"app_version": "x" * 65}, "app_version"),
        (IOS_APP, {"app_version": ["3.2"]}, "app_version"),
        (IOS_APP, {"sdk": {"name": "linkgen"}}, "sdk"),
        (IOS_APP, {"sdk": "linkgen\n1.0"}, "sdk"),
    ],
)
def test_bad_launch_os_fields_are_400_naming_the_field(
    sdk: Sdk, app_id: str, body: dict[str, Any], field: str
) -> None:
    resp = sdk.launch(app_id=app_id, **body)
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert (error["code"], error["field"]) == ("invalid_parameter", field)
    assert launches(sdk.app) == []
