"""CleverTap integration settings: regions, endpoints, PUT validation, secrets, warnings, audit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from linkgen.domain.clevertap import (
    DEFAULT_RESTRICTED,
    EventMapping,
    IntegrationSettings,
    RestrictedSource,
    apply_integration_put,
    audit_diff,
    connect_endpoint,
    mask_secret,
    resolve_region,
    settings_from_json,
    settings_to_json,
    settings_to_public_dict,
    upload_endpoint,
    warnings_for,
)
from linkgen.domain.errors import InvalidParameter

PASSCODE = "WVE-SMB-CXUL"
TOKEN = "a4b-23c-tok"

FULL_BODY: dict[str, Any] = {
    "active": True,
    "account_id": "W6K-556-4K6Z",
    "account_passcode": PASSCODE,
    "account_token": TOKEN,
    "region": "IN1",
    "default_postbacks": "all_sources",
    "install_event_name": "Install Attributed",
    "reengagement_event_name": "Re-engaged",
    "identity_field": "identity",
    "in_app_events": {
        "enabled": True,
        "postback_window_days": 30,
        "mappings": [
            {
                "sdk_event": "af_purchase",
                "partner_event": "Charged",
                "sending_option": "all_sources",
                "send_revenue": "values_and_revenue",
            }
        ],
    },
    "restricted_media_sources": [{"media_source": "snapchat_int", "policy": "send_as_organic"}],
}


@pytest.mark.parametrize(
    ("region", "resolved", "endpoint"),
    [
        ("EU1", "EU1", "https://eu1.api.clevertap.com/1/upload"),
        ("IN1", "IN1", "https://in1.api.clevertap.com/1/upload"),
        ("US1", "US1", "https://us1.api.clevertap.com/1/upload"),
        ("SG1", "SG1", "https://sg1.api.clevertap.com/1/upload"),
        ("ID", "ID", "https://aps3.api.clevertap.com/1/upload"),
        ("MEC1", "MEC1", "https://mec1.api.clevertap.com/1/upload"),
        ("in1", "EU1", "https://eu1.api.clevertap.com/1/upload"),
        ("In1", "EU1", "https://eu1.api.clevertap.com/1/upload"),
        ("id", "EU1", "https://eu1.api.clevertap.com/1/upload"),
        ("XX9", "EU1", "https://eu1.api.clevertap.com/1/upload"),
        (None, "EU1", "https://eu1.api.clevertap.com/1/upload"),
    ],
)
def test_region_resolves_case_sensitively(region: str | None, resolved: str, endpoint: str) -> None:
    assert resolve_region(region) == resolved
    assert upload_endpoint(region) == endpoint


@pytest.mark.parametrize(
    ("region", "api_base", "expected"),
    [
        ("EU1", "http://127.0.0.1:9000/{region}", "http://127.0.0.1:9000/eu1/1/upload"),
        ("ID", "http://127.0.0.1:9000/{region}", "http://127.0.0.1:9000/id/1/upload"),
        ("in1", "http://127.0.0.1:9000/{region}", "http://127.0.0.1:9000/eu1/1/upload"),
        ("IN1", "http://proxy.local/ct/", "http://proxy.local/ct/1/upload"),
        ("IN1", "http://{region}.proxy.local", "http://in1.proxy.local/1/upload"),
    ],
)
def test_api_base_replaces_the_host(region: str, api_base: str, expected: str) -> None:
    assert upload_endpoint(region, api_base) == expected


def test_connect_endpoint_names_the_partner() -> None:
    assert (
        connect_endpoint("IN1", None) == "https://in1.api.clevertap.com/v1/connect?partner=linkgen"
    )
    assert (
        connect_endpoint("US1", "http://127.0.0.1:9000/{region}")
        == "http://127.0.0.1:9000/us1/v1/connect?partner=linkgen"
    )


def test_full_put_is_parsed() -> None:
    settings = apply_integration_put(None, FULL_BODY)
    assert settings == IntegrationSettings(
        active=True,
        account_id="W6K-556-4K6Z",
        account_passcode=PASSCODE,
        account_token=TOKEN,
        region="IN1",
        default_postbacks="all_sources",
        install_event_name="Install Attributed",
        reengagement_event_name="Re-engaged",
        identity_field="identity",
        in_app_enabled=True,
        postback_window_days=30,
        mappings=(EventMapping("af_purchase", "Charged", "all_sources", "values_and_revenue"),),
        restricted_media_sources=(RestrictedSource("snapchat_int", "send_as_organic"),),
    )


def test_lowercase_region_is_stored_as_given_with_a_warning() -> None:
    settings = apply_integration_put(None, {"region": "in1"})
    assert settings.region == "in1"
    public = settings_to_public_dict(settings)
    assert public["region"] == "in1"
    assert public["resolved_region"] == "EU1"
    assert public["endpoint"] == "https://eu1.api.clevertap.com/1/upload"
    [region_warning] = [w for w in public["warnings"] if w.startswith("Region")]
    assert region_warning.startswith(
        'Region "in1" is not one of EU1, IN1, US1, SG1, ID, MEC1 (the setting is case-sensitive: '
        "use capitals); postbacks will go to EU1 (https://eu1.api.clevertap.com/1/upload)."
    )
    assert '"IN1"' in region_warning


def test_unknown_region_warns_without_suggesting_a_case_fix() -> None:
    [warning] = [w for w in warnings_for(IntegrationSettings(region="XX9")) if "Region" in w]
    assert "postbacks will go to EU1" in warning
    assert "Did you mean" not in warning


def test_warning_endpoint_follows_api_base() -> None:
    warnings = warnings_for(IntegrationSettings(region="eu1"), api_base="http://h:1/{region}")
    assert any("(http://h:1/eu1/1/upload)" in w for w in warnings)


def test_known_region_has_no_region_warning() -> None:
    settings = apply_integration_put(None, FULL_BODY)
    assert warnings_for(settings) == []


@pytest.mark.parametrize(
    ("changes", "expected_fragment"),
    [
        ({"account_id": None, "account_passcode": None, "account_token": None}, "no postback"),
        ({"account_passcode": None}, "No passcode is set"),
        ({"account_id": None}, "No account ID is set"),
        ({"account_id": None, "account_passcode": None}, "No account ID or passcode is set"),
        ({"default_postbacks": "off"}, "default postbacks are off"),
        ({"active": False}, "not active"),
        ({"in_app_events": {"mappings": []}}, "no event is mapped"),
        ({"in_app_events": {"enabled": False}}, "in-app event postbacks are off"),
    ],
)
def test_warnings(changes: dict[str, Any], expected_fragment: str) -> None:
    settings = apply_integration_put(apply_integration_put(None, FULL_BODY), changes)
    warnings = warnings_for(settings)
    assert any(expected_fragment in w for w in warnings), warnings


def test_upload_refusal_warning_mentions_both_credentials() -> None:
    settings = IntegrationSettings(account_token=TOKEN)
    [warning] = [w for w in warnings_for(settings) if "upload API" in w]
    assert "needs both the account ID and the passcode" in warning


def test_omitted_secrets_are_kept_and_empty_or_null_clears() -> None:
    stored = apply_integration_put(None, FULL_BODY)
    kept = apply_integration_put(stored, {"active": False})
    assert kept.account_passcode == PASSCODE
    assert kept.account_token == TOKEN
    cleared = apply_integration_put(stored, {"account_passcode": "", "account_token": None})
    assert cleared.account_passcode is None
    assert cleared.account_token is None
    assert apply_integration_put(stored, {"account_id": ""}).account_id is None


def test_other_omitted_fields_are_kept() -> None:
    stored = apply_integration_put(None, FULL_BODY)
    assert apply_integration_put(stored, {}) == stored
    window_only = apply_integration_put(stored, {"in_app_events": {"postback_window_days": 7}})
    assert window_only.mappings == stored.mappings
    assert window_only.postback_window_days == 7


def test_restricted_list_defaults_to_appsflyers_and_null_restores_it() -> None:
    assert apply_integration_put(None, {}).restricted_media_sources == DEFAULT_RESTRICTED
    stored = apply_integration_put(None, FULL_BODY)
    assert apply_integration_put(stored, {}).restricted_media_sources != DEFAULT_RESTRICTED
    restored = apply_integration_put(stored, {"restricted_media_sources": None})
    assert restored.restricted_media_sources == DEFAULT_RESTRICTED
    assert (
        apply_integration_put(stored, {"restricted_media_sources": []}).restricted_media_sources
        == ()
    )


def test_default_restricted_list_covers_appsflyers_sources() -> None:
    ids = {s.media_source for s in DEFAULT_RESTRICTED}
    assert {"Facebook Ads", "snapchat_int", "Twitter", "tiktokglobal_int"} <= ids
    assert all(s.policy in ("drop", "send_as_organic") for s in DEFAULT_RESTRICTED)


def test_credentials_are_stripped_of_copy_paste_spaces() -> None:
    settings = apply_integration_put(None, {"account_passcode": f"  {PASSCODE}\n"})
    assert settings.account_passcode == PASSCODE


def _mapping(**overrides: Any) -> dict[str, Any]:
    row = {
        "sdk_event": "af_purchase",
        "partner_event": "Charged",
        "sending_option": "all_sources",
        "send_revenue": "values",
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"surprise": 1}, "surprise"),
        ({"active": "yes"}, "active"),
        ({"active": 1}, "active"),
        ({"region": ""}, "region"),
        ({"region": 1}, "region"),
        ({"region": "E" * 17}, "region"),
        ({"default_postbacks": "on"}, "default_postbacks"),
        ({"identity_field": "email"}, "identity_field"),
        ({"install_event_name": ""}, "install_event_name"),
        ({"install_event_name": "x" * 121}, "install_event_name"),
        ({"reengagement_event_name": "UTM Visited"}, "reengagement_event_name"),
        ({"account_passcode": 123}, "account_passcode"),
        ({"account_passcode": "has space"}, "account_passcode"),
        ({"account_id": "bad\nheader"}, "account_id"),
        ({"in_app_events": []}, "in_app_events"),
        ({"in_app_events": {"extra": True}}, "in_app_events.extra"),
        ({"in_app_events": {"enabled": "true"}}, "in_app_events.enabled"),
        ({"in_app_events": {"postback_window_days": 0}}, "in_app_events.postback_window_days"),
        ({"in_app_events": {"postback_window_days": 366}}, "in_app_events.postback_window_days"),
        ({"in_app_events": {"postback_window_days": 1.5}}, "in_app_events.postback_window_days"),
        ({"in_app_events": {"postback_window_days": True}}, "in_app_events.postback_window_days"),
        ({"in_app_events": {"mappings": {}}}, "in_app_events.mappings"),
        ({"in_app_events": {"mappings": ["x"]}}, "in_app_events.mappings[0]"),
        (
            {"in_app_events": {"mappings": [_mapping(), _mapping(), _mapping(send_revenue="all")]}},
            "in_app_events.mappings[1].sdk_event",
        ),
        (
            {
                "in_app_events": {
                    "mappings": [
                        _mapping(sdk_event="a"),
                        _mapping(sdk_event="b"),
                        _mapping(sdk_event="c", send_revenue="all"),
                    ]
                }
            },
            "in_app_events.mappings[2].send_revenue",
        ),
        (
            {"in_app_events": {"mappings": [_mapping(sending_option="everyone")]}},
            "in_app_events.mappings[0].sending_option",
        ),
        (
            {"in_app_events": {"mappings": [_mapping(partner_event="")]}},
            "in_app_events.mappings[0].partner_event",
        ),
        (
            {"in_app_events": {"mappings": [{"sdk_event": "a", "partner_event": "b"}]}},
            "in_app_events.mappings[0].sending_option",
        ),
        (
            {"in_app_events": {"mappings": [_mapping(colour="red")]}},
            "in_app_events.mappings[0].colour",
        ),
        ({"restricted_media_sources": "snapchat_int"}, "restricted_media_sources"),
        (
            {"restricted_media_sources": [{"media_source": "snapchat_int", "policy": "hide"}]},
            "restricted_media_sources[0].policy",
        ),
        (
            {"restricted_media_sources": [{"media_source": "", "policy": "drop"}]},
            "restricted_media_sources[0].media_source",
        ),
        (
            {
                "restricted_media_sources": [
                    {"media_source": "a", "policy": "drop"},
                    {"media_source": "a", "policy": "drop"},
                ]
            },
            "restricted_media_sources[1].media_source",
        ),
        (
            {"restricted_media_sources": [{"media_source": "a"}]},
            "restricted_media_sources[0].policy",
        ),
    ],
)
def test_invalid_put_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        apply_integration_put(None, body)
    assert info.value.field == field


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidParameter):
        apply_integration_put(None, ["not", "an", "object"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        (None, None),
        ("", None),
        ("abc", "********"),
        ("1234567", "********"),
        ("12345678", "*****678"),
        ("WVE-SMB-CXUL", "*****XUL"),
    ],
)
def test_mask_secret(secret: str | None, masked: str | None) -> None:
    assert mask_secret(secret) == masked


def test_public_dict_masks_secrets() -> None:
    public = settings_to_public_dict(apply_integration_put(None, FULL_BODY))
    assert PASSCODE not in json.dumps(public)
    assert TOKEN not in json.dumps(public)
    assert public["account_passcode"] == "*****XUL"
    assert public["account_token"] == "*****tok"
    assert public["has_passcode"] is True
    assert public["has_token"] is True
    assert public["account_id"] == "W6K-556-4K6Z"
    assert public["endpoint"] == "https://in1.api.clevertap.com/1/upload"
    assert public["resolved_region"] == "IN1"
    assert public["in_app_events"]["mappings"][0]["partner_event"] == "Charged"
    assert public["restricted_media_sources"] == [
        {"media_source": "snapchat_int", "policy": "send_as_organic"}
    ]
    assert public["warnings"] == []


def test_public_dict_without_secrets() -> None:
    public = settings_to_public_dict(IntegrationSettings())
    assert public["account_passcode"] is None
    assert public["has_passcode"] is False
    assert public["has_token"] is False


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, PASSCODE, "set"),
        (PASSCODE, "other-passcode", "changed"),
        (PASSCODE, None, "cleared"),
        (PASSCODE, PASSCODE, None),
    ],
)
def test_audit_diff_never_shows_secrets(
    before: str | None, after: str | None, expected: str | None
) -> None:
    old = IntegrationSettings(account_passcode=before, account_token=before)
    new = IntegrationSettings(account_passcode=after, account_token=after, active=True)
    diff = audit_diff(old, new)
    assert diff.get("account_passcode") == expected
    assert diff.get("account_token") == expected
    assert diff["active"] == {"from": False, "to": True}
    text = json.dumps(diff)
    assert PASSCODE not in text
    assert "other-passcode" not in text


def test_audit_diff_of_a_first_put_lists_fields_but_no_secret() -> None:
    diff = audit_diff(None, apply_integration_put(None, FULL_BODY))
    assert diff["region"] == {"from": None, "to": "IN1"}
    assert diff["account_passcode"] == "set"
    assert PASSCODE not in json.dumps(diff)
    assert TOKEN not in json.dumps(diff)


def test_audit_diff_lists_only_changes() -> None:
    stored = apply_integration_put(None, FULL_BODY)
    changed = apply_integration_put(stored, {"region": "US1"})
    assert audit_diff(stored, changed) == {"region": {"from": "IN1", "to": "US1"}}


def test_storage_round_trip_keeps_secrets() -> None:
    settings = apply_integration_put(None, FULL_BODY)
    stored = json.loads(json.dumps(settings_to_json(settings)))
    assert stored["account_passcode"] == PASSCODE
    assert settings_from_json(stored) == settings
    assert settings_from_json({}) == IntegrationSettings()
