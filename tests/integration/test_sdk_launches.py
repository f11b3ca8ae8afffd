"""SDK launches end to end: HTTP -> attribution -> storage, counters and postbacks (SQLite and
PostgreSQL). Clicks are stored directly with the click path's column semantics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from linkgen.storage.models import Install
from tests.conftest import Api
from tests.integration.clickfactory import (
    ANDROID_APP,
    CLIENT_IP,
    IOS_APP,
    Sdk,
    click_consumed,
    configure_clevertap,
    insert_click,
    insert_link,
    iso,
    launches,
    make_sdk,
    new_device,
    postbacks,
    utc_now,
)

T0 = utc_now() - timedelta(hours=2)


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    return make_sdk(app, client, api)


def ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def attribution(resp: Any) -> dict[str, Any]:
    body = ok(resp)
    return {"type": body["type"], **body["attribution"]}


def passed_over(app: Flask) -> dict[str, str]:
    last = launches(app)[-1]
    return {p["click_id"]: p["reason"] for p in last.explain["passed_over"]}


# ---- installs ---------------------------------------------------------------------------------


def test_launch_without_click_is_organic_install(sdk: Sdk) -> None:
    body = ok(sdk.launch(ts=iso(T0)))
    assert body["type"] == "install"
    assert body["launch_id"].startswith("ln_")
    assert body["attribution"] == {
        "is_organic": True,
        "media_source": "organic",
        "campaign": None,
        "channel": None,
        "match_type": None,
        "click_id": None,
        "click_time": None,
        "link_id": None,
    }
    assert body["deep_link"] == {"status": "NOT_FOUND"}
    assert sdk.stats("media_source")["organic"]["installs"] == 1


def test_android_referrer_match(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(hours=1), link_id="lk1")
    resp = sdk.launch(install_referrer=f"af_tranid={click}&pid=Email&c=spring_sale", ts=iso(T0))
    got = attribution(resp)
    assert got["type"] == "install" and got["match_type"] == "referrer"
    assert got["click_id"] == click and got["link_id"] == "lk1"
    assert got["media_source"] == "Email" and got["campaign"] == "spring_sale"
    assert got["channel"] == "email"
    assert got["click_time"] == iso(T0 - timedelta(hours=1))
    assert click_consumed(sdk.app, click)
    assert sdk.stats("link")["lk1"]["installs"] == 1


def test_percent_encoded_referrer_is_read(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(minutes=30))
    resp = sdk.launch(install_referrer=f"af_tranid%3D{click}%26pid%3DEmail", ts=iso(T0))
    assert attribution(resp)["match_type"] == "referrer"


def test_gaid_device_id_match(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(days=2), params={"gaid": "AAAA-1111"})
    got = attribution(sdk.launch(gaid="aaaa-1111", ts=iso(T0)))
    assert got["match_type"] == "device_id" and got["click_id"] == click


def test_ios_idfa_match(sdk: Sdk) -> None:
    click = insert_click(
        sdk.app, ts=T0 - timedelta(days=1), params={"idfa": "IDFA-1"}, app_id=IOS_APP
    )
    got = attribution(sdk.launch(app_id=IOS_APP, idfa="IDFA-1", ts=iso(T0)))
    assert got["match_type"] == "device_id" and got["click_id"] == click


def test_customer_user_id_match_via_af_sub5(sdk: Sdk) -> None:
    cuid = "__h1a2b3c:@$!(x)"
    click = insert_click(sdk.app, ts=T0 - timedelta(days=3), params={"af_sub5": cuid})
    got = attribution(sdk.launch(customer_user_id=cuid, ts=iso(T0)))
    assert got["match_type"] == "customer_user_id" and got["click_id"] == click


def test_probabilistic_match_same_ip_platform_and_os(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(hours=5), ip=CLIENT_IP, os_version="14")
    got = attribution(sdk.launch(ts=iso(T0)))
    assert got["match_type"] == "probabilistic" and got["click_id"] == click


def test_probabilistic_uses_the_ip_from_the_body(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(hours=1), ip="2001:db8::1")
    got = attribution(sdk.launch(ip="2001:0db8:0000::0001", ts=iso(T0)))
    assert got["match_type"] == "probabilistic" and got["click_id"] == click


def test_probabilistic_window_is_24_hours_to_the_second(sdk: Sdk) -> None:
    inside = insert_click(sdk.app, ts=T0 - timedelta(hours=24), ip=CLIENT_IP)
    assert attribution(sdk.launch(ts=iso(T0)))["click_id"] == inside
    outside = insert_click(sdk.app, ts=T0 - timedelta(hours=24, seconds=1), ip=CLIENT_IP)
    got = attribution(sdk.launch(ts=iso(T0)))
    assert got["is_organic"] is True
    # Only the (now consumed) click inside the window is even fetched.
    assert passed_over(sdk.app) == {inside: "consumed"}
    assert not click_consumed(sdk.app, outside)


def test_probabilistic_os_version_mismatch_is_not_a_match(sdk: Sdk) -> None:
    insert_click(sdk.app, ts=T0 - timedelta(hours=1), ip=CLIENT_IP, os_version="13")
    assert attribution(sdk.launch(ts=iso(T0)))["is_organic"] is True


def test_probabilistic_matching_can_be_switched_off(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    sdk = make_sdk(app, client, api, probabilistic_matching=False)
    click = insert_click(app, ts=T0 - timedelta(hours=1), ip=CLIENT_IP)
    assert attribution(sdk.launch(ts=iso(T0)))["is_organic"] is True
    assert not click_consumed(app, click)


def test_referrer_beats_a_later_probabilistic_click(sdk: Sdk) -> None:
    referred = insert_click(sdk.app, ts=T0 - timedelta(hours=3))
    insert_click(sdk.app, ts=T0 - timedelta(minutes=5), ip=CLIENT_IP)
    got = attribution(sdk.launch(install_referrer=f"af_tranid={referred}", ts=iso(T0)))
    assert got["click_id"] == referred and got["match_type"] == "referrer"


@pytest.mark.parametrize(
    ("age", "attributed"),
    [
        (timedelta(days=7), True),
        (timedelta(days=7, seconds=1), False),
        (timedelta(days=6, hours=23, minutes=59, seconds=59), True),
    ],
)
def test_default_lookback_boundary_to_the_second(
    sdk: Sdk, age: timedelta, attributed: bool
) -> None:
    click = insert_click(sdk.app, ts=T0 - age, params={"gaid": "g-lookback"})
    got = attribution(sdk.launch(gaid="g-lookback", ts=iso(T0)))
    assert (got["click_id"] == click) is attributed
    assert got["is_organic"] is not attributed
    if not attributed:
        assert passed_over(sdk.app)[click] == "outside_lookback"


@pytest.mark.parametrize(
    ("age", "attributed"), [(timedelta(hours=1), True), (timedelta(hours=1, seconds=1), False)]
)
def test_link_click_lookback_boundary(sdk: Sdk, age: timedelta, attributed: bool) -> None:
    click = insert_click(sdk.app, ts=T0 - age, params={"gaid": "g-1h", "af_click_lookback": "1h"})
    got = attribution(sdk.launch(gaid="g-1h", ts=iso(T0)))
    assert (got["click_id"] == click) is attributed


def test_app_lookback_setting_applies(app: Flask, client: FlaskClient, api: Api) -> None:
    sdk = make_sdk(app, client, api, click_lookback="2d")
    insert_click(app, ts=T0 - timedelta(days=2, seconds=1), params={"gaid": "g-app"})
    assert attribution(sdk.launch(gaid="g-app", ts=iso(T0)))["is_organic"] is True


def test_last_click_wins(sdk: Sdk) -> None:
    old = insert_click(sdk.app, ts=T0 - timedelta(days=3), params={"gaid": "g-last", "c": "a"})
    new = insert_click(sdk.app, ts=T0 - timedelta(days=1), params={"gaid": "g-last", "c": "b"})
    got = attribution(sdk.launch(gaid="g-last", ts=iso(T0)))
    assert got["click_id"] == new and got["campaign"] == "b"
    assert passed_over(sdk.app)[old] == "superseded"
    assert not click_consumed(sdk.app, old)


def test_tie_at_the_same_second_goes_to_the_stronger_method(sdk: Sdk) -> None:
    at = T0 - timedelta(hours=2)
    by_device = insert_click(sdk.app, ts=at, params={"gaid": "g-tie"}, click_id="ck-z-device")
    by_referrer = insert_click(sdk.app, ts=at, click_id="ck-a-referrer")
    got = attribution(
        sdk.launch(gaid="g-tie", install_referrer=f"af_tranid={by_referrer}", ts=iso(T0))
    )
    assert got["click_id"] == by_referrer
    assert passed_over(sdk.app)[by_device] == "superseded"


def test_tie_with_the_same_method_goes_to_the_larger_click_id(sdk: Sdk) -> None:
    at = T0 - timedelta(hours=2)
    insert_click(sdk.app, ts=at, params={"gaid": "g-tie2"}, click_id="ck-aaa")
    insert_click(sdk.app, ts=at, params={"gaid": "g-tie2"}, click_id="ck-bbb")
    assert attribution(sdk.launch(gaid="g-tie2", ts=iso(T0)))["click_id"] == "ck-bbb"


def test_bot_click_never_wins(sdk: Sdk) -> None:
    bot = insert_click(
        sdk.app, ts=T0 - timedelta(minutes=30), params={"gaid": "g-bot"}, is_bot=True
    )
    got = attribution(sdk.launch(gaid="g-bot", ts=iso(T0)))
    assert got["is_organic"] is True
    assert passed_over(sdk.app)[bot] == "bot"


def test_bot_loses_to_an_older_human_click(sdk: Sdk) -> None:
    human = insert_click(sdk.app, ts=T0 - timedelta(hours=3), params={"gaid": "g-bh"})
    insert_click(sdk.app, ts=T0 - timedelta(minutes=3), params={"gaid": "g-bh"}, is_bot=True)
    assert attribution(sdk.launch(gaid="g-bh", ts=iso(T0)))["click_id"] == human


def test_expired_link_click_is_not_attributable(sdk: Sdk) -> None:
    expired = insert_click(
        sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-exp"}, attributable=False
    )
    got = attribution(sdk.launch(gaid="g-exp", ts=iso(T0)))
    assert got["is_organic"] is True
    assert passed_over(sdk.app)[expired] == "expired_link"


def test_clicks_of_other_apps_and_desktop_are_ignored(sdk: Sdk) -> None:
    insert_click(sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-x"}, app_id=IOS_APP)
    insert_click(sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-x"}, app_id=None)
    got = attribution(sdk.launch(gaid="g-x", ts=iso(T0)))
    assert got["is_organic"] is True
    assert launches(sdk.app)[-1].explain["candidates"] == 0


def test_click_injection_is_recorded_and_never_wins(sdk: Sdk) -> None:
    injected = insert_click(sdk.app, ts=T0 - timedelta(seconds=5), params={"gaid": "g-inj"})
    got = attribution(sdk.launch(gaid="g-inj", ts=iso(T0)))
    assert got["is_organic"] is True
    explain = launches(sdk.app)[-1].explain
    assert explain["suspected_injection"] == [injected]


def test_a_consumed_click_does_not_win_twice(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(hours=1), ip=CLIENT_IP)
    assert attribution(sdk.launch(ts=iso(T0)))["click_id"] == click
    got = attribution(sdk.launch(ts=iso(T0 + timedelta(minutes=1))))
    assert got["is_organic"] is True
    assert passed_over(sdk.app)[click] == "consumed"


def test_late_ts_attributes_as_of_the_launch_time(sdk: Sdk) -> None:
    before = insert_click(sdk.app, ts=T0 - timedelta(hours=2), params={"gaid": "g-late"})
    after = insert_click(sdk.app, ts=T0 + timedelta(minutes=30), params={"gaid": "g-late"})
    got = attribution(sdk.launch(gaid="g-late", ts=iso(T0)))
    assert got["click_id"] == before
    assert after not in passed_over(sdk.app) or passed_over(sdk.app)[after] == "after_launch"
    assert launches(sdk.app)[-1].ts == T0


def test_ts_slightly_in_the_future_is_clamped(sdk: Sdk) -> None:
    body = ok(sdk.launch(ts=iso(utc_now() + timedelta(minutes=2))))
    assert body["type"] == "install"
    stored = launches(sdk.app)[-1]
    assert stored.explain["ts_clamped"] is True
    assert stored.ts <= utc_now() + timedelta(seconds=1)


def test_ts_with_an_offset_is_normalised(sdk: Sdk) -> None:
    ok(sdk.launch(ts=(T0 + timedelta(hours=2)).isoformat().replace("+00:00", "+02:00")))
    assert launches(sdk.app)[-1].ts == T0


def test_missing_ts_means_now(sdk: Sdk) -> None:
    before = utc_now()
    ok(sdk.launch())
    assert launches(sdk.app)[-1].ts >= before


# ---- deferred deep linking ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "found"),
    [(timedelta(minutes=15), True), (timedelta(minutes=15, seconds=1), False)],
)
def test_deferred_deep_link_within_15_minutes(sdk: Sdk, age: timedelta, found: bool) -> None:
    params = {
        "gaid": "g-ddl",
        "deep_link_value": "shoes",
        "deep_link_sub1": "red",
        "af_sub1": "private",
    }
    insert_click(sdk.app, ts=T0 - age, params=params)
    body = ok(sdk.launch(gaid="g-ddl", ts=iso(T0)))
    assert body["attribution"]["is_organic"] is False
    if found:
        # New users get only deep_link_value and deep_link_sub1..10 (privacy rule).
        assert body["deep_link"] == {
            "status": "FOUND",
            "deep_link_value": "shoes",
            "deep_link_sub1": "red",
        }
    else:
        assert body["deep_link"] == {"status": "NOT_FOUND"}


# ---- retries ------------------------------------------------------------------------------


def test_repeated_first_launch_is_answered_the_same_and_counted_once(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    click = insert_click(sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-retry"})
    device = new_device()
    first = sdk.launch(device, gaid="g-retry", customer_user_id="cu-1", ts=iso(T0))
    again = sdk.launch(device, gaid="g-retry", customer_user_id="cu-1", ts=iso(T0))
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert first.get_json()["attribution"]["click_id"] == click
    assert len(launches(sdk.app)) == 1
    assert sdk.totals()["installs"] == 1
    assert len(postbacks(sdk.app)) == 1


def test_retry_with_a_different_body_still_answers_the_first(sdk: Sdk) -> None:
    device = new_device()
    first = ok(sdk.launch(device, ts=iso(T0)))
    insert_click(sdk.app, ts=T0 - timedelta(minutes=30), params={"gaid": "g-later"})
    again = ok(sdk.launch(device, gaid="g-later", ts=iso(T0 + timedelta(minutes=1))))
    assert again == first


def test_non_first_launch_of_an_unknown_device_is_an_install(sdk: Sdk) -> None:
    got = attribution(sdk.launch(first_launch=False, ts=iso(T0)))
    assert got["type"] == "install"
    assert sdk.totals()["installs"] == 1


# ---- existing users: opens and re-engagements --------------------------------------------------


def _install(sdk: Sdk, device: str, **body: Any) -> dict[str, Any]:
    return ok(sdk.launch(device, ts=iso(T0 - timedelta(days=10)), **body))


def test_open_without_click_reports_the_install(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(days=10, hours=1), params={"gaid": "g-open"})
    device = new_device()
    _install(sdk, device, gaid="g-open")
    got = attribution(sdk.launch(device, first_launch=False, gaid="g-open", ts=iso(T0)))
    assert got["type"] == "open"
    assert got["click_id"] == click and got["match_type"] == "device_id"
    assert sdk.totals()["installs"] == 1 and sdk.totals()["reengagements"] == 0


def test_retargeting_click_after_install_is_a_reengagement(sdk: Sdk) -> None:
    device = new_device()
    _install(sdk, device, gaid="g-re")
    params = {
        "gaid": "g-re",
        "pid": "Push",
        "c": "winback",
        "af_channel": "push",
        "is_retargeting": "true",
        "deep_link_value": "cart",
        "af_sub1": "x",
    }
    click = insert_click(sdk.app, ts=T0 - timedelta(minutes=20), params=params, link_id="lk-re")
    body = ok(sdk.launch(device, first_launch=False, gaid="g-re", ts=iso(T0)))
    assert body["type"] == "reengagement"
    assert body["attribution"]["click_id"] == click
    assert body["attribution"]["media_source"] == "Push"
    # Existing users get every parameter of the link.
    assert body["deep_link"]["af_sub1"] == "x" and body["deep_link"]["deep_link_value"] == "cart"
    assert sdk.stats("link")["lk-re"]["reengagements"] == 1
    assert sdk.stats("channel")["push"]["reengagements"] == 1


def test_non_retargeting_click_after_install_is_an_open(sdk: Sdk) -> None:
    device = new_device()
    _install(sdk, device, gaid="g-ua")
    click = insert_click(sdk.app, ts=T0 - timedelta(minutes=20), params={"gaid": "g-ua"})
    got = attribution(sdk.launch(device, first_launch=False, gaid="g-ua", ts=iso(T0)))
    assert got["type"] == "open"
    assert passed_over(sdk.app)[click] == "not_retargeting"


def test_a_click_older_than_the_last_reengagement_does_not_win_again(sdk: Sdk) -> None:
    device = new_device()
    _install(sdk, device, gaid="g-old")
    retarget = {"gaid": "g-old", "is_retargeting": "true", "pid": "Push"}
    insert_click(sdk.app, ts=T0 - timedelta(hours=3), params=retarget)
    newer = insert_click(sdk.app, ts=T0 - timedelta(hours=1), params=retarget)
    first = attribution(sdk.launch(device, first_launch=False, gaid="g-old", ts=iso(T0)))
    assert first["type"] == "reengagement" and first["click_id"] == newer
    later = T0 + timedelta(minutes=5)
    second = attribution(sdk.launch(device, first_launch=False, gaid="g-old", ts=iso(later)))
    assert second["type"] == "open"
    assert sdk.totals()["reengagements"] == 1


def test_deep_link_url_of_a_short_link_opens_as_reengagement(sdk: Sdk) -> None:
    device = new_device()
    _install(sdk, device)
    link_id = insert_link(
        sdk.app,
        shortlink_id="x7Gk2pQa",
        params={"is_retargeting": "true", "deep_link_value": "shoes", "af_sub2": "y"},
    )
    url = "https://go.example.com/AbCd/x7Gk2pQa?af_sub5=cu-9"
    body = ok(sdk.launch(device, first_launch=False, deep_link_url=url, ts=iso(T0)))
    assert body["type"] == "reengagement"
    assert body["attribution"]["match_type"] == "deep_link"
    assert body["attribution"]["link_id"] == link_id
    assert body["attribution"]["media_source"] == "Push"
    assert body["deep_link"]["deep_link_value"] == "shoes"
    assert body["deep_link"]["af_sub2"] == "y" and body["deep_link"]["af_sub5"] == "cu-9"
    assert sdk.stats("link")[link_id]["reengagements"] == 1


def test_deep_link_url_of_an_expired_link_is_only_an_open(sdk: Sdk) -> None:
    device = new_device()
    _install(sdk, device)
    insert_link(
        sdk.app,
        shortlink_id="Expired1",
        params={"is_retargeting": "true", "deep_link_value": "old"},
        expires_at=T0 - timedelta(days=1),
    )
    url = "https://go.example.com/AbCd/Expired1"
    body = ok(sdk.launch(device, first_launch=False, deep_link_url=url, ts=iso(T0)))
    assert body["type"] == "open"
    assert body["deep_link"]["deep_link_value"] == "old"
    assert sdk.totals()["reengagements"] == 0


def test_long_link_deep_link_url_of_a_new_user_gives_deep_link_keys_only(sdk: Sdk) -> None:
    url = "https://go.example.com/AbCd?pid=Email&deep_link_value=hats&af_sub1=z"
    body = ok(sdk.launch(deep_link_url=url, ts=iso(T0)))
    assert body["type"] == "install"
    assert body["deep_link"] == {"status": "FOUND", "deep_link_value": "hats"}


# ---- reinstalls ---------------------------------------------------------------------------


def test_reinstall_inside_the_window_keeps_the_original_source(sdk: Sdk) -> None:
    click = insert_click(sdk.app, ts=T0 - timedelta(days=30, hours=1), params={"gaid": "g-ri"})
    first = ok(sdk.launch(new_device(), gaid="g-ri", idfv=None, ts=iso(T0 - timedelta(days=30))))
    assert first["attribution"]["click_id"] == click
    body = ok(sdk.launch(new_device(), gaid="g-ri", ts=iso(T0)))
    assert body["type"] == "reinstall"
    assert body["attribution"]["click_id"] == click
    assert sdk.totals()["installs"] == 1


def test_reinstall_outside_the_window_is_a_new_install(sdk: Sdk) -> None:
    ok(sdk.launch(new_device(), gaid="g-ro", ts=iso(T0 - timedelta(days=90, seconds=1))))
    body = ok(sdk.launch(new_device(), gaid="g-ro", ts=iso(T0)))
    assert body["type"] == "install"
    assert sdk.totals()["installs"] == 2


def test_reinstall_matched_by_customer_user_id(sdk: Sdk) -> None:
    ok(sdk.launch(new_device(), customer_user_id="cu-ri", ts=iso(T0 - timedelta(days=5))))
    body = ok(sdk.launch(new_device(), customer_user_id="cu-ri", ts=iso(T0)))
    assert body["type"] == "reinstall" and body["attribution"]["is_organic"] is True


def test_reinstall_with_a_retargeting_click_is_a_reattribution(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    ok(
        sdk.launch(
            new_device(), idfv="V-1", customer_user_id="cu-ra", ts=iso(T0 - timedelta(days=20))
        )
    )
    click = insert_click(
        sdk.app,
        ts=T0 - timedelta(hours=1),
        params={"idfv": "v-1", "is_retargeting": "true", "pid": "SMS", "af_channel": "sms"},
        link_id="lk-ra",
    )
    device = new_device()
    body = ok(sdk.launch(device, idfv="V-1", ts=iso(T0)))
    assert body["type"] == "reattribution"
    assert body["attribution"]["click_id"] == click
    totals = sdk.totals()
    assert totals["installs"] == 1 and totals["reengagements"] == 1
    kinds = [(p.kind, p.status) for p in postbacks(sdk.app)]
    assert kinds == [("install", "queued"), ("reengagement", "queued")]
    record = postbacks(sdk.app)[-1].record
    assert record is not None and record["evtData"]["Install"] == "N"
    assert record["evtData"]["utm_source"] == "SMS"
    with sdk.app.extensions["linkgen"].db.session() as session:
        row = session.query(Install).filter_by(device_id=device).one()
        assert row.type == "reattribution" and row.is_organic is True
        assert row.re_link_id == "lk-ra"


def test_reinstall_ignores_a_retargeting_click_before_the_first_install(sdk: Sdk) -> None:
    click = insert_click(
        sdk.app,
        ts=T0 - timedelta(days=3),
        params={"idfv": "v-2", "is_retargeting": "true", "pid": "Push"},
    )
    ok(sdk.launch(new_device(), idfv="v-2", ts=iso(T0 - timedelta(days=1))))
    # The first install took the click (new installs accept retargeting clicks too).
    assert click_consumed(sdk.app, click)
    body = ok(sdk.launch(new_device(), idfv="v-2", ts=iso(T0)))
    assert body["type"] == "reinstall"
    assert body["attribution"]["click_id"] == click


# ---- postbacks ----------------------------------------------------------------------------


def test_install_postback_is_queued_with_the_record(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    click = insert_click(
        sdk.app,
        ts=T0 - timedelta(hours=1),
        params={"gaid": "g-pb", "af_adset": "a1"},
        link_id="lk-pb",
    )
    ok(sdk.launch(gaid="g-pb", customer_user_id="__ctid", ts=iso(T0)))
    (row,) = postbacks(sdk.app)
    assert row.kind == "install" and row.status == "queued" and row.reason is None
    assert row.region == "EU1" and row.account_id == "W6K-556-4K6Z"
    assert row.endpoint == "https://eu1.api.clevertap.com/1/upload"
    assert row.next_attempt_at is not None and len(row.linkgen_id) <= 64
    assert row.record is not None
    assert row.record["objectId"] == "__ctid"
    assert row.record["evtName"] == "App Install Attributed"
    data = row.record["evtData"]
    assert data["utm_source"] == "Email" and data["utm_campaign"] == "spring_sale"
    assert data["Install"] == "Y" and data["linkgen_id"] == row.linkgen_id
    assert data["af_adset"] == "a1" and data["link_id"] == "lk-pb"
    assert click_consumed(sdk.app, click)


@pytest.mark.parametrize(
    ("changes", "launch_body", "click_params", "reason"),
    [
        ({}, {}, {}, "no_customer_user_id"),
        ({"active": False}, {"customer_user_id": "c"}, {}, "partner_inactive"),
        ({"default_postbacks": "off"}, {"customer_user_id": "c"}, {}, "default_postbacks_off"),
        (
            {"account_id": None, "account_passcode": None},
            {"customer_user_id": "c"},
            {},
            "no_credentials",
        ),
        (
            {},
            {"customer_user_id": "c"},
            {"af_installpostback": "false"},
            "install_postback_disabled_on_link",
        ),
        (
            {},
            {"customer_user_id": "c"},
            {"pid": "snapchat_int"},
            "restricted_media_source",
        ),
    ],
)
def test_install_postback_skips_name_the_reason(
    sdk: Sdk,
    changes: dict[str, Any],
    launch_body: dict[str, Any],
    click_params: dict[str, str],
    reason: str,
) -> None:
    configure_clevertap(sdk.app, **changes)
    insert_click(
        sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-skip", **click_params}, link_id="lk"
    )
    ok(sdk.launch(gaid="g-skip", ts=iso(T0), **launch_body))
    (row,) = postbacks(sdk.app)
    assert (row.status, row.reason, row.record) == ("skipped", reason, None)


def test_without_integration_the_postback_is_skipped_as_inactive(sdk: Sdk) -> None:
    ok(sdk.launch(customer_user_id="c", ts=iso(T0)))
    (row,) = postbacks(sdk.app)
    assert (row.kind, row.status, row.reason) == ("install", "skipped", "partner_inactive")


def test_this_partner_only_skips_organic_and_sends_linkgen_links(sdk: Sdk) -> None:
    configure_clevertap(sdk.app, default_postbacks="this_partner")
    ok(sdk.launch(customer_user_id="c1", ts=iso(T0)))
    insert_click(sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-tp"}, link_id="lk-tp")
    ok(sdk.launch(customer_user_id="c2", gaid="g-tp", ts=iso(T0)))
    insert_click(sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-tp2"})  # not a link
    ok(sdk.launch(customer_user_id="c3", gaid="g-tp2", ts=iso(T0)))
    got = [(p.status, p.reason) for p in postbacks(sdk.app)]
    assert got == [
        ("skipped", "not_this_partner"),
        ("queued", None),
        ("skipped", "not_this_partner"),
    ]


def test_open_and_reinstall_send_no_postback(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    device = new_device()
    ok(sdk.launch(device, gaid="g-np", customer_user_id="c", ts=iso(T0 - timedelta(days=2))))
    ok(sdk.launch(device, first_launch=False, ts=iso(T0)))
    ok(sdk.launch(new_device(), gaid="g-np", ts=iso(T0)))
    assert [p.kind for p in postbacks(sdk.app)] == ["install"]


def test_reengagement_postback_uses_the_installs_customer_user_id(sdk: Sdk) -> None:
    configure_clevertap(sdk.app)
    device = new_device()
    ok(sdk.launch(device, gaid="g-rp", customer_user_id="cu-rp", ts=iso(T0 - timedelta(days=2))))
    insert_click(
        sdk.app,
        ts=T0 - timedelta(hours=1),
        params={"gaid": "g-rp", "is_retargeting": "true", "pid": "Push", "af_channel": "push"},
        link_id="lk-rp",
    )
    ok(sdk.launch(device, first_launch=False, gaid="g-rp", ts=iso(T0)))
    row = postbacks(sdk.app)[-1]
    assert row.kind == "reengagement" and row.status == "queued"
    assert row.record is not None and row.record["objectId"] == "cu-rp"
    assert row.record["evtName"] == "App Re-engagement Attributed"
    assert row.record["evtData"]["utm_medium"] == "push"


# ---- stored launch ----------------------------------------------------------------------------


# ---- cached apps and settings (AppCache, checked against the apps epoch) ---------------------


def test_a_rotated_sdk_key_is_refused_at_the_next_launch(sdk: Sdk) -> None:
    old = sdk.keys[ANDROID_APP]
    ok(sdk.launch(ts=iso(T0)))  # the key is cached now
    resp = sdk.api.patch(f"/api/v1/apps/{ANDROID_APP}", {"rotate_sdk_key": True})
    assert resp.status_code == 200, resp.get_json()
    new = resp.get_json()["sdk_key"]
    assert sdk.launch(key=old, ts=iso(T0)).status_code == 401
    assert sdk.event(key=old, event_name="af_level", device_id=new_device()).status_code == 401
    ok(sdk.launch(key=new, ts=iso(T0)))


def test_app_setting_changes_apply_at_the_next_launch(sdk: Sdk) -> None:
    ok(sdk.launch(ts=iso(T0)))  # the app and its rules are cached now
    resp = sdk.api.patch(f"/api/v1/apps/{ANDROID_APP}", {"probabilistic_matching": False})
    assert resp.status_code == 200, resp.get_json()
    click = insert_click(sdk.app, ts=T0 - timedelta(hours=1), ip=CLIENT_IP)
    assert attribution(sdk.launch(ts=iso(T0)))["is_organic"] is True
    assert not click_consumed(sdk.app, click)


def test_integration_settings_apply_at_the_next_launch(sdk: Sdk) -> None:
    ok(sdk.launch(customer_user_id="c0", ts=iso(T0)))  # "no integration" is cached now
    # Stored by another session with the epoch bump, as the integration API does: the way an
    # edit made in another process arrives.
    configure_clevertap(sdk.app)
    ok(sdk.launch(customer_user_id="c1", ts=iso(T0)))
    first, second = postbacks(sdk.app)
    assert (first.status, first.reason) == ("skipped", "partner_inactive")
    assert (second.status, second.reason) == ("queued", None)


def test_integration_put_applies_to_the_next_launch(sdk: Sdk) -> None:
    ok(sdk.launch(customer_user_id="c0", ts=iso(T0)))
    resp = sdk.api.put(
        f"/api/v1/apps/{ANDROID_APP}/integrations/clevertap",
        {
            "active": True,
            "account_id": "W6K-556-4K6Z",
            "account_passcode": "pass-SECRET",
            "default_postbacks": "all_sources",
        },
    )
    assert resp.status_code == 200, resp.get_json()
    ok(sdk.launch(customer_user_id="c1", ts=iso(T0)))
    assert [(p.status, p.reason) for p in postbacks(sdk.app)] == [
        ("skipped", "partner_inactive"),
        ("queued", None),
    ]


def test_launch_row_keeps_request_response_and_explain(sdk: Sdk) -> None:
    loser = insert_click(sdk.app, ts=T0 - timedelta(days=2), params={"gaid": "g-row"})
    body = ok(sdk.launch(gaid="g-row", ts=iso(T0), install_referrer="utm_source=google-play"))
    row = launches(sdk.app)[-1]
    assert row.launch_id == body["launch_id"] and row.response == body
    assert row.request["gaid"] == "g-row" and row.request["ip"] == CLIENT_IP
    assert row.explain["platform"] == "android" and row.explain["os_version"] == "14"
    assert row.click_id == loser and row.type == "install"


def test_unknown_fields_are_ignored_and_ids_may_be_null(sdk: Sdk) -> None:
    body = ok(
        sdk.launch(
            ts=iso(T0),
            idfa=None,
            idfv=None,
            gaid=None,
            ip=None,
            user_agent=None,
            deep_link_url=None,
            sdk_version="6.12.0",
            extra={"a": 1},
        )
    )
    assert body["type"] == "install"


def test_contract_example_body_is_accepted(sdk: Sdk) -> None:
    body = {
        "device_id": "1712345678901-1234567",
        "customer_user_id": "__h1a2b3c",
        "first_launch": True,
        "install_referrer": "af_tranid=unknown&pid=Email",
        "deep_link_url": None,
        "idfa": None,
        "idfv": None,
        "gaid": None,
        "ip": None,
        "user_agent": None,
        "ts": iso(T0),
    }
    assert ok(sdk.launch(raw=body))["type"] == "install"


# ---- bad requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"first_launch": True}, "device_id"),
        ({"device_id": ""}, "device_id"),
        ({"device_id": 123}, "device_id"),
        ({"device_id": "x" * 101}, "device_id"),
        ({"device_id": "d", "first_launch": "yes"}, "first_launch"),
        ({"device_id": "d", "ts": "yesterday"}, "ts"),
        ({"device_id": "d", "ts": "2026-11-29T10:00:00"}, "ts"),
        ({"device_id": "d", "ts": 1764410400}, "ts"),
        ({"device_id": "d", "ts": "2019-01-01T00:00:00Z"}, "ts"),
        ({"device_id": "d", "ip": "999.1.1.1"}, "ip"),
        ({"device_id": "d", "ip": 5}, "ip"),
        ({"device_id": "d", "idfa": 5}, "idfa"),
        ({"device_id": "d", "idfv": ["x"]}, "idfv"),
        ({"device_id": "d", "gaid": "g" * 65}, "gaid"),
        ({"device_id": "d", "customer_user_id": "c" * 201}, "customer_user_id"),
        ({"device_id": "d", "customer_user_id": 42}, "customer_user_id"),
        ({"device_id": "d", "install_referrer": 5}, "install_referrer"),
        ({"device_id": "d", "deep_link_url": {"u": 1}}, "deep_link_url"),
        ({"device_id": "d", "user_agent": ["ua"]}, "user_agent"),
        ([{"device_id": "d"}], "body"),
        ("{not json", "body"),
        ("", "body"),
    ],
)
def test_malformed_launch_is_400_naming_the_field(sdk: Sdk, body: Any, field: str) -> None:
    resp = sdk.launch(raw=body)
    assert resp.status_code == 400, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_parameter" and err["field"] == field
    assert launches(sdk.app) == []


def test_ts_far_in_the_future_is_refused(sdk: Sdk) -> None:
    resp = sdk.launch(ts=iso(utc_now() + timedelta(minutes=10)))
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "ts"


# ---- authentication -----------------------------------------------------------------------


def test_missing_sdk_key_is_401(sdk: Sdk) -> None:
    resp = sdk.launch(key="")
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


def test_wrong_sdk_key_is_401(sdk: Sdk) -> None:
    assert sdk.launch(key="sdk_wrong").status_code == 401
    # Another app's key does not open this app.
    assert sdk.launch(key=sdk.keys[IOS_APP]).status_code == 401
    assert launches(sdk.app) == []


def test_unknown_app_is_404_with_a_valid_key(sdk: Sdk) -> None:
    resp = sdk.launch(app_id="com.nope.app", key=sdk.keys[ANDROID_APP])
    assert resp.status_code == 404
    assert resp.get_json()["error"] == {
        "code": "not_found",
        "message": "no app 'com.nope.app'",
        "field": "app_id",
    }


def test_unknown_app_without_a_valid_key_is_401(sdk: Sdk) -> None:
    assert sdk.launch(app_id="com.nope.app", key="sdk_guess").status_code == 401


def test_bearer_api_key_is_not_an_sdk_key(sdk: Sdk) -> None:
    resp = sdk.client.post(
        f"/api/v1/sdk/{ANDROID_APP}/launches",
        json={"device_id": "d", "first_launch": True},
        headers=sdk.api.headers,
    )
    assert resp.status_code == 401


def test_get_is_not_allowed(sdk: Sdk) -> None:
    resp = sdk.client.get(f"/api/v1/sdk/{ANDROID_APP}/launches")
    assert resp.status_code == 405


# ---- stats --------------------------------------------------------------------------------


def test_stats_group_by_and_day_range(sdk: Sdk) -> None:
    insert_click(sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-s1"}, link_id="lk-s")
    ok(sdk.launch(gaid="g-s1", ts=iso(T0)))
    ok(sdk.launch(ts=iso(T0 - timedelta(days=3))))
    day = T0.date().isoformat()
    old_day = (T0 - timedelta(days=3)).date().isoformat()
    assert sdk.stats("campaign")["spring_sale"]["installs"] == 1
    assert sdk.stats("media_source")["organic"]["installs"] == 1
    assert "organic" not in sdk.stats("media_source", **{"from": day, "to": day})
    only_old = sdk.stats("media_source", **{"from": old_day, "to": old_day})
    assert only_old["organic"]["installs"] == 1 and "Email" not in only_old
    item = sdk.stats("link")["lk-s"]
    assert set(item) == {
        "link_id",
        "clicks",
        "human_clicks",
        "bot_clicks",
        "installs",
        "reengagements",
        "events",
        "revenue",
    }
    assert sdk.stats("link")[None]["installs"] == 1  # organic: no link


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group_by=template", "group_by"),
        ("group_by=link&from=2026-13-01", "from"),
        ("group_by=link&to=yesterday", "to"),
        ("group_by=link&from=2026-02-02&to=2026-02-01", "from"),
    ],
)
def test_stats_bad_query_is_400(sdk: Sdk, query: str, field: str) -> None:
    resp = sdk.api.get(f"/api/v1/stats?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == field


def test_stats_needs_an_api_key(sdk: Sdk) -> None:
    assert sdk.client.get("/api/v1/stats").status_code == 401


def test_concurrent_duplicate_first_launches_store_one_install(sdk: Sdk) -> None:
    from concurrent.futures import ThreadPoolExecutor

    configure_clevertap(sdk.app)
    click = insert_click(sdk.app, ts=T0 - timedelta(hours=1), params={"gaid": "g-race"})
    device = new_device()
    body = {"gaid": "g-race", "customer_user_id": "cu-race", "ts": iso(T0)}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: sdk.launch(device, **body), range(6)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.get_data() for a in answers}) == 1
    assert answers[0].get_json()["attribution"]["click_id"] == click
    assert len(launches(sdk.app)) == 1 and len(postbacks(sdk.app)) == 1
    assert sdk.totals()["installs"] == 1


def test_concurrent_launches_never_share_a_click(sdk: Sdk) -> None:
    from concurrent.futures import ThreadPoolExecutor

    click = insert_click(sdk.app, ts=T0 - timedelta(hours=1), ip=CLIENT_IP)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: sdk.launch(ts=iso(T0)), range(6)))
    winners = [a.get_json()["attribution"]["click_id"] for a in answers]
    assert winners.count(click) == 1 and winners.count(None) == 5
