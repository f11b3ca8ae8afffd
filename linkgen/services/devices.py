"""The test-device view: one device's (or one CleverTap ID's) clicks, launches with the reasons
the other clicks were passed over, events and postbacks, for an app developer debugging why an
install shows as organic.

Launches are not indexed by device (migration 0003 dropped that index, which no write path
read): this report scans an app's launches, and is meant for an operator's occasional look,
not for traffic.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.explain import explain_reason
from linkgen.services.catalog import get_app, iso
from linkgen.services.postbacks import postback_to_dict
from linkgen.storage.models import Click, Event, Install, Launch, Postback

MAX_ROWS = 200  # of each kind: a test device has a handful; a real one is cut off, saying so


def _id(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 200 or not value.isprintable():
        raise InvalidParameter(f"{field} must be 1 to 200 printable characters", field=field)
    return value


def device_report(
    session: Session, app_id: str, *, device_id: str | None, customer_user_id: str | None
) -> dict[str, Any]:
    """Everything stored for one device id or one customer user id of an app."""
    get_app(session, app_id)
    device = _id(device_id, "device_id")
    cuid = _id(customer_user_id, "customer_user_id")
    if (device is None) == (cuid is None):
        raise InvalidParameter(
            "give either device_id or customer_user_id (the CleverTap ID)", field="device_id"
        )
    devices: set[str] = {device} if device else set()
    if cuid is not None:
        devices.update(
            session.scalars(
                select(Install.device_id).where(
                    Install.app_id == app_id, Install.customer_user_id == cuid
                )
            )
        )

    def who(model: Any) -> Any:
        clauses: list[ColumnElement[bool]] = []
        if devices:
            clauses.append(model.device_id.in_(sorted(devices)))
        if cuid is not None:
            clauses.append(model.customer_user_id == cuid)
        return or_(*clauses)

    def rows(model: Any, *order: Any) -> list[Any]:
        query = select(model).where(model.app_id == app_id, who(model))
        return list(session.scalars(query.order_by(*order).limit(MAX_ROWS)))

    installs = rows(Install, Install.installed_at)
    launches = rows(Launch, Launch.ts, Launch.id)
    events = rows(Event, Event.ts, Event.id)
    click_ids: set[str] = set()
    for launch in launches:
        if launch.click_id:
            click_ids.add(launch.click_id)
        click_ids.update(p["click_id"] for p in (launch.explain or {}).get("passed_over", []))
    click_filter: list[ColumnElement[bool]] = []
    if click_ids:
        click_filter.append(Click.click_id.in_(sorted(click_ids)))
    if cuid is not None:
        click_filter.append(Click.customer_user_id == cuid)
    clicks = (
        list(
            session.scalars(
                select(Click).where(or_(*click_filter)).order_by(Click.ts).limit(MAX_ROWS)
            )
        )
        if click_filter
        else []
    )
    sources = [launch.launch_id for launch in launches] + [e.event_id for e in events]
    postbacks = (
        list(
            session.scalars(
                select(Postback)
                .where(Postback.app_id == app_id, Postback.source_id.in_(sources))
                .order_by(Postback.id)
                .limit(MAX_ROWS)
            )
        )
        if sources
        else []
    )
    return {
        "app_id": app_id,
        "device_id": device,
        "customer_user_id": cuid,
        "device_ids": sorted(devices | {i.device_id for i in installs}),
        "installs": [_install(i) for i in installs],
        "clicks": [_click(c) for c in clicks],
        "launches": [_launch(launch) for launch in launches],
        "events": [_event(e) for e in events],
        "postbacks": [postback_to_dict(p) for p in postbacks],
        "truncated": any(
            len(rows) >= MAX_ROWS for rows in (installs, launches, events, clicks, postbacks)
        ),
    }


def _install(i: Install) -> dict[str, Any]:
    return {
        "device_id": i.device_id,
        "customer_user_id": i.customer_user_id,
        "type": i.type,
        "installed_at": iso(i.installed_at),
        "is_organic": i.is_organic,
        "media_source": i.media_source,
        "campaign": i.campaign,
        "match_type": i.match_type,
        "click_id": i.click_id,
        "link_id": i.link_id,
    }


def _click(c: Click) -> dict[str, Any]:
    return {
        "click_id": c.click_id,
        "ts": iso(c.ts),
        "link_id": c.link_id,
        "template_id": c.template_id,
        "media_source": c.media_source,
        "campaign": c.campaign,
        "channel": c.channel,
        "platform": c.platform,
        "os_version": c.os_version,
        "is_bot": c.is_bot,
        "bot_reason": c.bot_reason,
        "attributable": c.attributable,
    }


def _launch(launch: Launch) -> dict[str, Any]:
    explain = launch.explain or {}
    return {
        "launch_id": launch.launch_id,
        "ts": iso(launch.ts),
        "device_id": launch.device_id,
        "first_launch": launch.first_launch,
        "type": launch.type,
        "is_organic": launch.is_organic,
        "media_source": launch.media_source,
        "campaign": launch.campaign,
        "match_type": launch.match_type,
        "click_id": launch.click_id,
        "link_id": launch.link_id,
        "candidates": explain.get("candidates"),
        "passed_over": [
            {
                "click_id": p["click_id"],
                "reason": p["reason"],
                "explanation": explain_reason(p["reason"]),
            }
            for p in explain.get("passed_over", [])
        ],
    }


def _event(e: Event) -> dict[str, Any]:
    revenue = None
    if e.revenue_micros is not None:
        revenue = str(Decimal(e.revenue_micros) / 1_000_000)
    return {
        "event_id": e.event_id,
        "event_name": e.event_name,
        "ts": iso(e.ts),
        "device_id": e.device_id,
        "customer_user_id": e.customer_user_id,
        "media_source": e.media_source,
        "campaign": e.campaign,
        "revenue": revenue,
        "currency": e.currency,
    }
