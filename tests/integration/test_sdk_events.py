"""SDK in-app events end to end: validation, attribution to the install and to an active
re-engagement, idempotency by event_id, counters and postbacks (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Api
from tests.integration.clickfactory import (
    ANDROID_APP,
    IOS_APP,
    Sdk,
    configure_clevertap,
    events,
    insert_click,
    iso,
    make_sdk,
    new_device,
    postbacks,
    utc_now,
)

T0 = utc_now() - timedelta(days=2)


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    return make_sdk(app, client, api)


def installed(sdk: Sdk, *, link_id: str = "lk-ua", cuid: str | None = "cu-1", **params: str) -> str:
    """An install attributed to an Email link click; returns the device id."""
    device = new_device()
    gaid = "g-" + device
    insert_click(
        sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": gaid, **params}, link_id=link_id
    )
    body: dict[str, Any] = {"gaid": gaid, "ts": iso(T0)}
    if cuid is not None:
        body["customer_user_id"] = cuid
    resp = sdk.launch(device, **body)
    assert resp.status_code == 200 and resp.get_json()["attribution"]["link_id"] == link_id
    return device


def reengaged(sdk: Sdk, device: str, *, window: str | None = None, hours_after: int = 24) -> None:
    """A retargeting Push click re-engages the device `hours_after` hours after install."""
    params = {
        "gaid": "g-" + device,
        "is_retargeting": "true",
        "pid": "Push",
        "c": "winback",
        "af_channel": "push",
    }
    if window is not None:
        params["af_reengagement_window"] = window
    at = T0 + timedelta(hours=hours_after)
    insert_click(sdk.app, ts=at - timedelta(minutes=10), params=params, link_id="lk-push")
    resp = sdk.launch(device, first_launch=False, gaid="g-" + device, ts=iso(at))
    assert resp.get_json()["type"] == "reengagement", resp.get_json()


def purchase(sdk: Sdk, device: str, **values: Any) -> Any:
    return sdk.event(
        device_id=device,
        event_name="af_purchase",
        event_values={"af_revenue": "9.99", "af_currency": "EUR", **values},
        ts=iso(T0 + timedelta(hours=30)),
    )


# ---- recording and attribution -----------------------------------------------------------


def test_event_of_an_attributed_install_is_201_with_its_source(sdk: Sdk) -> None:
    device = installed(sdk)
    resp = purchase(sdk, device)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["attribution"]["link_id"] == "lk-ua"
    assert body["attribution"]["media_source"] == "Email"
    assert body["attribution"]["is_organic"] is False
    assert body["reengagement"] is None
    (row,) = events(sdk.app)
    assert row.revenue_micros == 9_990_000 and row.currency == "EUR"
    assert row.link_id == "lk-ua" and row.response == body
    stats = sdk.stats("link")["lk-ua"]
    assert stats["events"] == 1 and stats["revenue"] == 9.99 and stats["installs"] == 1


def test_repeated_event_id_is_200_with_the_same_body_stored_once(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    device = installed(sdk)
    body = {
        "event_id": "client-unique-1",
        "device_id": device,
        "event_name": "af_purchase",
        "event_values": {"af_revenue": 5, "af_currency": "USD"},
        "ts": iso(T0 + timedelta(hours=3)),
    }
    first = sdk.event(raw=body)
    second = sdk.event(raw=body)
    third = sdk.event(raw={**body, "event_values": {"af_revenue": 7}})
    assert first.status_code == 201
    assert second.status_code == 200 and third.status_code == 200
    assert first.get_json() == second.get_json() == third.get_json()
    assert len(events(sdk.app)) == 1
    assert [p.kind for p in postbacks(sdk.app)] == ["install", "event"]
    stats = sdk.stats("link")["lk-ua"]
    assert stats["events"] == 1 and stats["revenue"] == 5


def test_same_event_id_in_another_app_is_another_event(sdk: Sdk) -> None:
    a = sdk.event(event_id="shared", device_id="d1", event_name="x")
    b = sdk.event(event_id="shared", device_id="d1", event_name="x", app_id=IOS_APP)
    assert a.status_code == b.status_code == 201
    assert len(events(sdk.app)) == 2


def test_event_of_an_unknown_device_is_organic(sdk: Sdk) -> None:
    resp = sdk.event(device_id="never-seen", event_name="af_login")
    assert resp.status_code == 201
    assert resp.get_json()["attribution"]["is_organic"] is True
    assert resp.get_json()["attribution"]["media_source"] == "organic"
    assert sdk.stats("media_source")["organic"]["events"] == 1


def test_event_found_by_customer_user_id_alone(sdk: Sdk) -> None:
    installed(sdk, cuid="cu-only")
    resp = sdk.event(customer_user_id="cu-only", event_name="af_login")
    assert resp.status_code == 201
    assert resp.get_json()["attribution"]["link_id"] == "lk-ua"


def test_event_inside_the_reengagement_window_credits_the_retargeting_link(sdk: Sdk) -> None:
    device = installed(sdk)
    reengaged(sdk, device)
    resp = purchase(sdk, device)
    body = resp.get_json()
    assert body["attribution"]["link_id"] == "lk-ua"  # the install's own source stays primary
    assert body["reengagement"]["link_id"] == "lk-push"
    assert body["reengagement"]["media_source"] == "Push"
    row = events(sdk.app)[-1]
    assert row.re_link_id == "lk-push" and row.re_campaign == "winback"
    by_link = sdk.stats("link")
    assert by_link["lk-push"]["events"] == 1 and by_link["lk-push"]["revenue"] == 9.99
    assert by_link["lk-ua"]["events"] == 0


@pytest.mark.parametrize(
    ("offset", "inside"),
    [(timedelta(hours=12), True), (timedelta(hours=12, seconds=1), False)],
)
def test_reengagement_window_boundary_to_the_second(
    sdk: Sdk, offset: timedelta, inside: bool
) -> None:
    device = installed(sdk)
    reengaged(sdk, device, window="12h", hours_after=1)
    at = T0 + timedelta(hours=1) + offset
    resp = sdk.event(device_id=device, event_name="af_level", ts=iso(at))
    body = resp.get_json()
    assert (body["reengagement"] is not None) is inside


def test_app_reengagement_window_setting_applies(app: Flask, client: FlaskClient, api: Api) -> None:
    sdk = make_sdk(app, client, api, reengagement_window="1d")
    device = installed(sdk)
    reengaged(sdk, device, hours_after=1)
    resp = sdk.event(device_id=device, event_name="af_level", ts=iso(T0 + timedelta(hours=30)))
    assert resp.get_json()["reengagement"] is None
    assert sdk.stats("link")["lk-ua"]["events"] == 1


def test_event_before_the_reengagement_is_not_credited_to_it(sdk: Sdk) -> None:
    device = installed(sdk)
    reengaged(sdk, device, hours_after=24)
    resp = sdk.event(device_id=device, event_name="af_level", ts=iso(T0 + timedelta(hours=2)))
    assert resp.get_json()["reengagement"] is None


def test_late_event_ts_is_kept(sdk: Sdk) -> None:
    device = installed(sdk)
    ts = T0 + timedelta(minutes=5)
    assert sdk.event(device_id=device, event_name="x", ts=iso(ts)).status_code == 201
    assert events(sdk.app)[-1].ts == ts


def test_revenue_number_and_default_currency(sdk: Sdk) -> None:
    device = installed(sdk)
    resp = sdk.event(device_id=device, event_name="af_purchase", event_values={"af_revenue": 12})
    assert resp.status_code == 201
    row = events(sdk.app)[-1]
    assert row.revenue_micros == 12_000_000 and row.currency == "USD"


@pytest.mark.parametrize(
    ("revenue", "micros"),
    [("9.99", 9_990_000), (0.5, 500_000), ("-3", -3_000_000), ("0.0000015", 2), (" 7 ", 7_000_000)],
)
def test_revenue_values_become_micros(sdk: Sdk, revenue: Any, micros: int) -> None:
    resp = sdk.event(device_id="d", event_name="af_purchase", event_values={"af_revenue": revenue})
    assert resp.status_code == 201, resp.get_json()
    assert events(sdk.app)[-1].revenue_micros == micros


def test_event_without_revenue_stores_none(sdk: Sdk) -> None:
    assert sdk.event(device_id="d", event_name="af_login").status_code == 201
    row = events(sdk.app)[-1]
    assert row.revenue_micros is None and row.currency is None and row.event_values == {}


# ---- postbacks ----------------------------------------------------------------------------


def test_mapped_purchase_is_queued_as_charged_with_numbers(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    device = installed(sdk)
    purchase(sdk, device, quantity=2)
    row = postbacks(sdk.app)[-1]
    assert (row.kind, row.status) == ("event", "queued")
    assert row.record is not None
    assert row.record["evtName"] == "Charged" and row.record["objectId"] == "cu-1"
    data = row.record["evtData"]
    assert data["Amount"] == 9.99 and data["Currency"] == "EUR"
    assert data["af_revenue"] == 9.99 and data["quantity"] == 2
    assert data["linkgen_id"] == row.linkgen_id and len(row.linkgen_id) <= 64
    assert row.source_id == events(sdk.app)[-1].event_id


def test_event_postback_uses_the_events_own_customer_user_id(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    device = installed(sdk, cuid=None)
    sdk.event(device_id=device, customer_user_id="cu-late", event_name="af_purchase")
    row = postbacks(sdk.app)[-1]
    assert row.record is not None and row.record["objectId"] == "cu-late"


@pytest.mark.parametrize(
    ("changes", "event_name", "reason"),
    [
        ({}, "af_unmapped", "event_not_mapped"),
        ({"in_app_enabled": False}, "af_purchase", "in_app_postbacks_disabled"),
        ({"active": False}, "af_purchase", "partner_inactive"),
        ({"postback_window_days": 1}, "af_purchase", "outside_postback_window"),
    ],
)
def test_event_postback_skips_name_the_reason(
    sdk: Sdk, changes: dict[str, Any], event_name: str, reason: str
) -> None:
    configure_clevertap(sdk.app, **changes)
    device = installed(sdk)
    resp = sdk.event(
        device_id=device, event_name=event_name, ts=iso(T0 + timedelta(days=1, seconds=1))
    )
    assert resp.status_code == 201
    row = postbacks(sdk.app)[-1]
    assert (row.kind, row.status, row.reason) == ("event", "skipped", reason)


def test_this_partner_mapping_skips_organic_events(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    sdk.event(device_id="unknown", customer_user_id="cu-x", event_name="af_level")
    row = postbacks(sdk.app)[-1]
    assert (row.status, row.reason) == ("skipped", "not_this_partner")


def test_this_partner_mapping_sends_events_of_linkgen_links(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    device = installed(sdk)
    sdk.event(device_id=device, event_name="af_level", event_values={"af_revenue": 3, "lvl": 4})
    row = postbacks(sdk.app)[-1]
    assert row.status == "queued" and row.record is not None
    assert row.record["evtName"] == "Level Achieved"
    # "values" sends the event values without af_revenue.
    assert row.record["evtData"]["lvl"] == 4 and "af_revenue" not in row.record["evtData"]


def test_event_without_customer_user_id_is_skipped(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    device = installed(sdk, cuid=None)
    sdk.event(device_id=device, event_name="af_purchase")
    row = postbacks(sdk.app)[-1]
    assert (row.status, row.reason) == ("skipped", "no_customer_user_id")


# ---- bad requests and auth ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"device_id": "d", "event_name": "x"}, "event_id"),
        ({"event_id": "", "device_id": "d", "event_name": "x"}, "event_id"),
        ({"event_id": "e" * 201, "device_id": "d", "event_name": "x"}, "event_id"),
        ({"event_id": 7, "device_id": "d", "event_name": "x"}, "event_id"),
        ({"event_id": "e", "device_id": "d"}, "event_name"),
        ({"event_id": "e", "device_id": "d", "event_name": "n" * 201}, "event_name"),
        ({"event_id": "e", "event_name": "x"}, "device_id"),
        ({"event_id": "e", "device_id": 5, "event_name": "x"}, "device_id"),
        (
            {"event_id": "e", "device_id": "d", "event_name": "x", "event_values": []},
            "event_values",
        ),
        (
            {"event_id": "e", "device_id": "d", "event_name": "x", "event_values": "a=1"},
            "event_values",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_revenue": "abc"},
            },
            "event_values.af_revenue",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_revenue": True},
            },
            "event_values.af_revenue",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_revenue": "NaN"},
            },
            "event_values.af_revenue",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_revenue": [1]},
            },
            "event_values.af_revenue",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_revenue": "1e20"},
            },
            "event_values.af_revenue",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_currency": "usd"},
            },
            "event_values.af_currency",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_currency": "EURO"},
            },
            "event_values.af_currency",
        ),
        (
            {
                "event_id": "e",
                "device_id": "d",
                "event_name": "x",
                "event_values": {"af_currency": 978},
            },
            "event_values.af_currency",
        ),
        ({"event_id": "e", "device_id": "d", "event_name": "x", "ts": "2026-11-29"}, "ts"),
        (
            {"event_id": "e", "device_id": "d", "event_name": "x", "customer_user_id": "c" * 201},
            "customer_user_id",
        ),
        (["e"], "body"),
        ("nope", "body"),
    ],
)
def test_malformed_event_is_400_naming_the_field(sdk: Sdk, body: Any, field: str) -> None:
    resp = sdk.event(raw=body)
    assert resp.status_code == 400, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_parameter" and err["field"] == field
    assert events(sdk.app) == []


def test_event_ts_far_in_the_future_is_refused(sdk: Sdk) -> None:
    resp = sdk.event(device_id="d", event_name="x", ts=iso(utc_now() + timedelta(hours=1)))
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "ts"


def test_event_without_key_is_401_and_unknown_app_is_404(sdk: Sdk) -> None:
    assert sdk.event(device_id="d", event_name="x", key="").status_code == 401
    assert sdk.event(device_id="d", event_name="x", key="sdk_nope").status_code == 401
    resp = sdk.event(
        app_id="com.missing.app", key=sdk.keys[ANDROID_APP], device_id="d", event_name="x"
    )
    assert resp.status_code == 404 and resp.get_json()["error"]["field"] == "app_id"
    assert events(sdk.app) == []


def test_concurrent_duplicate_events_are_stored_once(sdk: Sdk) -> None:
    from concurrent.futures import ThreadPoolExecutor

    configure_clevertap(sdk.app)
    device = installed(sdk)
    body = {"event_id": "race-1", "device_id": device, "event_name": "af_purchase"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: sdk.event(raw=body), range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.get_data() for a in answers}) == 1
    assert len(events(sdk.app)) == 1
    assert [p.kind for p in postbacks(sdk.app)] == ["install", "event"]
