"""The test-device view: one device's clicks, launches, events and postbacks, and why each
launch was attributed as it was ("my install shows as organic").

A device is found by what a developer has at hand: the app's install id (the SDK's
`device_id`), an advertising id (GAID, IDFA), the IDFV or the customer user id (the CleverTap
ID). Launches and events have no index by device (writes stay cheap), so they are read within
the last `days` days through their time index, newest first, at most `limit` of each.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.explain import matched_text, passed_over_text
from linkgen.services import postbacks as postback_service
from linkgen.services.catalog import get_app, iso
from linkgen.storage.models import Click, Event, Install, Launch, Postback

_Row = TypeVar("_Row", Launch, Event)

DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 90
MAX_QUERY_CHARS: Final = 200
LIMIT: Final = 50


def parse_days(raw: str | None) -> int:
    """`?days=`: 1 to 90, default 30."""
    if raw is None or raw == "":
        return DEFAULT_DAYS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise InvalidParameter(f"days must be a whole number from 1 to {MAX_DAYS}", field="days")
    return int(raw)


def device_report(
    session: Session, app_id: str, query: str | None, *, now: datetime, days: int = DEFAULT_DAYS
) -> dict[str, Any]:
    """Everything linkgen knows of one device of an app, newest first."""
    get_app(session, app_id)  # 404 for an unknown app
    q = (query or "").strip()
    if not q:
        raise InvalidParameter(
            "q must be a device id, an advertising id, an IDFV or a customer user id", field="q"
        )
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidParameter(f"q must be at most {MAX_QUERY_CHARS} characters", field="q")
    since = now - timedelta(days=days)
    installs = list(
        session.scalars(
            select(Install)
            .where(Install.app_id == app_id)
            .where(
                or_(
                    Install.device_id == q,
                    Install.gaid == q,
                    Install.idfa == q,
                    Install.idfv == q,
                    Install.customer_user_id == q,
                )
            )
            .limit(LIMIT)
        )
    )
    devices = {i.device_id for i in installs} | {q}
    customers = {i.customer_user_id for i in installs if i.customer_user_id} | {q}
    ad_ids = {v.lower() for i in installs for v in (i.gaid, i.idfa, i.idfv) if v} | {q.lower()}
    launches = _recent(session, Launch, app_id, since, devices, customers)
    named = {lc.click_id for lc in launches if lc.click_id}
    for launch in launches:
        named |= {p["click_id"] for p in (launch.explain or {}).get("passed_over", [])}
    clicks = list(
        session.scalars(
            select(Click)
            .where(
                or_(
                    Click.device_id.in_(ad_ids),
                    Click.customer_user_id.in_(customers),
                    Click.click_id.in_(named),
                )
            )
            .order_by(Click.ts.desc())
            .limit(LIMIT)
        )
    )
    events = _recent(session, Event, app_id, since, devices, customers)
    sources = {lc.launch_id for lc in launches} | {e.event_id for e in events}
    postbacks = list(
        session.scalars(
            select(Postback)
            .where(Postback.app_id == app_id, Postback.source_id.in_(sources))
            .order_by(Postback.id.desc())
            .limit(LIMIT)
        )
    )
    return {
        "app_id": app_id,
        "q": q,
        "days": days,
        "installs": [_install(i) for i in installs],
        "clicks": [_click(c) for c in clicks],
        "launches": [_launch(lc) for lc in launches],
        "events": [_event(e) for e in events],
        "postbacks": [postback_service.postback_to_dict(p) for p in postbacks],
    }


def _install(i: Install) -> dict[str, Any]:
    return {
        "device_id": i.device_id,
        "customer_user_id": i.customer_user_id,
        "installed_at": iso(i.installed_at),
        "type": i.type,
        "is_organic": i.is_organic,
        "media_source": i.media_source,
        "campaign": i.campaign,
        "link_id": i.link_id,
        "match_type": i.match_type,
    }


def _click(c: Click) -> dict[str, Any]:
    return {
        "click_id": c.click_id,
        "ts": iso(c.ts),
        "link_id": c.link_id,
        "template_id": c.template_id,
        "media_source": c.media_source,
        "campaign": c.campaign,
        "platform": c.platform,
        "os_version": c.os_version,
        "is_bot": c.is_bot,
        "bot_reason": c.bot_reason,
        "attributable": c.attributable,
        "not_attributable_reason": c.not_attributable_reason,
        "consumed": c.consumed,
    }


def _launch(lc: Launch) -> dict[str, Any]:
    explain = lc.explain or {}
    return {
        "launch_id": lc.launch_id,
        "ts": iso(lc.ts),
        "device_id": lc.device_id,
        "type": lc.type,
        "is_organic": lc.is_organic,
        "media_source": lc.media_source,
        "campaign": lc.campaign,
        "match_type": lc.match_type,
        "matched": matched_text(lc.match_type),
        "click_id": lc.click_id,
        "link_id": lc.link_id,
        "platform": explain.get("platform"),
        "os_version": explain.get("os_version"),
        "candidates": explain.get("candidates", 0),
        "passed_over": [
            {"click_id": p["click_id"], "reason": p["reason"], "why": passed_over_text(p["reason"])}
            for p in explain.get("passed_over", [])
        ],
    }


def _event(e: Event) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "ts": iso(e.ts),
        "event_name": e.event_name,
        "device_id": e.device_id,
        "customer_user_id": e.customer_user_id,
        "media_source": e.media_source,
        "link_id": e.link_id,
    }


def _recent(
    session: Session,
    model: type[_Row],
    app_id: str,
    since: datetime,
    devices: set[str],
    customers: set[str],
) -> list[_Row]:
    """The app's newest launches or events of these devices or customers since `since`."""
    return list(
        session.scalars(
            select(model)
            .where(model.ts >= since, model.app_id == app_id)
            .where(or_(model.device_id.in_(devices), model.customer_user_id.in_(customers)))
            .order_by(model.ts.desc())
            .limit(LIMIT)
        )
    )
