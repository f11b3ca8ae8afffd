"""The test-device report (GET /api/v1/apps/{app_id}/devices) on SQLite and PostgreSQL: a
device's clicks, launches with the passed-over clicks explained, events and postbacks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from linkgen.domain.explain import REASON_TEXT
from tests.conftest import Api
from tests.integration.clickfactory import (
    ANDROID_APP,
    Sdk,
    configure_clevertap,
    insert_click,
    iso,
    make_sdk,
    new_device,
    utc_now,
)


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    made = make_sdk(app, client, api)
    configure_clevertap(app)
    return made


def report(api: Api, **query: str) -> dict[str, Any]:
    resp = api.get(f"/api/v1/apps/{ANDROID_APP}/devices", query_string=query)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_click_injection_is_explained_in_plain_words(sdk: Sdk, api: Api) -> None:
    now = utc_now()
    click = insert_click(sdk.app, ts=now - timedelta(seconds=3), link_id="lk1")
    device = new_device()
    resp = sdk.launch(device, install_referrer=f"af_tranid={click}", ts=iso(now))
    assert resp.get_json()["attribution"]["is_organic"] is True
    other = new_device()
    assert sdk.launch(other).status_code == 200  # another device: not in the report

    got = report(api, device_id=device)
    assert got["device_ids"] == [device]
    [launch] = got["launches"]
    assert launch["type"] == "install" and launch["is_organic"] is True
    assert launch["passed_over"] == [
        {
            "click_id": click,
            "reason": "click_injection",
            "explanation": REASON_TEXT["click_injection"],
        }
    ]
    assert "less than 10 seconds" in launch["passed_over"][0]["explanation"]
    assert [c["click_id"] for c in got["clicks"]] == [click]
    assert got["installs"][0]["device_id"] == device
    assert got["truncated"] is False


def test_by_clevertap_id_lists_events_and_postbacks(sdk: Sdk, api: Api) -> None:
    device, ctid = new_device(), "__ct-report-1"
    assert sdk.launch(device, customer_user_id=ctid).status_code == 200
    resp = sdk.event(
        device_id=device,
        event_name="af_purchase",
        event_values={"af_revenue": "9.99", "af_currency": "USD"},
    )
    assert resp.status_code == 201
    got = report(api, customer_user_id=ctid)
    assert got["device_ids"] == [device]
    assert [e["event_name"] for e in got["events"]] == ["af_purchase"]
    assert got["events"][0]["revenue"] == "9.99"
    kinds = sorted(p["kind"] for p in got["postbacks"])
    assert kinds == ["event", "install"]
    assert all("passcode" not in str(p["record"]).lower() for p in got["postbacks"])


def test_a_known_click_that_won_is_listed_without_reasons(sdk: Sdk, api: Api) -> None:
    now = utc_now()
    click = insert_click(sdk.app, ts=now - timedelta(minutes=5), link_id="lk2")
    device = new_device()
    sdk.launch(device, install_referrer=f"af_tranid={click}", ts=iso(now))
    [launch] = report(api, device_id=device)["launches"]
    assert launch["match_type"] == "referrer" and launch["click_id"] == click
    assert launch["passed_over"] == []


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({}, 400, "device_id"),
        ({"device_id": "a", "customer_user_id": "b"}, 400, "device_id"),
        ({"device_id": "x" * 201}, 400, "device_id"),
    ],
)
def test_bad_queries_name_the_field(
    sdk: Sdk, api: Api, query: dict[str, str], status: int, field: str
) -> None:
    resp = api.get(f"/api/v1/apps/{ANDROID_APP}/devices", query_string=query)
    assert resp.status_code == status
    assert resp.get_json()["error"]["field"] == field


def test_unknown_app_is_404(sdk: Sdk, api: Api) -> None:
    resp = api.get("/api/v1/apps/com.example.none/devices", query_string={"device_id": "d"})
    assert resp.status_code == 404


def test_an_unknown_device_is_an_empty_report(sdk: Sdk, api: Api) -> None:
    got = report(api, device_id="never-seen")
    assert got["launches"] == [] and got["clicks"] == [] and got["postbacks"] == []


def test_test_device_page_explains_a_passed_over_click(sdk: Sdk, app: Flask) -> None:
    from tests.integration.test_ui_security import _log_in, _make_user

    now = utc_now()
    click = insert_click(sdk.app, ts=now - timedelta(seconds=2))
    device = new_device()
    sdk.launch(device, install_referrer=f"af_tranid={click}", ts=iso(now))
    _make_user(app)
    assert _log_in(sdk.client).status_code == 302
    app_page = sdk.client.get(f"/apps/{ANDROID_APP}").get_data(as_text=True)
    assert f"/apps/{ANDROID_APP}/devices" in app_page
    page = sdk.client.get(f"/apps/{ANDROID_APP}/devices", query_string={"q": device})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Organic: no click won this launch." in text
    assert click in text and "click_injection" in text
    assert "less than 10 seconds" in text
    empty = sdk.client.get(f"/apps/{ANDROID_APP}/devices", query_string={"q": "nobody"})
    assert "Nothing stored for this id" in empty.get_data(as_text=True)
    bad = sdk.client.get(f"/apps/{ANDROID_APP}/devices", query_string={"q": "x" * 300})
    assert bad.status_code == 400
