"""Test helpers for the SDK suites: stored clicks and links, an SDK client, report readers.

Clicks are inserted straight into `clicks` with the column semantics of the click path:
`app_id` is the app the click's platform maps to (None for desktop), `device_id` the first of the
advertising_id / gaid / idfa / idfv / android_id params (lower-cased), `customer_user_id` the
`customer_user_id` param else `af_sub5`, `media_source` = pid, `campaign` = c, `channel` =
af_channel, `is_retargeting` from the param.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from linkgen.clicks.handler import ClickHandler
from linkgen.domain.clevertap import EventMapping, IntegrationSettings, settings_to_json
from linkgen.storage.epochs import APPS, bump_epoch
from linkgen.storage.models import App, ClevertapIntegration, Click, Event, Launch, Link, Postback
from tests.conftest import Api

ANDROID_APP = "com.example.shop"
IOS_APP = "id123456789"
TEMPLATE = "AbCd"
ANDROID_UA = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A.230803.041)"
IOS_UA = "Shop/1.0 CFNetwork/1490.0.4 Darwin/23.2.0"  # iOS 17.2
CLIENT_IP = "198.51.100.7"
DEVICE_ID_PARAMS = ("advertising_id", "gaid", "idfa", "idfv", "android_id")


def utc_now() -> datetime:
    """Now, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(ts: datetime) -> str:
    """ISO 8601 with Z."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _db(app: Flask) -> Any:
    return app.extensions["linkgen"].db


def insert_click(
    app: Flask,
    *,
    ts: datetime,
    params: dict[str, str] | None = None,
    app_id: str | None = ANDROID_APP,
    platform: str | None = None,
    ip: str | None = "203.0.113.50",
    os_version: str | None = None,
    link_id: str | None = None,
    template_id: str = TEMPLATE,
    is_bot: bool = False,
    bot_reason: str | None = None,
    attributable: bool = True,
    consumed: bool = False,
    click_id: str | None = None,
) -> str:
    """Store one click the way the click path would; returns its click id."""
    params = {"pid": "Email", "c": "spring_sale", "af_channel": "email", **(params or {})}
    click_id = click_id or "ck" + secrets.token_hex(10)
    device_id = next(
        (params[p].strip().lower() for p in DEVICE_ID_PARAMS if params.get(p, "").strip()), None
    )
    if platform is None:
        platform = {ANDROID_APP: "android", IOS_APP: "ios"}.get(app_id or "", "desktop")
    row = {
        "click_id": click_id,
        "ts": ts,
        "link_id": link_id,
        "template_id": template_id,
        "app_id": app_id,
        "media_source": params.get("pid"),
        "campaign": params.get("c"),
        "channel": params.get("af_channel"),
        "params": params,
        "ip": ip,
        "user_agent": "test",
        "platform": platform,
        "os_version": os_version,
        "device_id": device_id,
        "customer_user_id": params.get("customer_user_id") or params.get("af_sub5"),
        "is_retargeting": params.get("is_retargeting", "").lower() == "true",
        "is_bot": is_bot,
        "bot_reason": bot_reason or ("crawler" if is_bot else None),
        "attributable": attributable,
        "not_attributable_reason": None if attributable else "expired_link",
        "consumed": consumed,
        "is_qr": params.get("af_qr") == "true",
    }
    with _db(app).session() as session:
        session.execute(insert(Click).values(**row))
    return click_id


def insert_link(
    app: Flask,
    *,
    shortlink_id: str,
    params: dict[str, str] | None = None,
    media_source: str = "Push",
    campaign: str = "winback",
    channel: str = "push",
    expires_at: datetime | None = None,
    link_id: str | None = None,
) -> str:
    """Store one short link; returns its id."""
    link_id = link_id or "lk" + secrets.token_hex(8)
    with _db(app).session() as session:
        session.add(
            Link(
                id=link_id,
                template_id=TEMPLATE,
                channel=channel,
                media_source=media_source,
                campaign=campaign,
                params=params or {},
                short=True,
                shortlink_id=shortlink_id,
                ttl_seconds=31 * 86400,
                expires_at=expires_at or utc_now() + timedelta(days=31),
            )
        )
    return link_id


def configure_clevertap(app: Flask, app_id: str = ANDROID_APP, **changes: Any) -> None:
    """Store an active CleverTap integration (all sources, one Charged mapping) for an app."""
    base = IntegrationSettings(
        active=True,
        account_id="W6K-556-4K6Z",
        account_passcode="secret-passcode",
        region="EU1",
        default_postbacks="all_sources",
        in_app_enabled=True,
        mappings=(
            EventMapping("af_purchase", "Charged", "all_sources", "values_and_revenue"),
            EventMapping("af_level", "Level Achieved", "this_partner", "values"),
        ),
    )
    settings = replace(base, **changes)
    with _db(app).session() as session:
        pk = session.scalar(select(App.id).where(App.app_id == app_id))
        session.add(ClevertapIntegration(app_pk=pk, settings=settings_to_json(settings)))
        bump_epoch(session, APPS)  # as the integration API does: SDK caches reload the settings


def postbacks(app: Flask) -> list[Postback]:
    """Every outbox row, oldest first."""
    with _db(app).session() as session:
        return list(session.scalars(select(Postback).order_by(Postback.id)))


def launches(app: Flask) -> list[Launch]:
    """Every stored launch, oldest first."""
    with _db(app).session() as session:
        return list(session.scalars(select(Launch).order_by(Launch.id)))


def events(app: Flask) -> list[Event]:
    """Every stored event, oldest first."""
    with _db(app).session() as session:
        return list(session.scalars(select(Event).order_by(Event.id)))


def click_consumed(app: Flask, click_id: str) -> bool:
    """Whether a click has won a launch."""
    with _db(app).session() as session:
        return bool(session.scalar(select(Click.consumed).where(Click.click_id == click_id)))


@dataclass
class Sdk:
    """Sends SDK requests for the two test apps and reads the reports."""

    app: Flask
    client: FlaskClient
    api: Api
    keys: dict[str, str] = field(default_factory=dict)

    def launch(
        self,
        device_id: str | None = None,
        *,
        app_id: str = ANDROID_APP,
        key: str | None = None,
        ua: str | None = None,
        raw: Any = None,
        **body: Any,
    ) -> Any:
        """POST a launch (first_launch true unless given); `raw` sends a body as is."""
        payload: Any = raw
        if raw is None:
            payload = {"device_id": device_id or new_device(), "first_launch": True, **body}
        return self._post(f"/api/v1/sdk/{app_id}/launches", payload, app_id, key, ua)

    def event(
        self,
        *,
        app_id: str = ANDROID_APP,
        key: str | None = None,
        raw: Any = None,
        **body: Any,
    ) -> Any:
        """POST an event."""
        payload: Any = raw
        if raw is None:
            payload = {"event_id": "ev" + secrets.token_hex(6), **body}
        return self._post(f"/api/v1/sdk/{app_id}/events", payload, app_id, key, None)

    def _post(self, path: str, payload: Any, app_id: str, key: str | None, ua: str | None) -> Any:
        headers = {
            "X-SDK-Key": key if key is not None else self.keys.get(app_id, ""),
            "User-Agent": ua or (IOS_UA if app_id == IOS_APP else ANDROID_UA),
        }
        if isinstance(payload, str | bytes):
            headers["Content-Type"] = "application/json"
            return self.client.post(
                path, data=payload, headers=headers, environ_base={"REMOTE_ADDR": CLIENT_IP}
            )
        return self.client.post(
            path, json=payload, headers=headers, environ_base={"REMOTE_ADDR": CLIENT_IP}
        )

    def stats(self, group_by: str = "link", **args: str) -> dict[str | None, dict[str, Any]]:
        """The stats items keyed by their group value."""
        query = "&".join(f"{k}={v}" for k, v in {"group_by": group_by, **args}.items())
        resp = self.api.get(f"/api/v1/stats?{query}")
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        assert body["next"] is None
        return {item["link_id" if group_by == "link" else group_by]: item for item in body["items"]}

    def totals(self) -> dict[str, Any]:
        """Every counter summed over all groups."""
        out: dict[str, Any] = {}
        for item in self.stats("media_source").values():
            for name, value in item.items():
                if name != "media_source":
                    out[name] = out.get(name, 0) + value
        return out


def click_handler(app: Flask) -> ClickHandler:
    """The click path's WSGI handler in front of the app (to set its clock or detector)."""
    found: Any = app.wsgi_app
    while not isinstance(found, ClickHandler):
        found = found.app
    return found


def new_device() -> str:
    """A fresh SDK install id."""
    return f"{secrets.randbelow(10**13)}-{secrets.randbelow(10**7)}"


def make_sdk(app: Flask, client: FlaskClient, api: Api, **app_settings: Any) -> Sdk:
    """Create the Android and iOS apps and a template through the API."""
    sdk = Sdk(app=app, client=client, api=api)
    for app_id in (ANDROID_APP, IOS_APP):
        resp = api.post("/api/v1/apps", {"app_id": app_id, "name": "Shop", **app_settings})
        assert resp.status_code == 201, resp.get_json()
        sdk.keys[app_id] = resp.get_json()["sdk_key"]
    resp = api.post(
        "/api/v1/templates",
        {
            "template_id": TEMPLATE,
            "domain": "go.example.com",
            "android_app_id": ANDROID_APP,
            "ios_app_id": IOS_APP,
            "redirect_allowlist": ["example.com"],
        },
    )
    assert resp.status_code == 201, resp.get_json()
    return sdk
