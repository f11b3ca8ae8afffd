"""Reports from `stat_counters` (kept as clicks, launches and events arrive, so a report never
counts rows): one item per link, campaign, channel or media source over a range of days. The
API's `GET /api/v1/stats` and the web app's reports page both read them here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter
from linkgen.storage.models import StatCounter

GROUPS: Final = {
    "link": ("link_id", StatCounter.link_id),
    "campaign": ("campaign", StatCounter.campaign),
    "channel": ("channel", StatCounter.channel),
    "media_source": ("media_source", StatCounter.media_source),
}
COUNTS: Final = ("clicks", "human_clicks", "bot_clicks", "installs", "reengagements", "events")


def parse_day(args: Mapping[str, str], name: str) -> date | None:
    """A `YYYY-MM-DD` query value, or None when absent."""
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidParameter(f"{name} must be a date like 2026-11-29", field=name) from exc


def parse_report(args: Mapping[str, str]) -> tuple[str, date | None, date | None]:
    """`group_by` (default `link`), `from` and `to` of a report request, checked."""
    group_by = args.get("group_by") or "link"
    if group_by not in GROUPS:
        raise InvalidParameter(f"group_by must be one of {', '.join(GROUPS)}", field="group_by")
    day_from, day_to = parse_day(args, "from"), parse_day(args, "to")
    if day_from is not None and day_to is not None and day_from > day_to:
        raise InvalidParameter("from must not be after to", field="from")
    return group_by, day_from, day_to


def summarise_counters(
    session: Session, group_by: str, day_from: date | None, day_to: date | None
) -> list[dict[str, Any]]:
    """One item per group: the summed counters, revenue as a number."""
    name, column = GROUPS[group_by]
    sums = [func.sum(getattr(StatCounter, c)).label(c) for c in (*COUNTS, "revenue_micros")]
    query = select(column.label("key"), *sums).group_by(column).order_by(column)
    if day_from is not None:
        query = query.where(StatCounter.day >= day_from)
    if day_to is not None:
        query = query.where(StatCounter.day <= day_to)
    items: list[dict[str, Any]] = []
    for row in session.execute(query):
        item: dict[str, Any] = {name: row.key or None}
        for count in COUNTS:
            item[count] = int(getattr(row, count) or 0)
        micros = int(row.revenue_micros or 0)
        revenue = micros / 1_000_000
        item["revenue"] = int(revenue) if micros % 1_000_000 == 0 else round(revenue, 6)
        items.append(item)
    return items
