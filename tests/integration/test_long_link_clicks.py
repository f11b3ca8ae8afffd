"""Every URL linkgen made for a link is that link's click (SQLite and PostgreSQL).

Clicks go through the real click path (the WSGI handler in front of Flask); the installs and
events through the SDK endpoints; counters, stats, attribution and the postback outbox are read
back as the UI and the API show them.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, update

from linkgen.domain.links import link_ref
from linkgen.services.link_export import link_qr_data
from linkgen.storage.models import Click, Link
from linkgen.web.ui.stats import Totals, totals_by_link
from tests.conftest import Api
from tests.integration.clickfactory import (
    CLIENT_IP,
    TEMPLATE,
    Sdk,
    click_handler,
    configure_clevertap,
    iso,
    make_sdk,
    new_device,
    postbacks,
    utc_now,
)

HOST = "go.example.com"
OTHER_TEMPLATE = "WxYz"
PLACEHOLDER = "{{Profile.objectId}}"
CUID = "__g9f8e7d6c5b4a"  # a CleverTap ID as CleverTap substitutes it
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.113 Mobile Safari/537.36"
)
APPENDED = "&utm_source=clevertap&utm_medium=email&utm_campaign=spring%20sale"


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    sdk = make_sdk(app, client, api)
    # Clicks happen an hour before the launches (a launch seconds after its click looks like
    # click injection).
    click_handler(app).clock = lambda: time.time() - 3600
    resp = api.post(
        "/api/v1/templates",
        {"template_id": OTHER_TEMPLATE, "domain": HOST, "redirect_allowlist": ["example.com"]},
    )
    assert resp.status_code == 201, resp.get_json()
    return sdk


def make_link(sdk: Sdk, **body: Any) -> dict[str, Any]:
    payload = {
        "template_id": TEMPLATE,
        "channel": "email",
        "campaign": "spring_sale",
        "params": {"af_sub5": PLACEHOLDER, "deep_link_value": "shoes"},
        **body,
    }
    resp = sdk.api.post("/api/v1/links", payload)
    assert resp.status_code == 201, resp.get_json()
    link: dict[str, Any] = resp.get_json()
    return link


def sent(url: str, cuid: str = CUID) -> str:
    """The URL as a recipient clicks it: placeholder substituted, utm_* appended, path only."""
    assert url.startswith(f"https://{HOST}/")
    return url.replace(PLACEHOLDER, cuid)[len(f"https://{HOST}") :] + APPENDED


def click(sdk: Sdk, path: str) -> Click:
    """One click through the click path; returns its stored row."""
    resp = sdk.client.get(
        path,
        headers={"Host": HOST, "User-Agent": ANDROID_CHROME},
        environ_base={"REMOTE_ADDR": CLIENT_IP},
    )
    assert resp.status_code == 302, resp.data
    with sdk.app.extensions["linkgen"].db.sessions() as session:
        row = session.scalars(select(Click).order_by(Click.id.desc()).limit(1)).one()
    return row


def link_totals(sdk: Sdk, link_id: str) -> Totals:
    """The totals the link's page and the links list show."""
    with sdk.app.extensions["linkgen"].db.sessions() as session:
        return totals_by_link(session, [link_id]).get(link_id, Totals())


def ref_of(link: dict[str, Any]) -> str:
    found = re.search(r"[?&]lg_link=([0-9A-Za-z]+)", link["long_url"])
    assert found is not None, link["long_url"]
    return found.group(1)


def test_a_substituted_long_link_with_utm_params_counts_for_its_link(sdk: Sdk) -> None:
    configure_clevertap(sdk.app, default_postbacks="this_partner")
    link = make_link(sdk)
    assert link["short_url"] is None  # email links are long
    row = click(sdk, sent(link["long_url"]))
    assert row.link_id == link["id"] and row.template_id == TEMPLATE
    assert row.attributable and row.customer_user_id == CUID
    assert row.params["af_sub5"] == CUID and row.params["utm_source"] == "clevertap"
    assert "lg_link" not in row.params  # it names the link; it is not a click parameter

    device = new_device()
    got = sdk.launch(device, customer_user_id=CUID, ts=iso(utc_now()))
    assert got.status_code == 200, got.get_json()
    attribution = got.get_json()["attribution"]
    assert attribution["match_type"] == "customer_user_id"
    assert attribution["link_id"] == link["id"]
    assert attribution["click_id"] == row.click_id
    # "This partner only": a link made here is made for CleverTap, so the install is sent.
    (install,) = postbacks(sdk.app)
    assert (install.kind, install.status, install.reason) == ("install", "queued", None)
    assert install.record is not None
    # An event under a "this partner only" mapping follows its install.
    resp = sdk.event(
        device_id=device,
        customer_user_id=CUID,
        event_name="af_level",
        event_values={"lvl": 2},
    )
    assert resp.status_code in (200, 201), resp.get_json()
    last = postbacks(sdk.app)[-1]
    assert (last.kind, last.status, last.reason) == ("event", "queued", None)

    stats = sdk.stats("link")
    assert stats[link["id"]]["clicks"] == 1 and stats[link["id"]]["installs"] == 1
    assert None not in stats  # nothing left as a template-only click
    totals = link_totals(sdk, link["id"])
    assert (totals.clicks, totals.human_clicks, totals.installs) == (1, 1, 1)


def test_every_url_made_for_a_link_is_its_click(sdk: Sdk) -> None:
    long_link = make_link(sdk)
    short_link = make_link(sdk, channel="sms")
    qr_long = make_link(sdk, channel="qr", short=False)
    with sdk.app.extensions["linkgen"].db.sessions() as session:
        scheme_for = sdk.app.extensions["linkgen"].settings.scheme_for
        qr_data = link_qr_data(session, qr_long["id"], scheme_for=scheme_for)
    href = re.search(r"href=[\"']([^\"']+)", long_link["clevertap"]["email_html"])
    assert href is not None
    urls = [
        (long_link, long_link["long_url"]),
        (long_link, long_link["clevertap"]["url"]),
        (long_link, long_link["clevertap"]["push_payload"]["wzrk_dl"]),
        (long_link, long_link["clevertap"]["sms_text"]),
        (long_link, html.unescape(href.group(1))),
        (short_link, short_link["short_url"]),
        (short_link, short_link["long_url"]),  # a short link's long URL names it too
        (qr_long, qr_data),
    ]
    for link, url in urls:
        row = click(sdk, sent(url))
        assert row.link_id == link["id"], url
    assert click(sdk, sent(qr_data)).is_qr
    stats = sdk.stats("link")
    assert stats[long_link["id"]]["clicks"] == 5
    assert stats[short_link["id"]]["clicks"] == 2
    assert stats[qr_long["id"]]["clicks"] == 2
    assert link_totals(sdk, long_link["id"]).clicks == 5


def test_a_ref_of_another_templates_link_is_not_credited(sdk: Sdk) -> None:
    configure_clevertap(sdk.app, default_postbacks="this_partner")
    ours = make_link(sdk)
    theirs = make_link(sdk, template_id=OTHER_TEMPLATE)
    tampered = sent(ours["long_url"]).replace(ref_of(ours), ref_of(theirs))
    row = click(sdk, tampered)
    assert row.link_id is None and row.template_id == TEMPLATE  # a plain template click
    # The same happens to a value that names no link, or is not a ref at all.
    unknown = link_ref(secrets.token_hex(16))
    assert unknown is not None
    for n, value in enumerate((unknown, "garbage", "")):
        # Other recipients: one recipient's four distinct URLs within seconds are a scanner's.
        row = click(sdk, sent(ours["long_url"], f"{CUID}{n}").replace(ref_of(ours), value))
        assert row.link_id is None

    stats = sdk.stats("link")
    assert theirs["id"] not in stats and ours["id"] not in stats
    assert link_totals(sdk, theirs["id"]).clicks == 0
    # An install won by the tampered click is no linkgen link's: "this partner only" skips it.
    got = sdk.launch(customer_user_id=CUID, ts=iso(utc_now()))
    assert got.get_json()["attribution"]["link_id"] is None
    assert got.get_json()["attribution"]["media_source"] == "Email"
    (install,) = postbacks(sdk.app)
    assert (install.status, install.reason) == ("skipped", "not_this_partner")


def test_a_hand_built_long_link_is_a_template_click(sdk: Sdk) -> None:
    make_link(sdk)
    row = click(sdk, f"/{TEMPLATE}?pid=Email&c=spring_sale&af_channel=email&af_sub5={CUID}")
    assert row.link_id is None and row.template_id == TEMPLATE
    assert (row.media_source, row.campaign, row.attributable) == ("Email", "spring_sale", True)
    assert sdk.stats("link")[None]["clicks"] == 1
    assert sdk.stats("campaign")["spring_sale"]["clicks"] == 1


def test_a_deleted_links_long_url_still_redirects_as_a_template_click(sdk: Sdk) -> None:
    link = make_link(sdk)
    assert click(sdk, sent(link["long_url"])).link_id == link["id"]  # cached now
    assert sdk.api.delete(f"/api/v1/links/{link['id']}").status_code == 204
    row = click(sdk, sent(link["long_url"]))
    assert row.link_id is None and row.campaign == "spring_sale" and row.attributable


def test_a_short_links_long_url_outlives_its_short_url(sdk: Sdk) -> None:
    link = make_link(sdk, channel="sms")
    with sdk.app.extensions["linkgen"].db.session() as session:
        session.execute(
            update(Link)
            .where(Link.id == link["id"])
            .values(expires_at=utc_now() - timedelta(days=1))
        )
    sdk.app.extensions["linkgen"].route_cache.clear()
    expired = click(sdk, sent(link["short_url"]))
    assert expired.link_id == link["id"] and not expired.attributable
    row = click(sdk, sent(link["long_url"]))
    assert row.link_id == link["id"] and row.attributable


def test_a_cached_link_costs_no_query(sdk: Sdk) -> None:
    link = make_link(sdk)
    click(sdk, sent(link["long_url"]))  # loads the link into the route cache
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = sdk.app.extensions["linkgen"].db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        resp = sdk.client.get(
            sent(link["long_url"], cuid="__other"),
            headers={"Host": HOST, "User-Agent": ANDROID_CHROME},
            environ_base={"REMOTE_ADDR": CLIENT_IP},
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert resp.status_code == 302
    assert not [s for s in statements if "links" in s], statements
    assert sdk.stats("link")[link["id"]]["clicks"] == 2
