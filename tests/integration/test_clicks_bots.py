"""Bots on the link domain (previews, scanners) and open-redirect attempts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Api
from tests.integration.clicksetup import (
    ANDROID,
    BINGPREVIEW,
    DESKTOP,
    FACEBOOK,
    IPHONE,
    MAC,
    SLACKBOT,
    TEMPLATE,
    TWITTERBOT,
    WHATSAPP,
    Setup,
    make_setup,
    target_is_safe,
)

LONG = f"/{TEMPLATE}?pid=Email&c=spring"


@pytest.fixture
def s(app: Flask, client: FlaskClient, api: Api) -> Setup:
    return make_setup(app, client, api)


# -- link-preview crawlers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "name"),
    [
        (SLACKBOT, "slackbot"),
        (FACEBOOK, "facebook"),
        (WHATSAPP, "whatsapp"),
        (TWITTERBOT, "twitterbot"),
        ("TelegramBot (like TwitterBot)", "telegrambot"),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "discordbot"),
    ],
)
def test_preview_crawlers_get_escaped_open_graph_tags(s: Setup, ua: str, name: str) -> None:
    path, _ = s.short_path(
        params={
            "af_og_title": '<script>alert(1)</script>"',
            "af_og_description": "Spring & <b>sale</b>",
            "af_og_image": "https://cdn.example.com/card.png",
        }
    )
    resp = s.click(path, ua)
    assert resp.status_code == 200 and "Location" not in resp.headers
    page = resp.get_data(as_text=True)
    assert "<script>" not in page and "<b>" not in page
    assert 'content="&lt;script&gt;alert(1)&lt;/script&gt;&quot;"' in page
    assert 'property="og:description" content="Spring &amp; &lt;b&gt;sale&lt;/b&gt;"' in page
    assert 'property="og:image" content="https://cdn.example.com/card.png"' in page
    [row] = s.clicks()
    assert row.is_bot and row.bot_reason == f"preview:{name}"
    assert row.outcome == "preview" and not row.attributable
    assert s.counters() == {"clicks": 1, "human_clicks": 0, "bot_clicks": 1}


def test_preview_override_cannot_inject_markup(s: Setup) -> None:
    # A hand-built template link: the click's own preview parameters are shown, escaped.
    title = quote('"><script>alert(1)</script>')
    page = s.click(f"{LONG}&af_og_title={title}&af_og_image=javascript:alert(1)", SLACKBOT)
    text = page.get_data(as_text=True)
    assert "&lt;script&gt;" in text and "<script>" not in text and "og:image" not in text
    # og:url is the link itself, without the click's query string.
    assert (
        f'property="og:url" content="http://go.example.com/{LONG.split("?")[0].strip("/")}"' in text
    )


def test_a_link_made_in_linkgen_keeps_its_stored_preview(s: Setup) -> None:
    path, link = s.short_path(
        params={"af_og_title": "Spring sale", "af_og_image": "https://cdn.example.com/a.png"}
    )
    forged = (
        "?af_og_title=Free+money&af_og_description=Log+in+here"
        "&af_og_image=https://evil.example.net/x.png"
    )
    long_url = urlsplit(link["long_url"])
    assert "lg_link=" in long_url.query
    for url in (path + forged, f"{long_url.path}?{long_url.query}&{forged[1:]}"):
        text = s.click(url, FACEBOOK).get_data(as_text=True)
        assert 'property="og:title" content="Spring sale"' in text, url
        assert 'property="og:image" content="https://cdn.example.com/a.png"' in text
        assert "Free money" not in text and "Log in here" not in text and "evil" not in text
    assert [row.link_id for row in s.clicks()] == [link["id"], link["id"]]  # both its clicks


def test_preview_of_a_long_link(s: Setup) -> None:
    resp = s.click(LONG + "&af_og_title=Hello", FACEBOOK)
    assert resp.status_code == 200
    assert 'property="og:title" content="Hello"' in resp.get_data(as_text=True)


# -- scanners and other bots ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        (BINGPREVIEW, "scanner:microsoft_safelinks"),
        ("Mozilla/5.0 (compatible; Proofpoint URL Defense)", "scanner:proofpoint"),
        ("Mimecast Security Agent/1.0", "scanner:mimecast"),
        ("Barracuda Sentinel (EE)", "scanner:barracuda"),
        ("curl/8.5.0", "automation:curl"),
        ("python-requests/2.32.3", "automation:python_requests"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/126.0.0.0 Safari/537.36",
            "automation:headless_chrome",
        ),
        ("", "empty_user_agent"),
    ],
)
def test_scanners_are_recorded_flagged_and_never_attributable(
    s: Setup, ua: str, reason: str
) -> None:
    resp = s.click(LONG, ua)
    assert resp.status_code == 302  # a scanner still gets the redirect: it must see a real link
    assert target_is_safe(resp.headers["Location"])
    [row] = s.clicks()
    assert row.is_bot and row.bot_reason == reason
    assert not row.attributable and row.not_attributable_reason == "bot"


def test_one_client_opening_many_links_of_many_recipients_is_not_a_scanner(s: Setup) -> None:
    # What the old burst rule flagged: five links from one address and browser within seconds.
    # Carrier NAT puts thousands of people behind one address; each of them is one recipient.
    paths = [s.short_path(campaign=f"c{i}")[0] for i in range(5)]
    for n, path in enumerate(paths):
        s.click(f"{path}?af_sub5=cust-{n}", DESKTOP, ip="198.51.100.20")
    assert [r.bot_reason for r in s.clicks()] == [None] * 5


def test_clicks_with_no_recipient_value_are_never_flagged_by_behaviour(s: Setup) -> None:
    # No recipient value (or an unfilled placeholder): a crowd and a scanner look alike here.
    paths = [s.short_path(campaign="spring")[0] for _ in range(5)]
    for path in paths:
        s.click(f"{path}?af_sub5={{{{Profile.objectId}}}}", DESKTOP, ip="198.51.100.21")
    assert [r.is_bot for r in s.clicks()] == [False] * 5


def test_one_recipients_short_links_opened_within_seconds_are_a_scanner(s: Setup) -> None:
    paths = [s.short_path(campaign="spring")[0] for _ in range(4)]
    for path in paths:
        s.click(f"{path}?af_sub5=cust-1", DESKTOP, ip="198.51.100.22")
    rows = s.clicks()
    assert [r.bot_reason for r in rows] == ["scanner:message"] * 4
    assert [r.attributable for r in rows] == [False] * 4
    assert s.counters() == {"clicks": 4, "human_clicks": 0, "bot_clicks": 4}
    # Another client on the same recipient's links is not affected.
    s.click(f"{paths[0]}?af_sub5=cust-1", DESKTOP, ip="198.51.100.23")
    assert s.clicks()[-1].bot_reason is None


def test_repeat_clicks_on_one_link_are_not_a_burst(s: Setup) -> None:
    path, _ = s.short_path()
    for _ in range(6):
        s.click(path, IPHONE, ip="198.51.100.30")
    assert [r.is_bot for r in s.clicks()] == [False] * 6


def test_head_from_a_scanner_records_nothing(s: Setup) -> None:
    s.click(LONG, BINGPREVIEW, method="HEAD")
    s.click(LONG, SLACKBOT, method="HEAD")
    assert s.clicks() == []


# -- open redirects -------------------------------------------------------------------------------

EVIL = [
    "https://evil.com/",
    "https://example.com.evil.com/",
    "https://evil.com/?next=https://example.com/",
    "https://example.com@evil.com/",
    "https://evil.com\\@example.com/",
    "https://evil.com#example.com",
    "https://evil.com%2F.example.com/",
    "https://evil.com%00.example.com/",
    "https://evil.com\t.example.com/",
    "//evil.com/",
    "/\\evil.com",
    "https:evil.com",
    "http://example.com/",  # not https
    "HTTPS://EVIL.COM/",
    "javascript:alert(1)//https://example.com/",
    "data:text/html,<script>alert(1)</script>",
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://ex\u0430mple.com/",  # Cyrillic small a
    " https://evil.com/",
    "https://evil.com:443@example.com/",
]
REDIRECT_PARAMS = ["af_r", "af_ios_url", "af_android_url", "af_web_dp"]
UAS = [IPHONE, ANDROID, DESKTOP, MAC]


def _assert_safe(resp: Any) -> None:
    if resp.status_code == 302:
        assert target_is_safe(resp.headers["Location"]), resp.headers["Location"]
    else:
        assert resp.status_code == 200
        page = resp.get_data(as_text=True)
        assert "evil" not in page.lower()


@pytest.mark.parametrize("param", REDIRECT_PARAMS)
def test_long_link_redirect_parameters_cannot_leave_the_allow_list(s: Setup, param: str) -> None:
    for target in EVIL:
        for ua in UAS:
            _assert_safe(s.click(f"{LONG}&{param}={quote(target, safe='')}", ua))
            _assert_safe(s.click(f"{LONG}&{param}={target}", ua))


@pytest.mark.parametrize("param", REDIRECT_PARAMS)
def test_short_link_overrides_cannot_leave_the_allow_list(s: Setup, param: str) -> None:
    path, _ = s.short_path(params={param: "https://example.com/ok"})
    for target in EVIL:
        for ua in UAS:
            _assert_safe(s.click(f"{path}?{param}={quote(target, safe='')}", ua))


def test_deep_link_schemes_cannot_be_hijacked(s: Setup) -> None:
    for dp in ("javascript:alert(1)", "https://evil.com/", "intent://x#Intent;end", "evil://x"):
        for ua in (IPHONE, ANDROID):
            resp = s.click(f"{LONG}&af_dp={quote(dp, safe='')}&af_force_deeplink=true", ua)
            _assert_safe(resp)
            assert "javascript:" not in resp.get_data(as_text=True)


def test_every_recorded_outcome_went_somewhere_safe(s: Setup) -> None:
    """A sweep over allowed and refused targets: every Location is a store, allowed or fallback."""
    allowed = ["https://example.com/a", "https://deep.sub.example.com/b?x=1"]
    for target in allowed + EVIL[:8]:
        for param in REDIRECT_PARAMS:
            for ua in UAS:
                _assert_safe(s.click(f"{LONG}&{param}={quote(target, safe='')}", ua))
    assert len(s.clicks()) == (len(allowed) + 8) * len(REDIRECT_PARAMS) * len(UAS)
