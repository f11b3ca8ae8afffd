"""Links through the JSON API: presets, URLs, validation, TTLs, read/list/update/delete.

Every test runs on SQLite and PostgreSQL (see conftest).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask

from linkgen.domain.links import link_ref
from linkgen.storage.epochs import read_epoch
from tests.conftest import Api

PLACEHOLDER = "{{Profile.objectId}}"


@pytest.fixture
def template(api: Api) -> dict[str, Any]:
    resp = api.post(
        "/api/v1/templates",
        {"template_id": "AbCd", "domain": "go.example.com", "redirect_allowlist": ["example.com"]},
    )
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def create(api: Api, **body: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/links", {"template_id": "AbCd", **body})
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def epoch(app: Flask) -> int:
    with app.extensions["linkgen"].db.session() as session:
        return read_epoch(session)


def link_count(api: Api) -> int:
    return len(api.get("/api/v1/links?limit=500").get_json()["items"])


# --------------------------------------------------------------------------- shape and presets

CONTRACT_FIELDS = [
    "id",
    "template_id",
    "channel",
    "media_source",
    "campaign",
    "params",
    "partner",
    "long_url",
    "short_url",
    "shortlink_id",
    "expires_at",
    "clevertap",
    "qr_png_url",
    "qr_svg_url",
]


def test_response_has_the_contract_shape(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="email", campaign="spring_sale", params={"af_sub1": "x"})
    assert list(link)[: len(CONTRACT_FIELDS)] == CONTRACT_FIELDS
    assert link["partner"] == "clevertap"
    assert set(link["clevertap"]) == {"url", "email_html", "sms_text", "push_payload"}
    assert link["qr_png_url"] == f"/api/v1/links/{link['id']}/qr.png"
    assert link["qr_svg_url"] == f"/api/v1/links/{link['id']}/qr.svg"
    assert api.get(f"/api/v1/links/{link['id']}").get_json() == link


def test_email_link_is_long_with_email_pid(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="email", campaign="spring_sale")
    assert link["media_source"] == "Email"
    assert link["short_url"] is None and link["shortlink_id"] is None
    assert link["expires_at"] is None
    assert link["long_url"] == (
        "https://go.example.com/AbCd?pid=Email&c=spring_sale&af_channel=email"
        f"&lg_link={link_ref(link['id'])}"
    )
    assert link["clevertap"]["url"] == link["long_url"]
    assert link["clevertap"]["push_payload"] == {"wzrk_dl": link["long_url"]}


def test_sms_link_is_short_by_default(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="sms", campaign="spring_sale")
    assert link["media_source"] == "SMS"
    sid = link["shortlink_id"]
    assert len(sid) == 8 and sid.isalnum()
    assert link["short_url"] == f"https://go.example.com/AbCd/{sid}"
    assert link["clevertap"]["url"] == link["short_url"]
    assert link["clevertap"]["sms_text"] == link["short_url"]
    assert dict(query(link["long_url"]))["af_channel"] == "sms"
    assert when(link["expires_at"]) - when(link["created_at"]) == timedelta(days=31)


def test_sms_can_ask_for_a_long_link(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="sms", short=False)
    assert link["short_url"] is None and link["expires_at"] is None


def test_push_link_is_retargeting(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="push", campaign="winback")
    assert link["media_source"] == "Push"
    assert link["params"] == {"is_retargeting": "true"}
    assert query(link["long_url"]) == [
        ("pid", "Push"),
        ("c", "winback"),
        ("af_channel", "push"),
        ("lg_link", link_ref(link["id"])),
        ("is_retargeting", "true"),
    ]
    assert link["clevertap"]["push_payload"] == {"wzrk_dl": link["long_url"]}
    resp = api.post(
        "/api/v1/links",
        {"template_id": "AbCd", "channel": "push", "params": {"is_retargeting": "false"}},
    )
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == "params.is_retargeting"


def test_qr_link_is_short_with_qr_pid(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="qr", campaign="poster")
    assert link["media_source"] == "QR"
    assert link["short_url"] == f"https://go.example.com/AbCd/{link['shortlink_id']}"
    assert dict(query(link["long_url"]))["af_channel"] == "qr"


def test_qr_link_without_ttl_never_expires(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="qr", campaign="poster")
    assert link["short"] is True
    assert link["expires_at"] is None and link["ttl"] is None
    assert api.get(f"/api/v1/links/{link['id']}").get_json()["expires_at"] is None
    # Editing anything else keeps it that way.
    patched = api.patch(f"/api/v1/links/{link['id']}", {"campaign": "poster2"}).get_json()
    assert patched["expires_at"] is None and patched["ttl"] is None


def test_qr_link_with_ttl_expires(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="qr", campaign="flyer", ttl="14d")
    assert link["ttl"] == "14d"
    assert when(link["expires_at"]) - when(link["created_at"]) == timedelta(days=14)


def test_patching_ttl_null_makes_an_expiring_qr_link_permanent(
    api: Api, template: dict[str, Any]
) -> None:
    link = create(api, channel="qr", campaign="poster", ttl="31d")  # as QR links were made
    assert link["expires_at"] is not None
    patched = api.patch(f"/api/v1/links/{link['id']}", {"ttl": None})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["expires_at"] is None and patched.get_json()["ttl"] is None
    # Other channels have no "never": a null ttl is the default 31 days again.
    sms = create(api, channel="sms", ttl="2h")
    again = api.patch(f"/api/v1/links/{sms['id']}", {"ttl": None}).get_json()
    assert again["ttl"] == "31d" and again["expires_at"] is not None


def test_custom_channel_needs_a_media_source(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="custom", media_source="newsletter_partner")
    assert link["media_source"] == "newsletter_partner"
    assert dict(query(link["long_url"]))["af_channel"] == "custom"
    resp = api.post("/api/v1/links", {"template_id": "AbCd", "channel": "custom"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == "media_source"


def test_explicit_media_source_wins_over_the_preset(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="email", media_source="Newsletter")
    assert dict(query(link["long_url"]))["pid"] == "Newsletter"


# --------------------------------------------------------------------------- URLs


def test_parameter_order_is_canonical(api: Api, template: dict[str, Any]) -> None:
    link = create(
        api,
        channel="email",
        campaign="spring_sale",
        params={
            "zeta": "1",
            "deep_link_value": "shoes",
            "af_sub1": "s1",
            "alpha": "2",
            "af_adset": "set",
            "is_retargeting": "true",
            "deep_link_sub1": "d1",
        },
    )
    keys = [k for k, _ in query(link["long_url"])]
    assert keys == [
        "pid",
        "c",
        "af_channel",
        "lg_link",
        "af_adset",
        "af_sub1",
        "deep_link_value",
        "deep_link_sub1",
        "is_retargeting",
        "alpha",
        "zeta",
    ]
    assert list(link["params"]) == keys[4:]
    # The same order after a round trip through the database (JSONB reorders keys).
    again = api.get(f"/api/v1/links/{link['id']}").get_json()
    assert again["long_url"] == link["long_url"]
    assert list(again["params"]) == keys[4:]


def test_placeholder_stays_raw_everywhere(api: Api, template: dict[str, Any]) -> None:
    params = {"af_sub5": PLACEHOLDER, "deep_link_value": "shoes"}
    long_link = create(api, channel="email", campaign="spring_sale", params=params)
    assert f"&af_sub5={PLACEHOLDER}" in long_link["long_url"]
    ct = long_link["clevertap"]
    assert PLACEHOLDER in ct["url"] and PLACEHOLDER in ct["sms_text"]
    assert PLACEHOLDER in ct["email_html"] and PLACEHOLDER in ct["push_payload"]["wzrk_dl"]

    short_link = create(api, channel="sms", campaign="spring_sale", params=params)
    sid = short_link["shortlink_id"]
    assert short_link["short_url"] == f"https://go.example.com/AbCd/{sid}?af_sub5={PLACEHOLDER}"
    assert f"af_sub5={PLACEHOLDER}" in short_link["long_url"]
    assert short_link["clevertap"]["url"] == short_link["short_url"]
    assert short_link["clevertap"]["email_html"] == (
        f'<a href="{short_link["short_url"]}">{short_link["short_url"]}</a>'
    )


def test_every_url_parses_back_to_the_params_given(api: Api, template: dict[str, Any]) -> None:
    params = {
        "af_sub1": "a b&c=d/é?#",
        "af_sub2": "50% ~ + ;",
        "deep_link_value": "shoes",
        "af_r": "https://shop.example.com/p?id=1&x=y",
        "custom key": "v=1&2",
    }
    for channel in ("email", "sms", "push", "qr"):
        link = create(api, channel=channel, campaign="spring sale", params=params)
        expected = {"pid": link["media_source"], "c": "spring sale", "af_channel": channel}
        expected.update(params)
        if channel == "push":
            expected["is_retargeting"] = "true"
        expected["lg_link"] = str(link_ref(link["id"]))
        assert dict(query(link["long_url"])) == expected
        assert len(query(link["long_url"])) == len(expected)
        assert link["params"] == {
            k: v for k, v in expected.items() if k not in ("pid", "c", "af_channel", "lg_link")
        }
        if link["short_url"]:
            assert urlsplit(link["short_url"]).path == f"/AbCd/{link['shortlink_id']}"
            assert query(link["short_url"]) == []
        assert " " not in link["long_url"] and "#" not in link["long_url"]


def test_scheme_is_http_for_localhost_domains(api: Api) -> None:
    api.post("/api/v1/templates", {"template_id": "Loc1", "domain": "localhost:8000"})
    link = create(api, template_id="Loc1", channel="sms")
    assert link["short_url"].startswith("http://localhost:8000/Loc1/")
    assert link["long_url"].startswith("http://localhost:8000/Loc1?pid=SMS")


# --------------------------------------------------------------------------- validation

LONG = "x" * 2100


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "custom"}, "media_source"),
        ({"channel": "custom", "media_source": ""}, "media_source"),
        ({"media_source": "news/letter"}, "media_source"),
        ({"media_source": "news<letter"}, "media_source"),
        ({"media_source": "a&b"}, "media_source"),
        ({"media_source": "a?b"}, "media_source"),
        ({"media_source": "a*b"}, "media_source"),
        ({"media_source": "a\\b"}, "media_source"),
        ({"media_source": "mypartner_int"}, "media_source"),
        ({"media_source": "Facebook Ads"}, "media_source"),
        ({"media_source": "googleadwords_int"}, "media_source"),
        ({"media_source": "p" * 151}, "media_source"),
        ({"channel": "email", "campaign": "c" * 101}, "campaign"),
        ({"channel": "email", "campaign": " spring"}, "campaign"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "email", "params": {"af_sub1": "s" * 101}}, "params.af_sub1"),
        ({"channel": "email", "params": {"af_channel": "x"}}, "params.af_channel"),
        ({"channel": "email", "params": {"pid": "x"}}, "params.pid"),
        ({"channel": "email", "params": {"c": "x"}}, "params.c"),
        ({"channel": "email", "params": {"af_og_title": "t" * 41}}, "params.af_og_title"),
        ({"channel": "email", "params": {"af_c_id": "1" * 25}}, "params.af_c_id"),
        ({"channel": "email", "params": {"af_click_lookback": "31d"}}, "params.af_click_lookback"),
        ({"channel": "email", "params": {"af_click_lookback": "24h"}}, "params.af_click_lookback"),
        (
            {"channel": "email", "params": {"af_reengagement_window": "91d"}},
            "params.af_reengagement_window",
        ),
        (
            {"channel": "email", "params": {"af_reengagement_window": "37h"}},
            "params.af_reengagement_window",
        ),
        ({"channel": "email", "params": {"af_r": "http://example.com/"}}, "params.af_r"),
        ({"channel": "email", "params": {"af_r": "https://evil.com/"}}, "params.af_r"),
        ({"channel": "email", "params": {"af_r": "example.com/x"}}, "params.af_r"),
        (
            {"channel": "email", "params": {"af_web_dp": "https://example.com/#top"}},
            "params.af_web_dp",
        ),
        (
            {"channel": "email", "params": {"af_ios_url": "https://example.com@evil.com/"}},
            "params.af_ios_url",
        ),
        (
            {"channel": "email", "params": {"af_android_url": "https://{{x}}.example.com/"}},
            "params.af_android_url",
        ),
        ({"channel": "email", "params": {"{{Profile.key}}": "v"}}, "params.{{Profile.key}}"),
        ({"channel": "email", "params": {"deep_link_sub1": LONG}}, "params.deep_link_sub1"),
        ({"channel": "email", "params": {"af_sub1": {"nested": 1}}}, "params.af_sub1"),
        ({"channel": "email", "params": ["a"]}, "params"),
        ({"channel": "sms", "shortlink_id": "bad-id"}, "shortlink_id"),
        ({"channel": "sms", "shortlink_id": "a" * 51}, "shortlink_id"),
        ({"channel": "sms", "shortlink_id": ""}, "shortlink_id"),
        ({"channel": "email", "short": False, "shortlink_id": "abc"}, "shortlink_id"),
        ({"channel": "email", "short": "yes"}, "short"),
        ({"channel": "sms", "ttl": "0d"}, "ttl"),
        ({"channel": "sms", "ttl": "366d"}, "ttl"),
        ({"channel": "sms", "ttl": "30s"}, "ttl"),
        ({"channel": "sms", "ttl": "abc"}, "ttl"),
        ({"channel": "sms", "ttl": 0}, "ttl"),
        ({"channel": "sms", "ttl": True}, "ttl"),
        ({"channel": "sms", "renew_ttl": "no"}, "renew_ttl"),
        ({"channel": "email", "campain": "typo"}, "campain"),
        ({"template_id": None, "channel": "email"}, "template_id"),
        ({"template_id": "ZZZZ", "channel": "email"}, "template_id"),
        ({"template_id": 12, "channel": "email"}, "template_id"),
        ({"template_id": "t" * 40, "channel": "email"}, "template_id"),
    ],
)
def test_bad_link_is_400_naming_the_field(
    api: Api, template: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    resp = api.post("/api/v1/links", {"template_id": "AbCd", **body})
    assert resp.status_code == 400, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_parameter"
    assert err["field"] == field
    assert link_count(api) == 0  # nothing half-written


def test_url_over_2000_characters_is_refused(api: Api, template: dict[str, Any]) -> None:
    params = {f"af_sub{i}": "x" * 100 for i in range(1, 6)}
    params.update({f"deep_link_sub{i}": "y" * 150 for i in range(1, 11)})
    resp = api.post("/api/v1/links", {"template_id": "AbCd", "channel": "email", "params": params})
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["field"].startswith("params.deep_link_sub") and "2000" in err["message"]
    del params["deep_link_sub10"], params["deep_link_sub9"]
    link = create(api, channel="email", params=params)
    assert len(link["long_url"]) <= 2000


def test_bad_bodies_are_400(api: Api, template: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json"}
    for data in ("[1]", "{nope", "", "null"):
        resp = api.post("/api/v1/links", data=data, headers=headers)
        assert resp.status_code == 400, data
        assert resp.get_json()["error"]["field"] == "body"
    assert link_count(api) == 0


def test_allowlisted_subdomain_redirect_is_accepted(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="email", params={"af_r": "https://shop.example.com/p?x=1"})
    assert dict(query(link["long_url"]))["af_r"] == "https://shop.example.com/p?x=1"


# --------------------------------------------------------------------------- shortlink ids, TTL


def test_given_shortlink_id_and_duplicate_is_409(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="email", shortlink_id="Spring2026")
    assert link["short"] is True  # a shortlink id implies a short link
    assert link["short_url"] == "https://go.example.com/AbCd/Spring2026"
    resp = api.post(
        "/api/v1/links", {"template_id": "AbCd", "channel": "sms", "shortlink_id": "Spring2026"}
    )
    assert resp.status_code == 409
    assert resp.get_json()["error"] == {
        "code": "conflict",
        "message": "template 'AbCd' already has a short link 'Spring2026'",
        "field": "shortlink_id",
    }
    assert link_count(api) == 1
    # Shortlink ids are unique per template only.
    api.post("/api/v1/templates", {"template_id": "Ef12", "domain": "go.example.com"})
    other = create(api, template_id="Ef12", channel="sms", shortlink_id="Spring2026")
    assert other["short_url"] == "https://go.example.com/Ef12/Spring2026"


def test_generated_shortlink_id_is_retried_on_collision(
    api: Api, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkgen.services import links as service

    ids = iter(["Taken123", "Taken123", "Free4567"])
    monkeypatch.setattr(service, "generate_shortlink_id", lambda: next(ids))
    first = create(api, channel="sms")
    second = create(api, channel="sms")
    assert (first["shortlink_id"], second["shortlink_id"]) == ("Taken123", "Free4567")
    assert link_count(api) == 2


@pytest.mark.parametrize(
    ("ttl", "delta"),
    [
        ("1m", timedelta(minutes=1)),
        ("10m", timedelta(minutes=10)),
        ("20h", timedelta(hours=20)),
        ("14d", timedelta(days=14)),
        ("7", timedelta(days=7)),
        (30, timedelta(days=30)),
        ("365d", timedelta(days=365)),
        ("525600m", timedelta(days=365)),
    ],
)
def test_ttl_formats(api: Api, template: dict[str, Any], ttl: Any, delta: timedelta) -> None:
    link = create(api, channel="sms", ttl=ttl)
    assert when(link["expires_at"]) - when(link["created_at"]) == delta


def test_long_links_do_not_expire(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="email", ttl="1h")
    assert link["expires_at"] is None


# --------------------------------------------------------------------------- read and list


def test_get_unknown_link_is_404(api: Api, template: dict[str, Any]) -> None:
    resp = api.get("/api/v1/links/nope")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/links/" + "x" * 300).status_code == 404


def test_list_filters_and_search(api: Api, template: dict[str, Any]) -> None:
    api.post("/api/v1/templates", {"template_id": "Ef12", "domain": "go.example.com"})
    a = create(api, channel="email", campaign="spring_sale")
    b = create(api, channel="sms", campaign="spring_sale")
    c = create(api, channel="sms", campaign="winter", template_id="Ef12")
    d = create(api, channel="custom", media_source="Partner_50%", campaign="autumn")

    def ids(path: str) -> list[str]:
        resp = api.get(path)
        assert resp.status_code == 200, resp.get_json()
        return [item["id"] for item in resp.get_json()["items"]]

    assert ids("/api/v1/links") == [d["id"], c["id"], b["id"], a["id"]]  # newest first
    assert ids("/api/v1/links?campaign=spring_sale") == [b["id"], a["id"]]
    assert ids("/api/v1/links?channel=sms") == [c["id"], b["id"]]
    assert ids("/api/v1/links?template_id=Ef12") == [c["id"]]
    assert ids("/api/v1/links?campaign=spring_sale&channel=sms") == [b["id"]]
    assert ids("/api/v1/links?q=SPRING") == [b["id"], a["id"]]
    assert ids("/api/v1/links?q=50%25") == [d["id"]]  # % is literal, not a wildcard
    assert ids("/api/v1/links?q=_") == [d["id"], b["id"], a["id"]]  # _ is literal too
    assert ids(f"/api/v1/links?q={b['shortlink_id']}") == [b["id"]]
    assert ids(f"/api/v1/links?q={a['id']}") == [a["id"]]
    assert ids("/api/v1/links?campaign=none") == []


def test_list_paginates_with_a_stable_cursor(api: Api, template: dict[str, Any]) -> None:
    created = [create(api, channel="sms", campaign=f"c{i}")["id"] for i in range(5)]
    seen: list[str] = []
    path = "/api/v1/links?limit=2"
    while True:
        page = api.get(path).get_json()
        seen.extend(item["id"] for item in page["items"])
        if page["next"] is None:
            break
        # A link created mid-way lands on the first page, not in the middle of the walk.
        create(api, channel="sms", campaign="late")
        path = f"/api/v1/links?limit=2&cursor={page['next']}"
    assert seen == created[::-1]
    assert api.get("/api/v1/links?limit=0").get_json()["error"]["field"] == "limit"
    assert api.get("/api/v1/links?limit=501").status_code == 400
    for bad in ("%%%", "bm9wZQ", "MjAyNnww"):
        resp = api.get(f"/api/v1/links?cursor={bad}")
        assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "cursor"


# --------------------------------------------------------------------------- update and delete


def test_patch_changes_the_stored_params_of_a_dynamic_link(
    app: Flask, api: Api, template: dict[str, Any]
) -> None:
    link = create(api, channel="sms", campaign="spring", params={"af_sub1": "a", "af_sub2": "b"})
    before = epoch(app)
    resp = api.patch(
        f"/api/v1/links/{link['id']}",
        {"params": {"deep_link_value": "boots", "af_sub5": PLACEHOLDER}, "campaign": "summer"},
    )
    assert resp.status_code == 200, resp.get_json()
    patched = resp.get_json()
    assert patched["params"] == {"af_sub5": PLACEHOLDER, "deep_link_value": "boots"}  # replaced
    assert patched["campaign"] == "summer"
    assert patched["shortlink_id"] == link["shortlink_id"]  # same short link, new destination
    assert patched["short_url"].startswith(link["short_url"])
    assert patched["long_url"] == (
        f"https://go.example.com/AbCd?pid=SMS&c=summer&af_channel=sms"
        f"&lg_link={link_ref(link['id'])}&af_sub5={PLACEHOLDER}&deep_link_value=boots"
    )
    assert patched["expires_at"] == link["expires_at"]  # no new ttl: expiry unchanged
    assert epoch(app) > before  # the click path's caches see the change
    assert api.get(f"/api/v1/links/{link['id']}").get_json() == patched


def test_patch_merges_top_level_fields_and_revalidates(
    app: Flask, api: Api, template: dict[str, Any]
) -> None:
    link = create(api, channel="sms", campaign="spring", params={"af_sub1": "a"})
    patched = api.patch(f"/api/v1/links/{link['id']}", {"ttl": "2h", "renew_ttl": False})
    body = patched.get_json()
    assert body["params"] == {"af_sub1": "a"} and body["campaign"] == "spring"
    assert body["ttl"] == "2h" and body["renew_ttl"] is False
    assert when(body["expires_at"]) - when(body["updated_at"]) <= timedelta(hours=2)
    assert when(body["expires_at"]) - when(body["updated_at"]) > timedelta(hours=1, minutes=59)
    cleared = api.patch(f"/api/v1/links/{link['id']}", {"campaign": None}).get_json()
    assert cleared["campaign"] is None and "c=" not in cleared["long_url"]
    before = epoch(app)
    for body_, field in [
        ({"params": {"af_r": "https://evil.com/"}}, "params.af_r"),
        ({"channel": "custom", "media_source": ""}, "media_source"),
        ({"ttl": "400d"}, "ttl"),
        ({"template_id": "Ef12"}, "template_id"),
        ({"shortlink_id": "Other1"}, "shortlink_id"),
        ({"short": False}, "short"),
        ({"colour": "red"}, "colour"),
    ]:
        resp = api.patch(f"/api/v1/links/{link['id']}", body_)
        assert resp.status_code == 400, (body_, resp.get_json())
        assert resp.get_json()["error"]["field"] == field
    assert epoch(app) == before
    assert api.get(f"/api/v1/links/{link['id']}").get_json() == cleared
    # Sending the unchangeable fields with their current values is fine.
    same = {"template_id": "AbCd", "shortlink_id": link["shortlink_id"], "short": True}
    assert api.patch(f"/api/v1/links/{link['id']}", same).status_code == 200
    assert api.patch("/api/v1/links/nope", {"campaign": "x"}).status_code == 404


def test_patch_to_push_applies_the_retargeting_preset(api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="email")
    patched = api.patch(f"/api/v1/links/{link['id']}", {"channel": "push"}).get_json()
    assert patched["params"]["is_retargeting"] == "true"
    assert patched["media_source"] == "Email"  # the stored pid is kept


def test_delete_link(app: Flask, api: Api, template: dict[str, Any]) -> None:
    link = create(api, channel="sms")
    before = epoch(app)
    resp = api.delete(f"/api/v1/links/{link['id']}")
    assert resp.status_code == 204 and resp.data == b""
    assert epoch(app) > before
    assert api.get(f"/api/v1/links/{link['id']}").status_code == 404
    assert api.delete(f"/api/v1/links/{link['id']}").status_code == 404
    # The freed shortlink id can be used again.
    create(api, channel="sms", shortlink_id=link["shortlink_id"])


def test_create_bumps_the_cache_epoch(app: Flask, api: Api, template: dict[str, Any]) -> None:
    before = epoch(app)
    create(api, channel="sms")
    assert epoch(app) == before + 1


def test_created_by_names_the_api_key(api: Api, template: dict[str, Any]) -> None:
    assert create(api, channel="sms")["created_by"] == "api-key:tests"


def test_read_only_key_cannot_write_links(
    app: Flask, client: Any, api: Api, template: dict[str, Any]
) -> None:
    from linkgen.services.accounts import create_api_key

    link = create(api, channel="sms")
    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "reader", scope="read")
    ro = Api(client, raw)
    assert ro.get(f"/api/v1/links/{link['id']}").status_code == 200
    assert ro.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms"}).status_code == 403
    assert ro.patch(f"/api/v1/links/{link['id']}", {"campaign": "x"}).status_code == 403
    assert ro.delete(f"/api/v1/links/{link['id']}").status_code == 403
    assert client.get("/api/v1/links").status_code == 401


def test_nul_bytes_and_odd_ids_are_refused_not_500(api: Api, template: dict[str, Any]) -> None:
    assert api.get("/api/v1/links/ab%00cd").status_code == 404
    assert api.delete("/api/v1/links/ab%00cd").status_code == 404
    assert api.get("/api/v1/links/ab%00cd/qr.png").status_code == 404
    resp = api.get("/api/v1/links?campaign=a%00b")
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "campaign"
    resp = api.post("/api/v1/links", {"template_id": "Ab\x00d", "channel": "sms"})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "template_id"
    resp = api.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms", "campaign": "a\x00"})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "campaign"
    resp = api.post("/api/v1/links/qr.zip", {"ids": ["a\x00b"]})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "ids[0]"


def test_a_revoked_key_stops_working_at_once(app: Flask, client: Any) -> None:
    from linkgen.services.accounts import create_api_key, revoke_api_key

    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "short-lived")
    caller = Api(client, raw)
    assert caller.post("/api/v1/links", {"template_id": "X"}).status_code == 400  # remembered
    with app.extensions["linkgen"].db.session() as session:
        revoke_api_key(session, "short-lived")
    assert caller.get("/api/v1/links").status_code == 401
    assert caller.post("/api/v1/links", {"template_id": "X"}).status_code == 401
    assert Api(client, "lg_unknown").get("/api/v1/links").status_code == 401


def test_a_created_link_is_answered_as_jsonify_would_and_read_back_the_same(
    app: Flask, api: Api, template: dict[str, Any]
) -> None:
    from flask import jsonify

    resp = api.post(
        "/api/v1/links",
        {
            "template_id": "AbCd",
            "channel": "sms",
            "campaign": "été 日本",
            "params": {"k": "\u2028"},
        },
    )
    assert resp.status_code == 201 and resp.mimetype == "application/json"
    with app.test_request_context():
        assert resp.get_data() == jsonify(resp.get_json()).get_data()
    assert resp.get_data().isascii()
    assert api.get(f"/api/v1/links/{resp.get_json()['id']}").get_json() == resp.get_json()
