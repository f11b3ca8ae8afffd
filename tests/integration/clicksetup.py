"""Shared set-up for the link-domain suites: real user agents, a template, clicks and counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from linkgen.storage.models import Click, StatCounter
from tests.conftest import Api

HOST = "go.example.com"
TEMPLATE = "AbCd"
IOS_APP = "id123456789"
ANDROID_APP = "com.example.shop"
FALLBACK = "https://www.example.com/welcome"
ALLOWED = "example.com"  # the allow-list: example.com and its subdomains

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.113 Mobile Safari/537.36"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
GOOGLEBOT = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGPREVIEW = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 BingPreview/1.0b"
)
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
FACEBOOK = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
WHATSAPP = "WhatsApp/2.23.20.0 A"
TWITTERBOT = "Twitterbot/1.0"

APP_STORE = f"https://apps.apple.com/app/{IOS_APP}"
PLAY_HOST = "play.google.com"


@dataclass
class Setup:
    """An iOS app, an Android app and template AbCd on go.example.com."""

    app: Flask
    client: FlaskClient
    api: Api

    def link(self, **body: Any) -> dict[str, Any]:
        """Create a link through the API; returns its JSON."""
        payload = {"template_id": TEMPLATE, "channel": "sms", "campaign": "spring", **body}
        resp = self.api.post("/api/v1/links", payload)
        assert resp.status_code == 201, resp.get_json()
        data: dict[str, Any] = resp.get_json()
        return data

    def short_path(self, **body: Any) -> tuple[str, dict[str, Any]]:
        link = self.link(short=True, **body)
        return f"/{TEMPLATE}/{link['shortlink_id']}", link

    def click(
        self,
        path: str,
        ua: str | None = IPHONE,
        *,
        method: str = "GET",
        host: str = HOST,
        ip: str = "203.0.113.9",
        headers: dict[str, str] | None = None,
        client: FlaskClient | None = None,
    ) -> Any:
        hdrs = {"Host": host, **(headers or {})}
        if ua is not None:
            hdrs["User-Agent"] = ua
        return (client or self.client).open(
            path, method=method, headers=hdrs, environ_base={"REMOTE_ADDR": ip}
        )

    def clicks(self) -> list[Click]:
        with self.app.extensions["linkgen"].db.sessions() as session:
            return list(session.scalars(select(Click).order_by(Click.id)))

    def counters(self) -> dict[str, int]:
        """Totals over the counter rows that carry a link or template (one per click)."""
        with self.app.extensions["linkgen"].db.sessions() as session:
            row = session.execute(
                select(
                    func.coalesce(func.sum(StatCounter.clicks), 0),
                    func.coalesce(func.sum(StatCounter.human_clicks), 0),
                    func.coalesce(func.sum(StatCounter.bot_clicks), 0),
                )
            ).one()
        return {"clicks": int(row[0]), "human_clicks": int(row[1]), "bot_clicks": int(row[2])}


def make_setup(app: Flask, client: FlaskClient, api: Api, **template: Any) -> Setup:
    """Create the apps and the template (fields of the template may be overridden)."""
    r = api.post(
        "/api/v1/apps",
        {
            "app_id": IOS_APP,
            "name": "Shop iOS",
            "bundle_id": "com.example.shop",
            "team_id": "ABCDE12345",
        },
    )
    assert r.status_code == 201, r.get_json()
    r = api.post(
        "/api/v1/apps",
        {
            "app_id": ANDROID_APP,
            "name": "Shop Android",
            "sha256_cert_fingerprints": [":".join(["AB"] * 32)],
        },
    )
    assert r.status_code == 201, r.get_json()
    body = {
        "template_id": TEMPLATE,
        "domain": HOST,
        "ios_app_id": IOS_APP,
        "android_app_id": ANDROID_APP,
        "uri_scheme": "shop://",
        "universal_links": True,
        "app_links": True,
        "web_fallback_url": FALLBACK,
        "redirect_allowlist": [ALLOWED],
        **template,
    }
    r = api.post("/api/v1/templates", body)
    assert r.status_code == 201, r.get_json()
    return Setup(app, client, api)


def target_is_safe(location: str) -> bool:
    """True when a redirect goes only to the stores, the allow-list or the fallback."""
    if location.startswith("intent://"):
        fallback = location.split("S.browser_fallback_url=", 1)[1].split(";", 1)[0]
        package_ok = f";package={ANDROID_APP};" in location
        return package_ok and target_is_safe(unquote(fallback))
    parts = urlsplit(location)
    if parts.scheme != "https" or "@" in parts.netloc or "\\" in location:
        return False
    host = (parts.hostname or "").lower()
    if location.startswith(APP_STORE):
        return host == "apps.apple.com"
    if host == PLAY_HOST:
        return parse_qs(parts.query).get("id") == [ANDROID_APP]
    return host == ALLOWED or host.endswith("." + ALLOWED)
