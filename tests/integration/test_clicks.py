"""The link domain: routing per platform, overrides, expiry, unknown links, caches, durability."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from linkgen.clicks.recorder import ClickRecorder
from linkgen.storage.epochs import bump_epoch
from linkgen.storage.models import Link
from tests.conftest import Api
from tests.integration.clicksetup import (
    ANDROID,
    ANDROID_APP,
    APP_STORE,
    DESKTOP,
    FALLBACK,
    GOOGLEBOT,
    HOST,
    IPHONE,
    MAC,
    TEMPLATE,
    Setup,
    make_setup,
)

LONG = f"/{TEMPLATE}?pid=Email&c=spring&af_channel=email"


@pytest.fixture
def s(app: Flask, client: FlaskClient, api: Api) -> Setup:
    return make_setup(app, client, api)


def _location(resp: Any) -> str:
    assert resp.status_code == 302, (resp.status_code, resp.get_data(as_text=True)[:300])
    return str(resp.headers["Location"])


# -- routing per platform ----------------------------------------------------------------------

ROUTES = [
    # (user agent, extra query, expected outcome, expected target prefix)
    (IPHONE, "", "app_store", APP_STORE),
    (IPHONE, "&af_r=https://example.com/r", "af_r", "https://example.com/r"),
    (
        IPHONE,
        "&af_r=https://example.com/r&af_ios_url=https://ios.example.com/i",
        "ios_url",
        "https://ios.example.com/i",
    ),
    (ANDROID, "", "google_play", "https://play.google.com/store/apps/details?id="),
    (ANDROID, "&af_r=https://example.com/r", "af_r", "https://example.com/r"),
    (
        ANDROID,
        "&af_r=https://example.com/r&af_android_url=https://droid.example.com/a",
        "android_url",
        "https://droid.example.com/a",
    ),
    (ANDROID, "&af_dp=shop://product/42", "intent", "intent://product/42?pid=Email&c=spring&"),
    (DESKTOP, "", "web_fallback", FALLBACK),
    (MAC, "", "web_fallback", FALLBACK),
    (DESKTOP, "&af_r=https://example.com/r", "af_r", "https://example.com/r"),
    (
        DESKTOP,
        "&af_r=https://example.com/r&af_web_dp=https://web.example.com/w",
        "web_dp",
        "https://web.example.com/w",
    ),
    # A desktop never gets the mobile-only parameters.
    (DESKTOP, "&af_ios_url=https://ios.example.com/i", "web_fallback", FALLBACK),
    # Crawlers are routed by the device they claim (Googlebot's is an Android phone).
    (GOOGLEBOT, "", "google_play", "https://play.google.com/"),
]


@pytest.mark.parametrize(("ua", "extra", "outcome", "target"), ROUTES)
def test_long_link_routes_by_platform(
    s: Setup, ua: str, extra: str, outcome: str, target: str
) -> None:
    location = _location(s.click(LONG + extra, ua))
    assert location.startswith(target)
    [row] = s.clicks()
    assert row.outcome == outcome
    assert row.template_id == TEMPLATE and row.link_id is None
    assert row.media_source == "Email" and row.campaign == "spring" and row.channel == "email"


def test_google_play_referrer_carries_the_click_id(s: Setup) -> None:
    location = _location(s.click(LONG, ANDROID))
    [row] = s.clicks()
    query = parse_qs(urlsplit(location).query)
    assert query["id"] == [ANDROID_APP]
    referrer = parse_qs(query["referrer"][0])
    assert referrer["af_tranid"] == [row.click_id]
    assert referrer["pid"] == ["Email"] and referrer["c"] == ["spring"]
    assert row.platform == "android" and row.app_id == ANDROID_APP and row.os_version == "14"


def test_intent_url_falls_back_to_google_play(s: Setup) -> None:
    location = _location(s.click(LONG + "&af_dp=shop://product/42", ANDROID))
    assert f";package={ANDROID_APP};" in location
    fallback = unquote(location.split("S.browser_fallback_url=")[1].split(";")[0])
    assert fallback.startswith(f"https://play.google.com/store/apps/details?id={ANDROID_APP}")


def test_no_intent_without_app_links(app: Flask, client: FlaskClient, api: Api) -> None:
    s = make_setup(app, client, api, app_links=False)
    location = _location(s.click(LONG + "&af_dp=shop://product/42", ANDROID))
    assert location.startswith("https://play.google.com/")


@pytest.mark.parametrize(("ua", "app_links"), [(IPHONE, True), (ANDROID, False)])
def test_force_deeplink_serves_a_page_trying_the_scheme_first(
    app: Flask, client: FlaskClient, api: Api, ua: str, app_links: bool
) -> None:
    s = make_setup(app, client, api, app_links=app_links)
    resp = s.click(LONG + "&af_dp=shop://product/42&af_force_deeplink=true", ua)
    [row] = s.clicks()
    if ua == ANDROID:  # an intent whatever App Links say: Chrome opens it from a redirect
        assert _location(resp).startswith("intent://product/42?pid=Email&c=spring&")
        assert row.outcome == "intent"
        return
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert (
        f'href="shop://product/42?pid=Email&amp;c=spring&amp;af_channel=email&amp;af_tranid={row.click_id}"'
        in page
    )
    assert "apps.apple.com" in page
    assert row.outcome == "deeplink_scheme"


def test_force_deeplink_on_android_with_app_links_is_an_intent(s: Setup) -> None:
    location = _location(s.click(LONG + "&af_dp=shop://p&af_force_deeplink=true", ANDROID))
    assert location.startswith("intent://p?pid=Email&c=spring&af_channel=email&af_tranid=")
    assert "#Intent;scheme=shop;" in location


def test_force_deeplink_ignored_on_desktop_and_for_foreign_schemes(s: Setup) -> None:
    assert _location(s.click(LONG + "&af_dp=shop://p&af_force_deeplink=true", DESKTOP)) == FALLBACK
    # A foreign af_dp is never opened: the template's own scheme is tried instead.
    resp = s.click(LONG + "&af_dp=evil://p&af_force_deeplink=true", IPHONE)
    page = resp.get_data(as_text=True)
    assert "evil" not in page and 'href="shop://?pid=Email' in page


def test_no_target_shows_a_page(app: Flask, client: FlaskClient, api: Api) -> None:
    s = make_setup(app, client, api, web_fallback_url=None)
    resp = s.click(LONG, DESKTOP)
    assert resp.status_code == 200 and "Location" not in resp.headers
    assert "phone" in resp.get_data(as_text=True)
    assert [c.outcome for c in s.clicks()] == ["no_target"]


def test_click_row_records_the_request(s: Setup) -> None:
    query = (
        "&af_sub1=a%20b&advertising_id=38400000-8CF0-11BD-B23E-10B96E40000D"
        "&af_sub5=ct-123&is_retargeting=true&af_qr=true&utm_source=newsletter"
    )
    s.click(LONG + query, ANDROID, headers={"Referer": "https://mail.example.org/"})
    [row] = s.clicks()
    assert row.click_id and row.ts.tzinfo is not None
    assert row.params["af_sub1"] == "a b" and row.params["utm_source"] == "newsletter"
    assert row.device_id == "38400000-8cf0-11bd-b23e-10b96e40000d"
    assert row.customer_user_id == "ct-123"
    assert row.is_retargeting and row.is_qr and not row.is_bot
    assert row.ip == "203.0.113.9" and row.user_agent == ANDROID
    assert row.referrer == "https://mail.example.org/"
    assert row.attributable and row.not_attributable_reason is None


@pytest.mark.parametrize(
    ("query", "media_source", "reason"),
    [
        ("?c=spring", None, "missing_pid"),
        ("?pid=bad/source", "af_invalid_param", "invalid_pid"),
        ("?pid=Email", "Email", None),
    ],
)
def test_pid_decides_attributability(
    s: Setup, query: str, media_source: str | None, reason: str | None
) -> None:
    _location(s.click(f"/{TEMPLATE}{query}", IPHONE))
    [row] = s.clicks()
    assert row.media_source == media_source
    assert row.not_attributable_reason == reason
    assert row.attributable is (reason is None)


def test_crawler_click_is_recorded_as_a_bot(s: Setup) -> None:
    s.click(LONG, GOOGLEBOT)
    [row] = s.clicks()
    assert row.is_bot and row.bot_reason == "crawler"
    assert not row.attributable and row.not_attributable_reason == "bot"
    assert s.counters() == {"clicks": 1, "human_clicks": 0, "bot_clicks": 1}


# -- short links and overrides -------------------------------------------------------------------


def test_short_link_uses_stored_parameters(s: Setup) -> None:
    path, link = s.short_path(params={"af_r": "https://example.com/stored", "af_sub1": "x"})
    assert _location(s.click(path, IPHONE)) == "https://example.com/stored"
    [row] = s.clicks()
    assert row.link_id == link["id"]
    assert row.media_source == "SMS" and row.campaign == "spring" and row.channel == "sms"
    assert row.params["af_sub1"] == "x" and row.params["pid"] == "SMS"


def test_short_link_query_overrides_stored_parameters(s: Setup) -> None:
    path, _ = s.short_path(
        params={
            "af_r": "https://example.com/stored",
            "af_sub1": "x",
            "af_sub5": "{{Profile.objectId}}",
        }
    )
    location = _location(
        s.click(path + "?af_r=https://example.com/override&af_sub1=y&af_sub5=ct%2D42&extra=1", MAC)
    )
    assert location == "https://example.com/override"
    [row] = s.clicks()
    assert row.params["af_sub1"] == "y" and row.params["extra"] == "1"
    # The CleverTap placeholder arrives substituted, and becomes the customer user id.
    assert row.params["af_sub5"] == "ct-42" and row.customer_user_id == "ct-42"


def test_unsubstituted_placeholder_is_no_customer_user_id(s: Setup) -> None:
    path, _ = s.short_path(params={"af_sub5": "{{Profile.objectId}}"})
    s.click(path + "?af_sub5={{Profile.objectId}}", IPHONE)
    [row] = s.clicks()
    assert row.customer_user_id is None


def test_long_link_with_hand_built_pid(s: Setup) -> None:
    s.click(f"/{TEMPLATE}?pid=my_newsletter&c=x", IPHONE)
    [row] = s.clicks()
    assert row.media_source == "my_newsletter" and row.attributable


# -- expiry and TTL -------------------------------------------------------------------------------


def _set_expiry(s: Setup, link_id: str, when: datetime) -> None:
    with s.app.extensions["linkgen"].db.session() as session:
        session.execute(update(Link).where(Link.id == link_id).values(expires_at=when))
        bump_epoch(session)


def _expires_at(s: Setup, link_id: str) -> datetime:
    with s.app.extensions["linkgen"].db.sessions() as session:
        link = session.get(Link, link_id)
        assert link is not None and link.expires_at is not None
        return link.expires_at


def test_expired_link_redirects_like_the_base_link_and_is_not_attributable(s: Setup) -> None:
    path, link = s.short_path(params={"af_r": "https://example.com/stored"})
    _set_expiry(s, link["id"], datetime.now(UTC) - timedelta(minutes=1))
    assert _location(s.click(path, IPHONE)) == APP_STORE  # stored af_r no longer applies
    assert _location(s.click(path, DESKTOP)) == FALLBACK
    rows = s.clicks()
    assert [r.not_attributable_reason for r in rows] == ["expired_link", "expired_link"]
    assert not any(r.attributable for r in rows)
    assert all(r.link_id == link["id"] for r in rows)
    # An expired link is not renewed by its clicks.
    assert _expires_at(s, link["id"]) < datetime.now(UTC)


def test_click_renews_the_ttl(s: Setup) -> None:
    path, link = s.short_path(ttl="2h")
    soon = datetime.now(UTC) + timedelta(minutes=5)
    _set_expiry(s, link["id"], soon)
    s.click(path, IPHONE)
    renewed = _expires_at(s, link["id"])
    assert renewed > datetime.now(UTC) + timedelta(minutes=110)
    assert [r.attributable for r in s.clicks()] == [True]


def test_no_renewal_when_renew_ttl_is_off(s: Setup) -> None:
    path, link = s.short_path(ttl="2h")
    soon = datetime.now(UTC) + timedelta(minutes=5)
    with s.app.extensions["linkgen"].db.session() as session:
        session.execute(
            update(Link).where(Link.id == link["id"]).values(expires_at=soon, renew_ttl=False)
        )
        bump_epoch(session)
    s.click(path, IPHONE)
    assert abs((_expires_at(s, link["id"]) - soon).total_seconds()) < 1


def test_a_qr_link_without_ttl_never_gets_an_expiry(s: Setup) -> None:
    path, link = s.short_path(channel="qr")
    assert link["expires_at"] is None
    s.click(path, IPHONE)
    s.click(path, ANDROID)
    with s.app.extensions["linkgen"].db.sessions() as session:
        stored = session.get(Link, link["id"])
        assert stored is not None and stored.expires_at is None and stored.ttl_seconds is None
    assert [r.attributable for r in s.clicks()] == [True, True]
    assert [r.link_id for r in s.clicks()] == [link["id"], link["id"]]


# -- unknown links, wrong host, HEAD -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/ZZZZ?pid=Email", HOST),  # unknown template
        ("/ZZZZ/nope1234", HOST),
        (f"/{TEMPLATE}?pid=Email", "evil.example.net"),  # the template lives on another host
        (f"/{TEMPLATE}/nope1234", "evil.example.net"),
        (f"/{TEMPLATE}/a/b", HOST),
    ],
)
def test_unknown_links_get_a_404_page_and_no_click(s: Setup, path: str, host: str) -> None:
    resp = s.click(path, IPHONE, host=host)
    assert resp.status_code == 404
    assert "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    assert s.clicks() == []


def test_head_never_records(s: Setup) -> None:
    path, _ = s.short_path()
    for p in (path, LONG):
        resp = s.click(p, IPHONE, method="HEAD")
        assert resp.status_code == 302
    assert s.clicks() == []
    assert s.counters()["clicks"] == 0


# -- cache invalidation ---------------------------------------------------------------------------


def test_editing_a_link_changes_the_next_click(s: Setup) -> None:
    path, link = s.short_path(params={"af_r": "https://example.com/one"})
    assert _location(s.click(path, IPHONE)) == "https://example.com/one"
    r = s.api.patch(f"/api/v1/links/{link['id']}", {"params": {"af_r": "https://example.com/two"}})
    assert r.status_code == 200, r.get_json()
    assert _location(s.click(path, IPHONE)) == "https://example.com/two"


def test_editing_a_template_changes_the_next_click(s: Setup) -> None:
    assert _location(s.click(LONG, DESKTOP)) == FALLBACK
    r = s.api.patch(f"/api/v1/templates/{TEMPLATE}", {"web_fallback_url": "https://example.com/n"})
    assert r.status_code == 200, r.get_json()
    assert _location(s.click(LONG, DESKTOP)) == "https://example.com/n"


@pytest.mark.parametrize(
    "path",
    [f"/{TEMPLATE}/nope1234", f"/{TEMPLATE}/nope1234?af_r=https://evil.example.net/x"],
)
def test_unknown_short_link_goes_to_the_templates_web_fallback_and_no_click(
    s: Setup, path: str
) -> None:
    # The brand's own page, not linkgen's: nothing of the click's query is followed.
    for agent in (IPHONE, DESKTOP):
        resp = s.click(path, agent)
        assert _location(resp) == FALLBACK
        assert resp.headers["Cache-Control"] == "no-store"
    assert s.clicks() == []
    assert s.counters()["clicks"] == 0


def test_unknown_short_link_goes_to_the_templates_not_found_url(s: Setup) -> None:
    r = s.api.patch(
        f"/api/v1/templates/{TEMPLATE}", {"not_found_url": "https://www.example.com/oops"}
    )
    assert r.status_code == 200 and r.get_json()["not_found_url"] == "https://www.example.com/oops"
    assert _location(s.click(f"/{TEMPLATE}/nope1234", IPHONE)) == "https://www.example.com/oops"
    assert _location(s.click(LONG, DESKTOP)) == FALLBACK  # the template's own links unchanged
    r = s.api.patch(f"/api/v1/templates/{TEMPLATE}", {"not_found_url": None})
    assert r.status_code == 200 and r.get_json()["not_found_url"] is None
    assert _location(s.click(f"/{TEMPLATE}/nope1234", IPHONE)) == FALLBACK


def test_unknown_short_link_of_a_template_without_a_web_page_is_a_404(s: Setup) -> None:
    r = s.api.patch(f"/api/v1/templates/{TEMPLATE}", {"web_fallback_url": None})
    assert r.status_code == 200, r.get_json()
    resp = s.click(f"/{TEMPLATE}/nope1234", IPHONE)
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert s.clicks() == []


@pytest.mark.parametrize(
    ("value", "message"),
    [("http://example.com/", "https"), ("javascript:alert(1)", "https"), (7, "string")],
)
def test_not_found_url_must_be_https(s: Setup, value: Any, message: str) -> None:
    r = s.api.patch(f"/api/v1/templates/{TEMPLATE}", {"not_found_url": value})
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert error["field"] == "not_found_url" and message in error["message"]


def test_deleted_link_goes_to_the_not_found_page_at_once(s: Setup) -> None:
    path, link = s.short_path()
    _location(s.click(path, IPHONE))
    assert s.api.delete(f"/api/v1/links/{link['id']}").status_code == 204
    assert _location(s.click(path, IPHONE)) == FALLBACK
    assert len(s.clicks()) == 1  # only the click before the delete


def test_another_process_sees_an_edit_after_its_epoch_check(s: Setup, make_app: Any) -> None:
    other = make_app()
    other_client = other.test_client()
    cache = other.extensions["linkgen"].route_cache
    path, link = s.short_path(params={"af_r": "https://example.com/one"})
    assert _location(s.click(path, IPHONE, client=other_client)) == "https://example.com/one"
    cache.stop()  # no background poll: the test drives the check itself
    cache.check_epoch()
    r = s.api.patch(f"/api/v1/links/{link['id']}", {"params": {"af_r": "https://example.com/two"}})
    assert r.status_code == 200
    assert cache.check_epoch() is True
    assert _location(s.click(path, IPHONE, client=other_client)) == "https://example.com/two"


# -- durability and counters ----------------------------------------------------------------------


def test_a_failed_commit_answers_503_and_never_a_redirect(
    s: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder: ClickRecorder = s.app.extensions["linkgen"].click_recorder

    def broken(items: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(recorder, "_store", broken)
    resp = s.click(LONG, IPHONE)
    assert resp.status_code == 503
    assert "Location" not in resp.headers
    assert resp.headers["Retry-After"] == "1"
    monkeypatch.undo()
    assert s.clicks() == []
    assert _location(s.click(LONG, IPHONE)) == APP_STORE  # the writer recovers


def test_one_bad_click_does_not_fail_its_batch(s: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder: ClickRecorder = s.app.extensions["linkgen"].click_recorder
    real = recorder._store

    def picky(items: Any) -> None:
        if any(i.row["params"].get("af_sub1") == "poison" for i in items):
            raise RuntimeError("bad row")
        real(items)

    monkeypatch.setattr(recorder, "_store", picky)
    results: dict[str, int] = {}

    def one(tag: str) -> None:
        client = s.app.test_client()
        results[tag] = s.click(f"{LONG}&af_sub1={tag}", IPHONE, client=client).status_code

    threads = [threading.Thread(target=one, args=(t,)) for t in ("ok1", "poison", "ok2", "ok3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"ok1": 302, "poison": 503, "ok2": 302, "ok3": 302}
    assert sorted(c.params["af_sub1"] for c in s.clicks()) == ["ok1", "ok2", "ok3"]


def test_concurrent_clicks_are_all_recorded_and_counted(s: Setup) -> None:
    path, _ = s.short_path()
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = s.app.test_client()
        for i in range(20):
            code = s.click(f"{path}?af_sub1={n}-{i}", IPHONE, client=client).status_code
            with lock:
                statuses.append(code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [302] * 200
    rows = s.clicks()
    assert len(rows) == 200 and len({r.click_id for r in rows}) == 200
    assert s.counters() == {"clicks": 200, "human_clicks": 200, "bot_clicks": 0}


def test_counters_equal_click_rows(s: Setup) -> None:
    path, _ = s.short_path()
    for ua in (IPHONE, ANDROID, DESKTOP, GOOGLEBOT, IPHONE):
        s.click(path, ua)
    s.click(LONG, MAC)
    rows = s.clicks()
    assert s.counters() == {
        "clicks": len(rows),
        "human_clicks": sum(not r.is_bot for r in rows),
        "bot_clicks": sum(r.is_bot for r in rows),
    }
    assert s.counters()["bot_clicks"] == 1


def test_host_with_port_matches_the_template(s: Setup) -> None:
    assert _location(s.click(LONG, IPHONE, host=f"{HOST}:443")) == APP_STORE
    assert len(s.clicks()) == 1
