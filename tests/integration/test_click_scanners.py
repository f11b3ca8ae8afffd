"""Scanners told from crowds on the real click path (SQLite and PostgreSQL).

A scanner opens the links of one message (one recipient's links) within seconds: from its third
distinct link on it is `scanner:message`, and the clicks it made before are re-flagged in the
same group commit, their counters moved from people to bots. A crowd (many recipients behind
one carrier address with one Safari user agent) is people.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from linkgen.clicks.recorder import ClickRecorder, Ticket
from linkgen.storage.models import Click
from tests.conftest import Api
from tests.integration.clickfactory import (
    TEMPLATE,
    Sdk,
    click_handler,
    iso,
    make_sdk,
    new_device,
    utc_now,
)
from tests.integration.clicksetup import ANDROID, HOST, IPHONE

PLACEHOLDER = "{{Profile.objectId}}"
# What Safe Links and most scanners send: an ordinary desktop Chrome.
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SCANNER_IP = "52.160.0.10"
NAT_IP = "100.64.0.1"
LINKS = ("hero", "shoes", "bags", "sale", "footer")


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    sdk = make_sdk(app, client, api)
    # Clicks an hour before the launches (a launch seconds after its click looks injected).
    click_handler(app).clock = lambda: time.time() - 3600
    return sdk


def email(sdk: Sdk, campaign: str = "spring_sale") -> list[str]:
    """The long URLs of one email's five links, placeholders unfilled (as CleverTap gets them)."""
    urls = []
    for value in LINKS:
        resp = sdk.api.post(
            "/api/v1/links",
            {
                "template_id": TEMPLATE,
                "channel": "email",
                "campaign": campaign,
                "params": {"af_sub5": PLACEHOLDER, "deep_link_value": value},
            },
        )
        assert resp.status_code == 201, resp.get_json()
        urls.append(resp.get_json()["long_url"].replace(f"https://{HOST}", ""))
    return urls


def open_link(
    sdk: Sdk, url: str, recipient: str, *, ip: str, ua: str, client: FlaskClient | None = None
) -> None:
    resp = (client or sdk.client).get(
        url.replace(PLACEHOLDER, recipient),
        headers={"Host": HOST, "User-Agent": ua},
        environ_base={"REMOTE_ADDR": ip},
    )
    assert resp.status_code in (200, 302), resp.data  # desktop: no destination page


def clicks(sdk: Sdk) -> list[Click]:
    with sdk.app.extensions["linkgen"].db.sessions() as session:
        return list(session.scalars(select(Click).order_by(Click.id)))


def counted(sdk: Sdk) -> tuple[int, int, int]:
    t = sdk.totals()
    return t["clicks"], t["human_clicks"], t["bot_clicks"]


def test_a_scanner_opening_one_recipients_links_is_flagged_with_its_earlier_clicks(
    sdk: Sdk,
) -> None:
    urls = email(sdk)
    for url in urls:
        open_link(sdk, url, "__cust-1", ip=SCANNER_IP, ua=CHROME)
    rows = clicks(sdk)
    assert [r.params["deep_link_value"] for r in rows] == list(LINKS)
    assert all(r.is_bot and r.bot_reason == "scanner:message" for r in rows)
    assert all(not r.attributable and r.not_attributable_reason == "bot" for r in rows)
    assert counted(sdk) == (5, 0, 5)
    # Each link's own counters were corrected too (the first two are the re-flagged ones).
    by_link = sdk.stats("link")
    assert all(by_link[r.link_id]["bot_clicks"] == 1 for r in rows)
    assert all(by_link[r.link_id]["human_clicks"] == 0 for r in rows)


def test_a_crowd_behind_one_carrier_address_and_user_agent_is_people(sdk: Sdk) -> None:
    urls = email(sdk)
    for n in range(40):
        # Every recipient opens one or two links, all within a second or two of each other.
        for j in range(1 + n % 2):
            open_link(sdk, urls[(n + j) % 5], f"__cust-{n}", ip=NAT_IP, ua=IPHONE)
    rows = clicks(sdk)
    assert len(rows) == 60
    assert not any(r.is_bot for r in rows)
    assert counted(sdk) == (60, 60, 0)


def test_two_links_of_a_message_are_a_person(sdk: Sdk) -> None:
    urls = email(sdk)
    open_link(sdk, urls[0], "__cust-1", ip=SCANNER_IP, ua=CHROME)
    open_link(sdk, urls[3], "__cust-1", ip=SCANNER_IP, ua=CHROME)
    assert [r.is_bot for r in clicks(sdk)] == [False, False]
    assert counted(sdk) == (2, 2, 0)


def test_the_same_client_on_several_recipients_or_campaigns_is_not_merged(sdk: Sdk) -> None:
    spring, autumn = email(sdk), email(sdk, campaign="autumn")
    # Each recipient opens two links of each campaign: four links, never three of one message.
    for urls in (spring, autumn):
        for recipient, pair in (("__cust-a", urls[:2]), ("__cust-b", urls[2:4])):
            for url in pair:
                open_link(sdk, url, recipient, ip=SCANNER_IP, ua=CHROME)
    rows = clicks(sdk)
    assert len(rows) == 8 and not any(r.is_bot for r in rows)


def _gaid_urls(gaid: str) -> list[str]:
    """A hand-built email (no linkgen link): five template URLs carrying the device id."""
    return [f"/{TEMPLATE}?pid=Email&c=spring&gaid={gaid}&deep_link_value={v}" for v in LINKS]


def test_a_launch_matching_a_reflagged_click_by_device_id_is_organic(sdk: Sdk) -> None:
    gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
    for url in _gaid_urls(gaid):
        open_link(sdk, url, "", ip=SCANNER_IP, ua=ANDROID)
    rows = clicks(sdk)
    assert [r.device_id for r in rows] == [gaid] * 5 and all(r.is_bot for r in rows)
    got = sdk.launch(new_device(), gaid=gaid, ts=iso(utc_now()))
    assert got.status_code == 200, got.get_json()
    assert got.get_json()["attribution"]["is_organic"] is True


def test_a_person_who_opened_two_links_is_attributed_by_device_id(sdk: Sdk) -> None:
    gaid = "38400000-8cf0-11bd-b23e-10b96e40000e"
    for url in _gaid_urls(gaid)[:2]:
        open_link(sdk, url, "", ip=SCANNER_IP, ua=ANDROID)
    got = sdk.launch(new_device(), gaid=gaid, ts=iso(utc_now()))
    attribution = got.get_json()["attribution"]
    assert attribution["match_type"] == "device_id"
    assert attribution["click_id"] == clicks(sdk)[-1].click_id


def test_an_earlier_click_handed_over_after_the_flagging_one_is_flagged_too(
    sdk: Sdk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second click's thread is held between the detector and the recorder while the third
    click is recognised and committed: the second is found missing and flagged on arrival."""
    urls = email(sdk)
    recorder: ClickRecorder = sdk.app.extensions["linkgen"].click_recorder
    release = threading.Event()
    real_submit = recorder.submit

    def submit(row: dict[str, Any], *args: Any, **kwargs: Any) -> Ticket:
        if row["params"].get("deep_link_value") == LINKS[1]:
            assert release.wait(30)
        return real_submit(row, *args, **kwargs)

    monkeypatch.setattr(recorder, "submit", submit)
    open_link(sdk, urls[0], "__cust-1", ip=SCANNER_IP, ua=CHROME)
    held = threading.Thread(
        target=open_link,
        args=(sdk, urls[1], "__cust-1"),
        kwargs={"ip": SCANNER_IP, "ua": CHROME, "client": sdk.app.test_client()},
    )
    held.start()
    deadline = time.monotonic() + 30
    while len(click_handler(sdk.app).scanners) == 0 or not _holds_two(sdk):
        assert time.monotonic() < deadline, "the held click never reached the detector"
        time.sleep(0.01)
    open_link(sdk, urls[2], "__cust-1", ip=SCANNER_IP, ua=CHROME)
    assert [r.params["deep_link_value"] for r in clicks(sdk)] == [LINKS[0], LINKS[2]]
    release.set()
    held.join(30)
    rows = clicks(sdk)
    assert sorted(r.params["deep_link_value"] for r in rows) == sorted(LINKS[:3])
    assert all(r.is_bot and r.bot_reason == "scanner:message" for r in rows)
    assert all(r.not_attributable_reason == "bot" for r in rows)
    assert counted(sdk) == (3, 0, 3)


def _holds_two(sdk: Sdk) -> bool:
    """Whether the detector has seen the scanner's first two clicks."""
    messages = click_handler(sdk.app).scanners._messages
    return any(len(set(state[3::3])) == 2 for state in messages.values())


def test_a_reflagged_click_keeps_its_own_reason_for_not_being_attributable(sdk: Sdk) -> None:
    # Hand-built links without a pid: never attributable ("missing_pid"), still a scanner's.
    urls = [f"/{TEMPLATE}?c=spring&af_sub5=__cust-9&deep_link_value={v}" for v in LINKS[:3]]
    for url in urls:
        open_link(sdk, url, "", ip=SCANNER_IP, ua=CHROME)
    rows = clicks(sdk)
    assert [r.bot_reason for r in rows] == ["scanner:message"] * 3
    assert [r.not_attributable_reason for r in rows] == ["missing_pid"] * 3
    assert counted(sdk) == (3, 0, 3)
