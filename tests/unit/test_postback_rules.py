"""Postback eligibility (every skip reason) and the shape of the records sent to CleverTap."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from linkgen.domain.clevertap import EventMapping, IntegrationSettings, RestrictedSource
from linkgen.domain.postbacks import (
    MAX_PROPERTIES,
    SKIP_REASONS,
    EventOutcome,
    InstallOutcome,
    Outcome,
    Send,
    Skip,
    decide_postback,
    to_number,
    truncate_utf8,
)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
CLICK = T0 - timedelta(hours=1)

SETTINGS = IntegrationSettings(
    active=True,
    account_id="W6K-556-4K6Z",
    account_passcode="WVE-SMB-CXUL",
    region="IN1",
    default_postbacks="this_partner",
    in_app_enabled=True,
    postback_window_days=180,
    mappings=(
        EventMapping("af_purchase", "Charged", "all_sources", "values_and_revenue"),
        EventMapping("af_purchase_values", "Charged", "all_sources", "values"),
        EventMapping("af_purchase_none", "Charged", "all_sources", "none"),
        EventMapping("af_level", "Level Achieved", "this_partner", "values_and_revenue"),
    ),
    restricted_media_sources=(
        RestrictedSource("snapchat_int", "drop"),
        RestrictedSource("pinterest_int", "send_as_organic"),
    ),
)

INSTALL = InstallOutcome(
    kind="install",
    linkgen_id="lg-install-1",
    customer_user_id="__h1a2b3c",
    ts=T0,
    is_organic=False,
    media_source="Email",
    campaign="spring_sale",
    channel="email",
    link_id="lnk1",
    click_id="clk1",
    click_time=CLICK,
    match_type="referrer",
    link_params={
        "pid": "Email",
        "c": "spring_sale",
        "af_sub1": "s1",
        "af_adset": "set",
        "af_ad": "ad",
        "deep_link_value": "shoes",
        "af_r": "https://example.com/not-sent",
    },
    made_for_clevertap=True,
)

EVENT = EventOutcome(
    linkgen_id="lg-event-1",
    customer_user_id="__h1a2b3c",
    ts=T0 + timedelta(days=1),
    event_name="af_purchase",
    event_values={"af_revenue": "9.99", "af_currency": "USD", "sku": "A-1"},
    install_time=T0,
    is_organic=False,
    media_source="Email",
    made_for_clevertap=True,
)


@pytest.mark.parametrize(
    ("settings", "outcome", "reason"),
    [
        (replace(SETTINGS, active=False), INSTALL, "partner_inactive"),
        (replace(SETTINGS, active=False), EVENT, "partner_inactive"),
        (replace(SETTINGS, account_id=None, account_passcode=None), INSTALL, "no_credentials"),
        (SETTINGS, replace(INSTALL, customer_user_id=None), "no_customer_user_id"),
        (SETTINGS, replace(INSTALL, customer_user_id="  "), "no_customer_user_id"),
        (SETTINGS, replace(EVENT, customer_user_id=""), "no_customer_user_id"),
        (SETTINGS, replace(INSTALL, media_source="snapchat_int"), "restricted_media_source"),
        (SETTINGS, replace(EVENT, media_source="snapchat_int"), "restricted_media_source"),
        (replace(SETTINGS, default_postbacks="off"), INSTALL, "default_postbacks_off"),
        (
            replace(SETTINGS, default_postbacks="off"),
            replace(INSTALL, kind="reengagement"),
            "default_postbacks_off",
        ),
        (SETTINGS, replace(INSTALL, made_for_clevertap=False), "not_this_partner"),
        (SETTINGS, replace(INSTALL, is_organic=True, media_source=None), "not_this_partner"),
        # send_as_organic makes the install organic, so "this partner only" no longer applies.
        (SETTINGS, replace(INSTALL, media_source="pinterest_int"), "not_this_partner"),
        (
            SETTINGS,
            replace(EVENT, event_name="af_level", made_for_clevertap=False),
            "not_this_partner",
        ),
        (replace(SETTINGS, in_app_enabled=False), EVENT, "in_app_postbacks_disabled"),
        (SETTINGS, replace(EVENT, event_name="af_login"), "event_not_mapped"),
        (
            SETTINGS,
            replace(EVENT, ts=T0 + timedelta(days=180, seconds=1)),
            "outside_postback_window",
        ),
        (
            replace(SETTINGS, postback_window_days=1),
            replace(EVENT, ts=T0 + timedelta(days=2)),
            "outside_postback_window",
        ),
        (
            SETTINGS,
            replace(INSTALL, link_params={"af_installpostback": "false"}),
            "install_postback_disabled_on_link",
        ),
        (
            SETTINGS,
            replace(INSTALL, link_params={"af_installpostback": "FALSE"}),
            "install_postback_disabled_on_link",
        ),
    ],
)
def test_skip_reasons(settings: IntegrationSettings, outcome: Outcome, reason: str) -> None:
    assert decide_postback(settings, outcome) == Skip(reason)  # type: ignore[arg-type]


def test_every_skip_reason_is_covered_and_named_as_in_the_contract() -> None:
    assert set(SKIP_REASONS) == {
        "partner_inactive",
        "no_credentials",
        "no_customer_user_id",
        "restricted_media_source",
        "default_postbacks_off",
        "not_this_partner",
        "in_app_postbacks_disabled",
        "event_not_mapped",
        "outside_postback_window",
        "install_postback_disabled_on_link",
    }


@pytest.mark.parametrize(
    ("settings", "outcome"),
    [
        (SETTINGS, INSTALL),
        (replace(SETTINGS, account_id=None, account_passcode=None, account_token="t"), INSTALL),
        (replace(SETTINGS, default_postbacks="all_sources"), replace(INSTALL, is_organic=True)),
        (
            replace(SETTINGS, default_postbacks="all_sources"),
            replace(INSTALL, made_for_clevertap=False),
        ),
        # af_installpostback only stops install postbacks.
        (
            SETTINGS,
            replace(INSTALL, kind="reengagement", link_params={"af_installpostback": "false"}),
        ),
        (SETTINGS, replace(INSTALL, link_params={"af_installpostback": "true"})),
        (SETTINGS, replace(EVENT, ts=T0 + timedelta(days=180))),
        (SETTINGS, replace(EVENT, install_time=None, ts=T0 + timedelta(days=900))),
        (SETTINGS, replace(EVENT, is_organic=True, made_for_clevertap=False, media_source=None)),
        (SETTINGS, replace(EVENT, event_name="af_level")),
        # An organic outcome is not "from" a restricted source, whatever media_source says.
        (
            replace(SETTINGS, default_postbacks="all_sources"),
            replace(INSTALL, is_organic=True, media_source="snapchat_int"),
        ),
    ],
)
def test_sent(settings: IntegrationSettings, outcome: Outcome) -> None:
    assert isinstance(decide_postback(settings, outcome), Send)


def _record(settings: IntegrationSettings, outcome: Outcome) -> dict[str, Any]:
    decision = decide_postback(settings, outcome)
    assert isinstance(decision, Send), decision
    json.dumps(decision.record)  # every record must be JSON as it is
    return decision.record


def test_install_record_shape() -> None:
    record = _record(SETTINGS, INSTALL)
    assert record == {
        "type": "event",
        "objectId": "__h1a2b3c",
        "ts": int(T0.timestamp()),
        "evtName": "App Install Attributed",
        "evtData": {
            "utm_source": "Email",
            "utm_medium": "email",
            "utm_campaign": "spring_sale",
            "Install": "Y",
            "linkgen_id": "lg-install-1",
            "match_type": "referrer",
            "click_time": CLICK.isoformat(),
            "link_id": "lnk1",
            "af_adset": "set",
            "af_ad": "ad",
            "af_sub1": "s1",
            "deep_link_value": "shoes",
        },
    }


def test_reengagement_record_carries_the_same_utm_properties() -> None:
    record = _record(SETTINGS, replace(INSTALL, kind="reengagement"))
    assert record["evtName"] == "App Re-engagement Attributed"
    assert record["evtData"]["Install"] == "N"
    assert record["evtData"]["utm_source"] == "Email"
    assert record["evtData"]["utm_campaign"] == "spring_sale"


def test_identity_field_names_the_key() -> None:
    record = _record(replace(SETTINGS, identity_field="identity"), INSTALL)
    assert record["identity"] == "__h1a2b3c"
    assert "objectId" not in record


def test_organic_install_with_all_sources() -> None:
    settings = replace(SETTINGS, default_postbacks="all_sources")
    organic = replace(
        INSTALL, is_organic=True, media_source=None, campaign=None, channel=None,
        made_for_clevertap=False, click_time=None, match_type=None, link_id=None, link_params={},
    )  # fmt: skip
    data = _record(settings, organic)["evtData"]
    assert data == {"utm_source": "organic", "Install": "Y", "linkgen_id": "lg-install-1"}


def test_send_as_organic_redacts_the_source() -> None:
    settings = replace(SETTINGS, default_postbacks="all_sources")
    data = _record(settings, replace(INSTALL, media_source="pinterest_int"))["evtData"]
    assert data["utm_source"] == "organic"
    for redacted in ("utm_campaign", "utm_medium", "af_sub1", "link_id", "click_time"):
        assert redacted not in data


def test_charged_with_values_and_revenue_has_numeric_amount() -> None:
    record = _record(SETTINGS, EVENT)
    assert record["evtName"] == "Charged"
    assert record["ts"] == int((T0 + timedelta(days=1)).timestamp())
    assert record["evtData"] == {
        "linkgen_id": "lg-event-1",
        "Amount": 9.99,
        "Currency": "USD",
        "af_revenue": 9.99,
        "af_currency": "USD",
        "sku": "A-1",
    }
    assert '"Amount": 9.99' in json.dumps(record)


@pytest.mark.parametrize(
    ("event_name", "expected"),
    [
        ("af_purchase_values", {"linkgen_id": "lg-event-1", "af_currency": "USD", "sku": "A-1"}),
        ("af_purchase_none", {"linkgen_id": "lg-event-1"}),
    ],
)
def test_send_revenue_options(event_name: str, expected: dict[str, Any]) -> None:
    assert _record(SETTINGS, replace(EVENT, event_name=event_name))["evtData"] == expected


@pytest.mark.parametrize(
    ("revenue", "values", "amount"),
    [
        (None, {"af_revenue": 12}, 12),
        (None, {"af_revenue": "10"}, 10),
        (None, {"af_revenue": 3.5}, 3.5),
        (Decimal("4.20"), {}, 4.2),
        ("7.25", {"af_revenue": "1"}, 7.25),  # the outcome's own revenue wins
    ],
)
def test_amount_is_a_json_number(revenue: Any, values: dict[str, Any], amount: float) -> None:
    data = _record(SETTINGS, replace(EVENT, revenue=revenue, event_values=values))["evtData"]
    assert data["Amount"] == amount
    assert isinstance(data["Amount"], int | float)


def test_charged_without_revenue_has_no_amount() -> None:
    data = _record(SETTINGS, replace(EVENT, event_values={"sku": "A-1"}))["evtData"]
    assert "Amount" not in data


def test_non_charged_event_keeps_revenue_without_amount() -> None:
    data = _record(SETTINGS, replace(EVENT, event_name="af_level"))["evtData"]
    assert "Amount" not in data
    assert data["af_revenue"] == 9.99
    assert _record(SETTINGS, replace(EVENT, event_name="af_level"))["evtName"] == "Level Achieved"


def test_nested_values_become_json_strings() -> None:
    values = {"items": [{"sku": "A", "qty": 2}], "meta": {"a": 1}, "flag": True, "none": None}
    data = _record(SETTINGS, replace(EVENT, event_values=values))["evtData"]
    assert data["items"] == '[{"sku":"A","qty":2}]'
    assert data["meta"] == '{"a":1}'
    assert data["flag"] is True
    assert "none" not in data


def test_property_limits() -> None:
    long_key = "k" * 130
    values: dict[str, Any] = {long_key: "v", "big": "é" * 400}
    values.update({f"p{i}": i for i in range(150)})
    data = _record(SETTINGS, replace(EVENT, event_name="af_purchase_values", event_values=values))[
        "evtData"
    ]
    assert len(data) == MAX_PROPERTIES
    assert data["linkgen_id"] == "lg-event-1"  # our own properties come first
    assert all(len(key) <= 120 for key in data)
    assert data["k" * 120] == "v"
    assert len(data["big"].encode("utf-8")) <= 512
    assert data["big"] == "é" * 256


def test_truncated_key_colliding_with_an_earlier_key_is_dropped() -> None:
    values = {"k" * 120: "first", "k" * 125: "second"}
    data = _record(SETTINGS, replace(EVENT, event_name="af_purchase_values", event_values=values))[
        "evtData"
    ]
    assert data["k" * 120] == "first"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("abc", 512, "abc"), ("aé", 2, "a"), ("€€", 5, "€"), ("x" * 600, 512, "x" * 512)],
)
def test_truncate_utf8_keeps_characters_whole(text: str, limit: int, expected: str) -> None:
    assert truncate_utf8(text, limit) == expected


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("9.99", 9.99),
        (" 10 ", 10),
        ("10.0", 10.0),
        (5, 5),
        (Decimal("1.5"), 1.5),
        ("abc", None),
        ("NaN", None),
        (float("inf"), None),
        (True, None),
        (None, None),
    ],
)
def test_to_number(value: Any, number: float | None) -> None:
    assert to_number(value) == number


def test_naive_timestamps_are_taken_as_utc() -> None:
    naive = T0.replace(tzinfo=None)
    assert _record(SETTINGS, replace(INSTALL, ts=naive))["ts"] == int(T0.timestamp())
