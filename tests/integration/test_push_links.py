"""Push links open the app (SQLite and PostgreSQL): the click on the link domain answers a page or
an intent that tries the app's scheme first, and the open the app reports is counted once."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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
    click_consumed,
    make_sdk,
    new_device,
)

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.113 Mobile Safari/537.36"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
IOS_APP_UA = "Shop/3.2 CFNetwork/1494.0.7 Darwin/23.4.0"
FALLBACK = "https://www.example.com/welcome"


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    made = make_sdk(app, client, api)
    resp = api.patch(
        f"/api/v1/templates/{TEMPLATE}", {"uri_scheme": "shop://", "web_fallback_url": FALLBACK}
    )
    assert resp.status_code == 200, resp.get_json()
    return made


def push_link(sdk: Sdk) -> dict[str, Any]:
    resp = sdk.api.post(
        "/api/v1/links",
        {
            "template_id": TEMPLATE,
            "channel": "push",
            "campaign": "winback",
            "params": {"deep_link_value": "cart"},
        },
    )
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def tap(sdk: Sdk, url: str, ua: str) -> Any:
    parts = urlsplit(url)
    return sdk.client.get(
        f"{parts.path}?{parts.query}",
        headers={"Host": "go.example.com", "User-Agent": ua},
        environ_base={"REMOTE_ADDR": CLIENT_IP},
    )


def clicks(sdk: Sdk) -> list[Click]:
    with sdk.app.extensions["linkgen"].db.session() as session:
        return list(session.scalars(select(Click).order_by(Click.id)))


def page_strings(page: str) -> list[str]:
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    return [
        bytes(s, "ascii").decode("unicode_escape")
        for s in re.findall(r'"((?:[^"\\]|\\.)*)"', script)
    ]


def test_push_click_on_ios_answers_the_try_the_app_page(sdk: Sdk) -> None:
    resp = tap(sdk, push_link(sdk)["long_url"], IPHONE)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    [row] = clicks(sdk)
    assert row.outcome == "deeplink_scheme" and row.platform == "ios"
    page = resp.get_data(as_text=True)
    app_url, fallback = page_strings(page)[:2]
    query = parse_qs(urlsplit(app_url).query)
    assert app_url.startswith("shop://?")
    assert query["af_tranid"] == [row.click_id] and query["deep_link_value"] == ["cart"]
    assert query["pid"] == ["Push"] and query["is_retargeting"] == ["true"]
    assert fallback == f"https://apps.apple.com/app/{IOS_APP}"
    # Headers: never cached, and only the page's own script may run.
    assert resp.headers["Cache-Control"] == "no-store"
    csp = resp.headers["Content-Security-Policy"]
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and csp.startswith("default-src 'none'")
    assert "unsafe-inline" not in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"


def test_push_click_on_android_is_an_intent_falling_back_to_google_play(sdk: Sdk) -> None:
    resp = tap(sdk, push_link(sdk)["long_url"], ANDROID)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    [row] = clicks(sdk)
    assert location.startswith("intent://?") and f"af_tranid={row.click_id}" in location
    assert f";scheme=shop;package={ANDROID_APP};" in location
    fallback = unquote(location.split("S.browser_fallback_url=", 1)[1].split(";", 1)[0])
    assert fallback.startswith(f"https://play.google.com/store/apps/details?id={ANDROID_APP}")
    assert row.outcome == "intent"


def test_push_click_on_desktop_is_unchanged(sdk: Sdk) -> None:
    resp = tap(sdk, push_link(sdk)["long_url"], DESKTOP)
    assert (resp.status_code, resp.headers["Location"]) == (302, FALLBACK)


def launch(sdk: Sdk, device: str, **body: Any) -> dict[str, Any]:
    resp = sdk.launch(device, app_id=IOS_APP, ua=IOS_APP_UA, **body)
    assert resp.status_code == 200, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def reengagements(sdk: Sdk) -> int:
    return int(sdk.totals()["reengagements"])


def test_the_app_reporting_the_open_after_the_push_click_is_counted_once(sdk: Sdk) -> None:
    device = new_device()
    launch(sdk, device)  # installed earlier
    link = push_link(sdk)
    page = tap(sdk, link["long_url"], IPHONE).get_data(as_text=True)
    [row] = clicks(sdk)
    # The app reports the push's own link as it opens from the notification ...
    first = launch(sdk, device, first_launch=False, deep_link_url=link["long_url"])
    assert first["type"] == "reengagement"
    assert first["attribution"]["click_id"] == row.click_id
    assert first["deep_link"]["deep_link_value"] == "cart"
    # ... and again the scheme URL the page opened it with: the same open.
    again = launch(sdk, device, first_launch=False, deep_link_url=page_strings(page)[0])
    assert again["type"] == "open"
    assert reengagements(sdk) == 1
    assert sdk.totals()["clicks"] == 1  # one tap, one click


def test_an_open_reported_before_the_click_reaches_the_link_domain_is_counted_once(
    sdk: Sdk,
) -> None:
    device = new_device()
    launch(sdk, device)
    link = push_link(sdk)
    # CleverTap's iOS SDK: the app opens from the notification and reports the link first ...
    first = launch(sdk, device, first_launch=False, deep_link_url=link["long_url"])
    assert first["type"] == "reengagement"
    # ... then opens it in Safari, whose page opens the app again by its scheme.
    page = tap(sdk, link["long_url"], IPHONE).get_data(as_text=True)
    [row] = clicks(sdk)
    again = launch(sdk, device, first_launch=False, deep_link_url=page_strings(page)[0])
    assert again["type"] == "open"
    assert again["deep_link"]["deep_link_value"] == "cart"
    assert reengagements(sdk) == 1
    # The click is tied to that open: it can never win a later launch.
    assert click_consumed(sdk.app, row.click_id)
