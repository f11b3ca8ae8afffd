"""Reports: GET /api/v1/stats?group_by=link|campaign|channel|media_source&from=&to=.

Sums the `stat_counters` rows (kept as clicks, launches and events arrive) over the days from
`from` to `to` (both optional, inclusive, YYYY-MM-DD in UTC), one item per value of the grouping
column; an empty key (a click on a long link has no link id, an organic install no campaign) is
reported as null. `group_by` defaults to `link`. Every group is returned (the number of groups is
the number of links or campaigns, not of events), so `next` is always null. `revenue` is the sum
of `af_revenue` as reported, in whatever currencies the events named.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter
from linkgen.runtime import get_runtime
from linkgen.storage.models import StatCounter
from linkgen.web.api import bp

GROUPS = {
    "link": ("link_id", StatCounter.link_id),
    "campaign": ("campaign", StatCounter.campaign),
    "channel": ("channel", StatCounter.channel),
    "media_source": ("media_source", StatCounter.media_source),
}
COUNTS = ("clicks", "human_clicks", "bot_clicks", "installs", "reengagements", "events")


def _day(name: str) -> date | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidParameter(f"{name} must be a date like 2026-11-29", field=name) from exc


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


@bp.get("/stats")
def get_stats() -> Response:
    group_by = request.args.get("group_by") or "link"
    if group_by not in GROUPS:
        raise InvalidParameter(f"group_by must be one of {', '.join(GROUPS)}", field="group_by")
    day_from, day_to = _day("from"), _day("to")
    if day_from is not None and day_to is not None and day_from > day_to:
        raise InvalidParameter("from must not be after to", field="from")
    with get_runtime().db.session() as session:
        items = summarise_counters(session, group_by, day_from, day_to)
    return jsonify({"items": items, "next": None})
