"""Apps and templates through the JSON API (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


def make_app(api: Api, app_id: str = "com.example.shop", **extra: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/apps", {"app_id": app_id, "name": "Shop", **extra})
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_create_android_app(api: Api) -> None:
    body = make_app(api)
    assert body["platform"] == "android"
    assert body["sdk_key"].startswith("sdk_")
    assert body["store_url"] == "https://play.google.com/store/apps/details?id=com.example.shop"
    assert body["click_lookback"] == "7d" and body["reattribution_window_days"] == 90
    again = api.get("/api/v1/apps/com.example.shop").get_json()
    assert "sdk_key" not in again  # shown once
    assert again["sdk_key_hint"].endswith(body["sdk_key"][-4:])


def test_create_ios_app(api: Api) -> None:
    body = make_app(api, "id123456789", team_id="ABCDE12345", bundle_id="com.example.shop")
    assert body["platform"] == "ios"
    assert body["store_url"] == "https://apps.apple.com/app/id123456789"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x"}, "app_id"),
        ({"app_id": "id12ab", "name": "x"}, "app_id"),
        ({"app_id": "noperiod", "name": "x"}, "app_id"),
        ({"app_id": "com.1bad.pkg", "name": "x"}, "app_id"),
        ({"app_id": "com.ok.app"}, "name"),
        ({"app_id": "com.ok.app", "name": 5}, "name"),
        ({"app_id": "com.ok.app", "name": "x", "store_url": "http://x.com"}, "store_url"),
        ({"app_id": "com.ok.app", "name": "x", "click_lookback": "45d"}, "click_lookback"),
        (
            {"app_id": "com.ok.app", "name": "x", "reengagement_window": "91d"},
            "reengagement_window",
        ),
        (
            {"app_id": "com.ok.app", "name": "x", "reattribution_window_days": "90"},
            "reattribution_window_days",
        ),
        (
            {"app_id": "com.ok.app", "name": "x", "probabilistic_matching": "yes"},
            "probabilistic_matching",
        ),
        (
            {"app_id": "com.ok.app", "name": "x", "sha256_cert_fingerprints": ["zz"]},
            "sha256_cert_fingerprints[0]",
        ),
        ({"app_id": "com.ok.app", "name": "x", "team_id": "short"}, "team_id"),
        ({"app_id": "com.ok.app", "name": "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_app_is_400_naming_the_field(api: Api, payload: dict[str, Any], field: str) -> None:
    resp = api.post("/api/v1/apps", payload)
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_parameter"
    assert err["field"] == field
    assert api.get("/api/v1/apps").get_json()["items"] == []  # nothing half-written


def test_non_object_body_is_400(api: Api) -> None:
    resp = api.post("/api/v1/apps", data="[1,2]", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "body"
    resp = api.post("/api/v1/apps", data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


def test_duplicate_app_is_409(api: Api) -> None:
    make_app(api)
    resp = api.post("/api/v1/apps", {"app_id": "com.example.shop", "name": "Again"})
    assert resp.status_code == 409


def test_patch_app_and_rotate_key(api: Api) -> None:
    created = make_app(api)
    resp = api.patch(
        "/api/v1/apps/com.example.shop", {"click_lookback": "12h", "rotate_sdk_key": True}
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["click_lookback"] == "12h"
    assert body["sdk_key"] != created["sdk_key"]
    assert api.patch("/api/v1/apps/com.nope.app", {"name": "x"}).status_code == 404
    assert api.patch("/api/v1/apps/com.example.shop", {"app_id": "com.x.y"}).status_code == 400


def test_list_apps_paginates(api: Api) -> None:
    for i in range(5):
        make_app(api, f"com.example.app{i}")
    page1 = api.get("/api/v1/apps?limit=2").get_json()
    assert [a["app_id"] for a in page1["items"]] == ["com.example.app0", "com.example.app1"]
    page2 = api.get(f"/api/v1/apps?limit=2&cursor={page1['next']}").get_json()
    assert [a["app_id"] for a in page2["items"]] == ["com.example.app2", "com.example.app3"]
    page3 = api.get(f"/api/v1/apps?limit=2&cursor={page2['next']}").get_json()
    assert len(page3["items"]) == 1 and page3["next"] is None
    assert api.get("/api/v1/apps?limit=0").get_json()["error"]["field"] == "limit"
    assert api.get("/api/v1/apps?limit=501").status_code == 400
    assert api.get("/api/v1/apps?cursor=%%%").status_code == 400


def make_template(api: Api, **extra: Any) -> dict[str, Any]:
    body = {
        "domain": "go.example.com",
        "android_app_id": "com.example.shop",
        "ios_app_id": "id123456789",
        "uri_scheme": "shop://",
        "universal_links": True,
        "app_links": True,
        "web_fallback_url": "https://www.example.com/",
        "redirect_allowlist": ["example.com"],
        **extra,
    }
    resp = api.post("/api/v1/templates", body)
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def test_create_template_generates_id(api: Api) -> None:
    make_app(api)
    make_app(api, "id123456789")
    body = make_template(api)
    assert len(body["template_id"]) == 4 and body["template_id"].isalnum()
    assert body["uri_scheme"] == "shop://"
    got = api.get(f"/api/v1/templates/{body['template_id']}").get_json()
    assert got == body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"template_id": "api1x"}, "template_id"),
        ({"template_id": "ab-c"}, "template_id"),
        ({"template_id": "apps"}, "template_id"),
        ({"template_id": "LOGO"[:0] + "Stat"}, "template_id"),
        ({"domain": "evil.com"}, "domain"),
        ({"web_fallback_url": "http://www.example.com"}, "web_fallback_url"),
        ({"redirect_allowlist": ["https://example.com/x"]}, "redirect_allowlist[0]"),
        ({"redirect_allowlist": ["com"]}, "redirect_allowlist[0]"),
        ({"redirect_allowlist": ["example.com", "co.uk"]}, "redirect_allowlist[1]"),
        ({"redirect_allowlist": ["github.io"]}, "redirect_allowlist[0]"),
        ({"redirect_allowlist": "example.com"}, "redirect_allowlist"),
        ({"uri_scheme": "javascript:"}, "uri_scheme"),
        ({"android_app_id": "com.missing.app"}, "android_app_id"),
        ({"ios_app_id": "com.example.shop"}, "ios_app_id"),
        ({"universal_links": "yes"}, "universal_links"),
    ],
)
def test_bad_template_is_400(api: Api, payload: dict[str, Any], field: str) -> None:
    make_app(api)
    body = {"domain": "go.example.com", **payload}
    resp = api.post("/api/v1/templates", body)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["field"] == field
    assert api.get("/api/v1/templates").get_json()["items"] == []


def test_template_conflict_and_patch(api: Api) -> None:
    make_app(api)
    make_app(api, "id123456789")
    make_template(api, template_id="AbCd")
    assert (
        api.post(
            "/api/v1/templates", {"template_id": "AbCd", "domain": "go.example.com"}
        ).status_code
        == 409
    )
    resp = api.patch(
        "/api/v1/templates/AbCd", {"redirect_allowlist": ["example.com", "shop.example.org"]}
    )
    assert resp.status_code == 200
    assert resp.get_json()["redirect_allowlist"] == ["example.com", "shop.example.org"]
    assert api.get("/api/v1/templates/ZZZZ").status_code == 404


def test_read_only_key_cannot_write(app: Any, client: Any) -> None:
    from linkgen.services.accounts import create_api_key

    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "reader", scope="read")
    ro = Api(client, raw)
    assert ro.get("/api/v1/apps").status_code == 200
    resp = ro.post("/api/v1/apps", {"app_id": "com.a.b", "name": "x"})
    assert resp.status_code == 403
