"""The test-device view (API and page): a device's clicks, launches and why each click was or
was not chosen, its events and postbacks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from linkgen.domain.explain import PASSED_OVER
from tests.conftest import Api
from tests.integration.clickfactory import (
    ANDROID_APP,
    configure_clevertap,
    insert_click,
    iso,
    make_sdk,
    new_device,
    utc_now,
)
from tests.integration.test_postback_worker import _ui_client


@pytest.fixture
def seen(app: Flask, client: FlaskClient, api: Api) -> dict[str, Any]:
    """Two installs: one from a click 2 s before its launch (passed over as click injection),
    one attributed by its advertising id, with a purchase."""
    sdk = make_sdk(app, client, api)
    configure_clevertap(app)
    now = utc_now()
    injected_device = new_device()
    injected = insert_click(
        app, ts=now - timedelta(seconds=2), params={"gaid": "g-" + injected_device}
    )
    resp = sdk.launch(injected_device, gaid="g-" + injected_device, ts=iso(now))
    assert resp.get_json()["attribution"]["is_organic"] is True
    device = new_device()
    won = insert_click(app, ts=now - timedelta(hours=1), params={"gaid": "g-" + device})
    resp = sdk.launch(device, gaid="g-" + device, customer_user_id="ct-7", ts=iso(now))
    assert resp.get_json()["attribution"]["click_id"] == won
    event = sdk.event(
        device_id=device,
        customer_user_id="ct-7",
        event_name="af_purchase",
        event_values={"af_revenue": "4.50", "af_currency": "EUR"},
        ts=iso(now),
    )
    assert event.status_code == 201
    return {"injected_device": injected_device, "injected": injected, "device": device, "won": won}


def test_a_passed_over_click_is_explained_in_words(api: Api, seen: dict[str, Any]) -> None:
    resp = api.get(f"/api/v1/apps/{ANDROID_APP}/devices?q={seen['injected_device']}")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    (launch,) = body["launches"]
    assert launch["type"] == "install" and launch["is_organic"] is True
    assert launch["passed_over"] == [
        {
            "click_id": seen["injected"],
            "reason": "click_injection",
            "why": PASSED_OVER["click_injection"],
        }
    ]
    assert "too soon for a person" in launch["passed_over"][0]["why"]
    assert [c["click_id"] for c in body["clicks"]] == [seen["injected"]]


@pytest.mark.parametrize("which", ["device", "gaid", "customer"])
def test_a_device_is_found_by_any_of_its_ids(api: Api, seen: dict[str, Any], which: str) -> None:
    q = {"device": seen["device"], "gaid": "g-" + seen["device"], "customer": "ct-7"}[which]
    body = api.get(f"/api/v1/apps/{ANDROID_APP}/devices?q={q}").get_json()
    (launch,) = body["launches"]
    assert launch["match_type"] == "device_id" and launch["click_id"] == seen["won"]
    assert "advertising id" in launch["matched"]
    assert [c["click_id"] for c in body["clicks"]] == [seen["won"]]
    assert [e["event_name"] for e in body["events"]] == ["af_purchase"]
    assert sorted(p["kind"] for p in body["postbacks"]) == ["event", "install"]
    assert [i["device_id"] for i in body["installs"]] == [seen["device"]]


@pytest.mark.parametrize(
    ("query", "field"), [("", "q"), ("q=" + "x" * 201, "q"), ("q=a&days=0", "days")]
)
def test_bad_device_queries_name_the_field(
    api: Api, seen: dict[str, Any], query: str, field: str
) -> None:
    resp = api.get(f"/api/v1/apps/{ANDROID_APP}/devices?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == field


def test_unknown_app_is_404(api: Api) -> None:
    assert api.get("/api/v1/apps/com.example.nope/devices?q=a").status_code == 404


def test_device_page_shows_the_explanation(app: Flask, seen: dict[str, Any]) -> None:
    ui = _ui_client(app)
    page = ui.get(f"/devices?app_id={ANDROID_APP}&q={seen['injected_device']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-reason="click_injection"' in html and "too soon for a person" in html
    assert "No click won: the launch counts as organic." in html
    empty = ui.get(f"/devices?app_id={ANDROID_APP}&q=nobody").get_data(as_text=True)
    assert "Nothing found for <code>nobody</code>" in empty
    bad = ui.get(f"/devices?app_id={ANDROID_APP}&q=x&days=500")
    assert bad.status_code == 400 and "days must be" in bad.get_data(as_text=True)
