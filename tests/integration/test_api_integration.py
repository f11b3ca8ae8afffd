"""The CleverTap integration API (SQLite and PostgreSQL; the real HTTP fake for /test)."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from linkgen.domain.clevertap import DEFAULT_RESTRICTED
from tests.conftest import Api
from tests.fakes.fake_clevertap import Behaviour, FakeCleverTap

APP = "com.example.shop"
BASE = f"/api/v1/apps/{APP}/integrations/clevertap"
ACCOUNT = "W6K-556-4K6Z"
PASSCODE = "WVE-SMB-CXUL-SECRET"
TOKEN = "tok-a1b2-c3d4-SECRET"

FULL: dict[str, Any] = {
    "active": True,
    "account_id": ACCOUNT,
    "account_passcode": PASSCODE,
    "account_token": TOKEN,
    "region": "EU1",
    "default_postbacks": "all_sources",
    "install_event_name": "App Install Attributed",
    "reengagement_event_name": "App Re-engagement Attributed",
    "identity_field": "objectId",
    "in_app_events": {
        "enabled": True,
        "postback_window_days": 180,
        "mappings": [
            {
                "sdk_event": "af_purchase",
                "partner_event": "Charged",
                "sending_option": "all_sources",
                "send_revenue": "values_and_revenue",
            }
        ],
    },
    "restricted_media_sources": [{"media_source": "snapchat_int", "policy": "drop"}],
}


def _new_app(api: Api, app_id: str = APP) -> None:
    resp = api.post("/api/v1/apps", {"app_id": app_id, "name": "Shop"})
    assert resp.status_code == 201, resp.get_json()


def _api_for(application: Flask) -> Api:
    from linkgen.services.accounts import create_api_key

    with application.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "tests")
    return Api(application.test_client(), raw)


@pytest.fixture
def shop(api: Api) -> Api:
    _new_app(api)
    return api


def test_get_before_any_put_answers_inactive_defaults_with_warnings(shop: Api) -> None:
    resp = shop.get(BASE)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["active"] is False and body["configured"] is False
    assert body["has_passcode"] is False and body["account_passcode"] is None
    assert body["region"] == "EU1"
    assert body["endpoint"] == "https://eu1.api.clevertap.com/1/upload"
    assert any("not active" in w for w in body["warnings"])
    assert any("No account ID, passcode or token" in w for w in body["warnings"])
    assert body["restricted_media_sources"] == [
        {"media_source": s.media_source, "policy": s.policy} for s in DEFAULT_RESTRICTED
    ]


def test_put_stores_and_get_answers_the_same_masked_shape(shop: Api) -> None:
    resp = shop.put(BASE, FULL)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["active"] is True and body["configured"] is True
    assert body["account_id"] == ACCOUNT
    assert body["account_passcode"] == "*****" + PASSCODE[-3:]
    assert body["account_token"] == "*****" + TOKEN[-3:]
    assert body["has_passcode"] is True and body["has_token"] is True
    assert body["in_app_events"] == FULL["in_app_events"]
    assert body["restricted_media_sources"] == FULL["restricted_media_sources"]
    assert body["warnings"] == []
    assert shop.get(BASE).get_json() == body


def test_secrets_never_appear_in_answers_or_logs(
    shop: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = [
        shop.put(BASE, FULL).get_data(as_text=True),
        shop.get(BASE).get_data(as_text=True),
        shop.put(BASE, {"account_passcode": PASSCODE + "2"}).get_data(as_text=True),
        shop.get(f"{BASE}/audit").get_data(as_text=True),
        shop.put(BASE, {"account_passcode": 5}).get_data(as_text=True),
    ]
    for text in texts:
        assert PASSCODE not in text and TOKEN not in text
        assert PASSCODE[:-3] not in text and TOKEN[:-3] not in text
    assert PASSCODE[:-3] not in caplog.text and TOKEN[:-3] not in caplog.text


@pytest.mark.parametrize(
    ("region", "endpoint", "warned"),
    [
        ("EU1", "https://eu1.api.clevertap.com/1/upload", False),
        ("IN1", "https://in1.api.clevertap.com/1/upload", False),
        ("ID", "https://aps3.api.clevertap.com/1/upload", False),
        ("US1", "https://us1.api.clevertap.com/1/upload", False),
        ("SG1", "https://sg1.api.clevertap.com/1/upload", False),
        ("MEC1", "https://mec1.api.clevertap.com/1/upload", False),
        ("in1", "https://eu1.api.clevertap.com/1/upload", True),
        ("id", "https://eu1.api.clevertap.com/1/upload", True),
        ("Mars", "https://eu1.api.clevertap.com/1/upload", True),
    ],
)
def test_region_is_case_sensitive_and_unknown_goes_to_eu1(
    shop: Api, region: str, endpoint: str, warned: bool
) -> None:
    body = shop.put(BASE, {**FULL, "region": region}).get_json()
    assert body["region"] == region  # stored as given
    assert body["endpoint"] == endpoint
    region_warnings = [w for w in body["warnings"] if f'Region "{region}"' in w]
    assert bool(region_warnings) is warned
    if warned:
        assert "EU1" in region_warnings[0]
    assert shop.get(BASE).get_json()["endpoint"] == endpoint


def test_lowercase_region_warning_suggests_capitals(shop: Api) -> None:
    body = shop.put(BASE, {**FULL, "region": "in1"}).get_json()
    (warning,) = [w for w in body["warnings"] if "in1" in w]
    assert "case-sensitive" in warning and '"IN1"' in warning
    assert "https://eu1.api.clevertap.com/1/upload" in warning


def test_omitted_secret_is_kept_empty_or_null_clears_it(shop: Api) -> None:
    shop.put(BASE, FULL)
    kept = shop.put(BASE, {"region": "IN1"}).get_json()
    assert kept["has_passcode"] is True and kept["has_token"] is True
    assert kept["account_passcode"].endswith(PASSCODE[-3:])
    cleared = shop.put(BASE, {"account_passcode": ""}).get_json()
    assert cleared["has_passcode"] is False and cleared["account_passcode"] is None
    assert cleared["has_token"] is True
    cleared = shop.put(BASE, {"account_token": None}).get_json()
    assert cleared["has_token"] is False
    assert any("passcode" in w for w in cleared["warnings"])
    assert shop.get(BASE).get_json() == cleared


def test_restricted_list_is_prefilled_when_omitted(shop: Api) -> None:
    body = shop.put(BASE, {"active": True, "account_id": ACCOUNT}).get_json()
    assert [s["media_source"] for s in body["restricted_media_sources"]] == [
        s.media_source for s in DEFAULT_RESTRICTED
    ]
    assert (
        shop.put(BASE, {"restricted_media_sources": []}).get_json()["restricted_media_sources"]
        == []
    )
    assert shop.put(BASE, {"active": False}).get_json()["restricted_media_sources"] == []
    restored = shop.put(BASE, {"restricted_media_sources": None}).get_json()
    assert len(restored["restricted_media_sources"]) == len(DEFAULT_RESTRICTED)


def test_warnings_for_missing_pieces(shop: Api) -> None:
    body = shop.put(BASE, {"active": True, "account_token": TOKEN}).get_json()
    assert any("upload API will refuse" in w for w in body["warnings"])
    assert any("default postbacks are off" in w for w in body["warnings"])


def test_audit_lists_changes_with_actor_and_no_secrets(shop: Api) -> None:
    shop.put(BASE, FULL)
    shop.put(BASE, {"region": "IN1", "account_passcode": "another-passcode-1"})
    shop.put(BASE, {"region": "IN1"})  # no change: no audit row
    shop.put(BASE, {"account_token": ""})
    resp = shop.get(f"{BASE}/audit")
    assert resp.status_code == 200
    page = resp.get_json()
    assert page["next"] is None
    items = page["items"]
    assert len(items) == 3
    newest, middle, first = items
    assert all(i["actor"] == "api-key:tests" for i in items)
    assert all(i["at"].endswith("Z") for i in items)
    assert newest["changes"] == {"account_token": "cleared"}
    assert middle["changes"] == {
        "region": {"from": "EU1", "to": "IN1"},
        "account_passcode": "changed",
    }
    assert first["changes"]["account_passcode"] == "set"
    assert first["changes"]["active"] == {"from": None, "to": True}
    text = resp.get_data(as_text=True)
    assert PASSCODE not in text and "another-passcode-1" not in text and TOKEN not in text


def test_audit_paginates(shop: Api) -> None:
    for days in range(1, 6):
        shop.put(BASE, {"in_app_events": {"postback_window_days": days}})
    page1 = shop.get(f"{BASE}/audit?limit=2").get_json()
    assert len(page1["items"]) == 2 and page1["next"]
    page2 = shop.get(f"{BASE}/audit?limit=2&cursor={page1['next']}").get_json()
    page3 = shop.get(f"{BASE}/audit?limit=2&cursor={page2['next']}").get_json()
    assert page3["next"] is None
    windows = [
        i["changes"]["in_app_events"]["to"]["postback_window_days"]
        for i in page1["items"] + page2["items"] + page3["items"]
    ]
    assert windows == [5, 4, 3, 2, 1]
    assert shop.get(f"{BASE}/audit?limit=0").get_json()["error"]["field"] == "limit"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"active": "yes"}, "active"),
        ({"region": ""}, "region"),
        ({"region": 3}, "region"),
        ({"default_postbacks": "sometimes"}, "default_postbacks"),
        ({"identity_field": "email"}, "identity_field"),
        ({"install_event_name": "UTM Visited"}, "install_event_name"),
        ({"account_passcode": "has space"}, "account_passcode"),
        ({"account_id": 12}, "account_id"),
        ({"in_app_events": {"postback_window_days": 0}}, "in_app_events.postback_window_days"),
        ({"in_app_events": {"enabled": 1}}, "in_app_events.enabled"),
        (
            {"in_app_events": {"mappings": [{"sdk_event": "a", "partner_event": "b"}]}},
            "in_app_events.mappings[0].sending_option",
        ),
        (
            {
                "in_app_events": {
                    "mappings": [
                        {
                            "sdk_event": "a",
                            "partner_event": "b",
                            "sending_option": "all_sources",
                            "send_revenue": "everything",
                        }
                    ]
                }
            },
            "in_app_events.mappings[0].send_revenue",
        ),
        (
            {"restricted_media_sources": [{"media_source": "x", "policy": "hide"}]},
            "restricted_media_sources[0].policy",
        ),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    shop: Api, change: dict[str, Any], field: str
) -> None:
    resp = shop.put(BASE, {**FULL, **change})
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_parameter" and error["field"] == field
    assert shop.get(BASE).get_json()["configured"] is False
    assert shop.get(f"{BASE}/audit").get_json()["items"] == []


def test_bad_put_keeps_what_was_stored(shop: Api) -> None:
    stored = shop.put(BASE, FULL).get_json()
    assert shop.put(BASE, {"region": "EU1", "default_postbacks": "x"}).status_code == 400
    assert shop.get(BASE).get_json() == stored
    assert len(shop.get(f"{BASE}/audit").get_json()["items"]) == 1


def test_body_must_be_an_object(shop: Api) -> None:
    resp = shop.put(BASE, data="[1]", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "body"


def test_unknown_app_is_404(api: Api) -> None:
    missing = "/api/v1/apps/com.nope.app/integrations/clevertap"
    assert api.get(missing).status_code == 404
    assert api.put(missing, FULL).status_code == 404
    assert api.get(f"{missing}/audit").status_code == 404
    assert api.post(f"{missing}/test").status_code == 404


def test_read_only_key_can_read_but_not_write(app: Flask, shop: Api) -> None:
    from linkgen.services.accounts import create_api_key

    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "reader", scope="read")
    reader = Api(shop.client, raw)
    assert reader.get(BASE).status_code == 200
    assert reader.put(BASE, FULL).status_code == 403
    assert reader.post(f"{BASE}/test").status_code == 403


# --- POST .../test against the real fake ------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeCleverTap]:
    with FakeCleverTap({ACCOUNT: PASSCODE}) as server:
        yield server


@pytest.fixture
def faked(make_app: Callable[..., Flask], fake: FakeCleverTap) -> Api:
    """An API whose CleverTap host is the fake."""
    client = _api_for(make_app(clevertap_api_base=fake.base_url))
    _new_app(client)
    return client


def test_credentials_check_ok(faked: Api, fake: FakeCleverTap) -> None:
    faked.put(BASE, {**FULL, "region": "IN1"})
    resp = faked.post(f"{BASE}/test")
    assert resp.status_code == 200
    assert resp.get_json()["ok"] is True and resp.get_json()["status"] == 200
    (request,) = fake.requests
    assert request.method == "GET" and request.region == "in1"
    assert request.path.startswith("/in1/v1/connect?partner=")
    assert request.headers["x-clevertap-account-id"] == ACCOUNT
    assert request.headers["x-clevertap-passcode"] == PASSCODE
    assert PASSCODE not in resp.get_data(as_text=True)


def test_credentials_check_wrong_passcode_is_401(faked: Api) -> None:
    faked.put(BASE, {**FULL, "account_passcode": "wrong-passcode"})
    body = faked.post(f"{BASE}/test").get_json()
    assert body["ok"] is False and body["status"] == 401
    assert "region" in body["message"]


def test_credentials_check_wrong_region_is_401(faked: Api, fake: FakeCleverTap) -> None:
    fake.add_account("IN-ACC-1", "in-passcode-123", region="in1")
    faked.put(BASE, {**FULL, "account_id": "IN-ACC-1", "account_passcode": "in-passcode-123"})
    body = faked.post(f"{BASE}/test").get_json()
    assert body == {"ok": False, "status": 401, "message": body["message"]}
    fixed = faked.post(f"{BASE}/test", {"region": "IN1"}).get_json()  # unsaved change
    assert fixed["ok"] is True
    assert faked.get(BASE).get_json()["region"] == "EU1"  # the test stored nothing


def test_credentials_check_server_error(faked: Api, fake: FakeCleverTap) -> None:
    faked.put(BASE, FULL)
    fake.enqueue(Behaviour.http_error(503))
    body = faked.post(f"{BASE}/test").get_json()
    assert body["ok"] is False and body["status"] == 503


def test_credentials_check_without_passcode_sends_nothing(faked: Api, fake: FakeCleverTap) -> None:
    faked.put(BASE, {**FULL, "account_passcode": None})
    body = faked.post(f"{BASE}/test").get_json()
    assert body["ok"] is False and body["status"] is None and "passcode" in body["message"]
    assert fake.requests == []


def test_credentials_check_bad_body_is_400(faked: Api) -> None:
    resp = faked.post(f"{BASE}/test", {"region": 5})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "region"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_credentials_check_unreachable_host(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = _api_for(make_app(clevertap_api_base=f"http://127.0.0.1:{_closed_port()}/{{region}}"))
    _new_app(api)
    api.put(BASE, FULL)
    resp = api.post(f"{BASE}/test")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ok"] is False and body["status"] is None
    assert "Could not connect" in body["message"]
    assert PASSCODE not in json.dumps(body) and PASSCODE not in caplog.text


def test_credentials_check_times_out(make_app: Callable[..., Flask], fake: FakeCleverTap) -> None:
    from linkgen.delivery.clevertap_client import CleverTapClient

    application = make_app(clevertap_api_base=fake.base_url)
    with CleverTapClient(timeout=0.2) as client:
        application.extensions["linkgen"].clevertap_client = client
        api = _api_for(application)
        _new_app(api)
        api.put(BASE, FULL)
        fake.enqueue(Behaviour.hang(1.0))
        body = api.post(f"{BASE}/test").get_json()
    assert body["ok"] is False and body["status"] is None
    assert "did not answer" in body["message"]


# -- the settings page's Test connection button and region list --------------------------------


def _settings_page_client(faked: Api) -> Any:
    from tests.integration.test_postback_worker import _ui_client

    return _ui_client(faked.client.application)


def _csrf(client: Any, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match is not None
    return match.group(1)


def test_settings_page_test_connection_shows_clevertaps_answer(
    faked: Api, fake: FakeCleverTap
) -> None:
    faked.put(BASE, {**FULL, "region": "IN1"})
    ui = _settings_page_client(faked)
    page_path = f"/apps/{APP}/clevertap"
    resp = ui.post(f"{page_path}/test", data={"csrf_token": _csrf(ui, page_path)})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "<strong>Connected.</strong>" in page and "HTTP 200" in page
    assert PASSCODE not in page
    (request,) = fake.requests
    assert request.region == "in1"  # the saved region, with the saved credentials
    faked.put(BASE, {"account_passcode": "wrong-passcode"})
    page = ui.post(f"{page_path}/test", data={"csrf_token": _csrf(ui, page_path)}).get_data(
        as_text=True
    )
    assert "<strong>Not connected.</strong>" in page and "HTTP 401" in page
    assert "wrong-passcode" not in page


def test_settings_page_test_connection_needs_the_csrf_token(
    faked: Api, fake: FakeCleverTap
) -> None:
    faked.put(BASE, FULL)
    ui = _settings_page_client(faked)
    assert ui.post(f"/apps/{APP}/clevertap/test").status_code == 400
    assert fake.requests == []


def test_settings_page_region_is_a_list_of_the_real_regions(faked: Api) -> None:
    faked.put(BASE, FULL)
    ui = _settings_page_client(faked)
    page = ui.get(f"/apps/{APP}/clevertap").get_data(as_text=True)
    options = re.findall(r'<option value="([^"]+)" (selected)?>[^<]*dashboard', page)
    assert [code for code, _ in options] == ["EU1", "IN1", "US1", "SG1", "ID", "MEC1"]
    assert [code for code, chosen in options if chosen] == ["EU1"]
    faked.put(BASE, {"region": "in1"})  # stored with a warning by the API: shown as what it is
    page = ui.get(f"/apps/{APP}/clevertap").get_data(as_text=True)
    assert '<option value="in1" selected>in1 (not a CleverTap region: postbacks go to EU1)' in page


def test_settings_page_keeps_the_restricted_sources_folded_with_why(faked: Api) -> None:
    faked.put(BASE, FULL)
    ui = _settings_page_client(faked)
    page_path = f"/apps/{APP}/clevertap"
    page = ui.get(page_path).get_data(as_text=True)
    count = len(faked.get(BASE).get_json()["restricted_media_sources"])
    noun = "source" if count == 1 else "sources"
    assert f'<details class="restricted">\n    <summary>{count} restricted {noun}: show' in page
    assert "do not allow their users' data to be shared" in page
    form = {
        "csrf_token": _csrf(ui, page_path),
        "account_id": ACCOUNT,
        "region": "EU1",
        "restricted_media_source": ["snapchat_int"],
        "restricted_policy": ["sometimes"],
    }
    resp = ui.post(page_path, data=form)
    assert resp.status_code == 400
    assert '<details class="restricted" open>' in resp.get_data(as_text=True)  # the error shows


def test_settings_page_change_history_is_in_the_pages_words(faked: Api) -> None:
    faked.put(BASE, FULL)
    faked.put(BASE, {"region": "IN1", "account_token": None})
    ui = _settings_page_client(faked)
    page = ui.get(f"/apps/{APP}/clevertap").get_data(as_text=True)
    audit = page[page.index('id="audit-h"') :]
    assert "<li>Region: EU1 → IN1</li>" in audit
    assert "<li>Account token: cleared</li>" in audit
    assert "<li>Account passcode: set</li>" in audit
    assert "account_token" not in audit and TOKEN not in audit and PASSCODE not in audit
