"""The reports page: clicks (people and bots), installs, re-engagements, events and revenue by
campaign, channel, media source or link over a range of days, and the same as CSV."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Response, render_template, request
from sqlalchemy import select

from linkgen.domain.bulk import table_to_csv
from linkgen.domain.errors import LinkgenError
from linkgen.runtime import get_runtime
from linkgen.services.stats import COUNTS, parse_report, summarise_counters
from linkgen.storage.models import Link
from linkgen.storage.types import utcnow
from linkgen.web.ui import bp

GROUP_LABELS = {
    "campaign": "Campaign",
    "channel": "Channel",
    "media_source": "Media source",
    "link": "Link",
}
PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
CSV_COLUMNS = (*COUNTS, "revenue")


def _report(args: dict[str, str]) -> dict[str, Any]:
    """The report the query asks for: last 30 days by campaign unless it says otherwise."""
    today = utcnow().date()
    preset = args.get("days", "")
    if preset.isdigit() and int(preset) in PRESETS and not (args.get("from") or args.get("to")):
        args = {**args, "from": str(today - timedelta(days=int(preset) - 1)), "to": str(today)}
    elif not (args.get("from") or args.get("to")):
        args = {**args, "from": str(today - timedelta(days=DEFAULT_DAYS - 1)), "to": str(today)}
    args.setdefault("group_by", "campaign")
    group_by, day_from, day_to = parse_report(args)
    with get_runtime().db.session() as db:
        items = summarise_counters(db, group_by, day_from, day_to)
        names = _link_names(db, [i["link_id"] for i in items if i.get("link_id")])
    key = "link_id" if group_by == "link" else group_by
    rows = []
    for item in items:
        value = item[key]
        rows.append(
            {
                **item,
                "key": value,
                "label": names.get(value, value) if group_by == "link" else value,
                "install_rate": _rate(item["installs"], item["human_clicks"]),
            }
        )
    rows.sort(key=lambda r: (-r["human_clicks"], str(r["label"] or "")))
    total = {c: sum(r[c] for r in rows) for c in CSV_COLUMNS}
    total["install_rate"] = _rate(total["installs"], total["human_clicks"])
    return {
        "group_by": group_by,
        "day_from": day_from,
        "day_to": day_to,
        "rows": rows,
        "total": total,
    }


def _rate(installs: int, clicks: int) -> str:
    return f"{installs / clicks:.1%}" if clicks else "—"


def _link_names(db: Any, link_ids: list[str]) -> dict[str, str]:
    if not link_ids:
        return {}
    found = db.execute(
        select(Link.id, Link.campaign, Link.channel, Link.shortlink_id).where(Link.id.in_(link_ids))
    )
    return {
        row.id: " · ".join(v for v in (row.campaign, row.channel, row.shortlink_id) if v)
        for row in found
    }


@bp.get("/reports")
def reports_page() -> tuple[str, int]:
    args = {k: v for k, v in request.args.items() if v}
    try:
        report = _report(args)
        error = None
    except LinkgenError as exc:
        report, error = None, exc.message
    page = render_template(
        "reports/report.html",
        report=report,
        error=error,
        args=args,
        groups=GROUP_LABELS,
        presets=PRESETS,
    )
    return page, 400 if error else 200


@bp.get("/reports.csv")
def reports_csv() -> Response | tuple[str, int]:
    args = {k: v for k, v in request.args.items() if v}
    try:
        report = _report(args)
    except LinkgenError as exc:
        return exc.message, 400
    group = report["group_by"]
    header = [group, *(["link"] if group == "link" else []), *CSV_COLUMNS, "install_rate"]
    body = table_to_csv(
        header,
        (
            [
                r["key"] or "",
                *([r["label"] or ""] if group == "link" else []),
                *(r[c] for c in CSV_COLUMNS),
                r["install_rate"],
            ]
            for r in report["rows"]
        ),
    )
    resp = Response(body, mimetype="text/csv")
    day_from: date | None = report["day_from"]
    day_to: date | None = report["day_to"]
    name = f"report-{group}-{day_from or 'start'}-{day_to or 'today'}.csv"
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp
