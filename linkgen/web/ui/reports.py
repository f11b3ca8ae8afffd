"""The reports page: clicks (people and bots), installs, re-engagements, events and revenue by
campaign, channel, media source or link over a range of days (all, or one campaign's, channel's
or media source's), a daily chart of the range, the clicks broken down by platform, OS, country
and referrer, each as CSV; and the click log (`/reports/clicks`), each raw click with why it was
a bot."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Final

from flask import Response, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from linkgen.domain.bulk import table_to_csv
from linkgen.domain.errors import InvalidParameter, LinkgenError
from linkgen.runtime import get_runtime
from linkgen.services.clicklog import WHO, ClickPage, ClickQuery, click_page, parse_click_query
from linkgen.services.rollups import DIMENSIONS, BreakdownRow, breakdowns
from linkgen.services.stats import (
    COUNTS,
    Filter,
    currency_breakdown,
    currency_label,
    daily_totals,
    format_revenue,
    parse_filter,
    parse_range,
    parse_report,
    revenue_by_currency,
    summarise_counters,
)
from linkgen.storage.models import Link
from linkgen.storage.types import utcnow
from linkgen.web.ui import bp
from linkgen.web.ui.stats import Chart, daily_chart

GROUP_LABELS = {
    "campaign": "Campaign",
    "channel": "Channel",
    "media_source": "Media source",
    "link": "Link",
}
DIMENSION_LABELS: Final = {
    "platform": "Platform",
    "os": "Operating system",
    "country": "Country",
    "referrer": "Referrer",
}
PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_CHART_DAYS: Final = 400  # a longer range charts its last 400 days (one point a day)
CSV_COLUMNS = (*COUNTS, "revenue")
# Rows the page draws (busiest first; the total and the CSV have every row): 4,000 links took
# 0.6 s to render, the query a few ms (benchmarks/RESULTS.md).
MAX_ROWS_SHOWN: Final = 300


def with_range(args: Mapping[str, str], default_days: int = DEFAULT_DAYS) -> dict[str, str]:
    """`args` with `from` / `to` filled from a preset (`days=7|30|90`) or the default range."""
    today = utcnow().date()
    preset = args.get("days", "")
    if args.get("from") or args.get("to"):
        return dict(args)
    if preset and not (preset.isdigit() and int(preset) in PRESETS):
        raise InvalidParameter(f"days must be one of {', '.join(map(str, PRESETS))}", field="days")
    days = int(preset) if preset else default_days
    return {**args, "from": str(today - timedelta(days=days - 1)), "to": str(today)}


def chart_range(day_from: date | None, day_to: date | None) -> tuple[date, date, bool]:
    """The days the chart draws and whether the range was cut to its last MAX_CHART_DAYS."""
    last = day_to or utcnow().date()
    first = day_from or last - timedelta(days=DEFAULT_DAYS - 1)
    if (last - first).days >= MAX_CHART_DAYS:
        return last - timedelta(days=MAX_CHART_DAYS - 1), last, True
    return first, last, False


def charts(
    db: Session,
    first: date,
    last: date,
    link_id: str | None = None,
    where: Filter | None = None,
) -> tuple[Chart, Chart]:
    """The wide and narrow drawings of the daily chart (one grouped query)."""
    days = daily_totals(db, first, last, link_id=link_id, where=where)
    return daily_chart(days), daily_chart(days, width=360, height=220, ticks=3)


def _report(args: dict[str, str], *, every_name: bool = False) -> dict[str, Any]:
    """The report the query asks for: last 30 days by campaign unless it says otherwise (links
    named for the rows the page draws, or for every row with `every_name`: the CSV)."""
    args = with_range(args)
    args.setdefault("group_by", "campaign")
    group_by, day_from, day_to = parse_report(args)
    where = parse_filter(args)
    first, last, cut = chart_range(day_from, day_to)
    with get_runtime().db.session() as db:
        items = summarise_counters(db, group_by, day_from, day_to, where=where)
        # Naming 4,000 links took 150 ms at 10 M clicks (benchmarks/RESULTS.md): the page
        # names the busiest it draws.
        items.sort(key=lambda i: (-i["human_clicks"], str(i.get("link_id") or "")))
        named = items if every_name else items[:MAX_ROWS_SHOWN]
        names = _link_names(db, [i["link_id"] for i in named if i.get("link_id")])
        currencies = revenue_by_currency(db, day_from, day_to).get("", {})
        wide, narrow = charts(db, first, last, where=where)
        split = _breakdowns(db, day_from, day_to, where)
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
                "revenue_text": format_revenue(_micros(item["revenue"]), currencies),
            }
        )
    rows.sort(key=lambda r: (-r["human_clicks"], str(r["label"] or "")))
    total: dict[str, Any] = {c: sum(r[c] for r in rows) for c in CSV_COLUMNS}
    total["install_rate"] = _rate(total["installs"], total["human_clicks"])
    total["revenue_text"] = format_revenue(_micros(total["revenue"]), currencies)
    return {
        "group_by": group_by,
        "day_from": day_from,
        "day_to": day_to,
        "where": where,
        "range_args": _range_args(day_from, day_to, where),
        "breakdowns": split,
        "rows": rows,
        "shown": rows[:MAX_ROWS_SHOWN],
        "total": total,
        "chart": wide,
        "chart_narrow": narrow,
        "chart_cut": cut,
        "currency": currency_label(currencies),
        "by_currency": currency_breakdown(currencies),
    }


def _range_args(day_from: date | None, day_to: date | None, where: Filter | None) -> dict[str, str]:
    """The query values that choose the report's days and filter (for its links)."""
    out = {"from": str(day_from or ""), "to": str(day_to or "")}
    if where is not None:
        out[where[0]] = where[1]
    return {k: v for k, v in out.items() if v}


def _breakdowns(
    db: Session, day_from: date | None, day_to: date | None, where: Filter | None
) -> list[dict[str, Any]]:
    """Each dimension's rows, with each row's share of the dimension's clicks (for its bar)."""
    scope, value = where if where is not None else ("all", "")
    found = breakdowns(db, day_from, day_to, scope=scope, scope_value=value)
    out = []
    for dimension in DIMENSIONS:
        rows: list[BreakdownRow] = found[dimension]
        total = sum(r.clicks for r in rows)
        out.append(
            {
                "dimension": dimension,
                "title": DIMENSION_LABELS[dimension],
                "rows": [
                    {
                        "row": r,
                        "share": f"{r.clicks / total:.0%}" if total else "—",
                        "human_width": round(100 * r.human_clicks / total, 1) if total else 0,
                        "bot_width": round(100 * r.bot_clicks / total, 1) if total else 0,
                    }
                    for r in rows
                ],
                "human_clicks": sum(r.human_clicks for r in rows),
                "bot_clicks": sum(r.bot_clicks for r in rows),
            }
        )
    return out


def _micros(revenue: float) -> int:
    return round(revenue * 1_000_000)


def _rate(installs: int, clicks: int) -> str:
    return f"{installs / clicks:.1%}" if clicks else "—"


def _link_names(db: Any, link_ids: list[str]) -> dict[str, str]:
    if not link_ids:
        return {}
    found = db.execute(
        select(Link.id, Link.campaign, Link.channel, Link.shortlink_id).where(
            Link.id.in_(sorted(set(link_ids)))
        )
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


def _asked_report() -> dict[str, Any]:
    """The report the request's query asks for, every row named (a LinkgenError names what is
    wrong)."""
    return _report({k: v for k, v in request.args.items() if v}, every_name=True)


@bp.get("/reports.csv")
def reports_csv() -> Response | tuple[str, int]:
    try:
        report = _asked_report()
    except LinkgenError as exc:
        return exc.message, 400
    group = report["group_by"]
    header = [
        group,
        *(["link"] if group == "link" else []),
        *CSV_COLUMNS,
        "revenue_currency",
        "install_rate",
    ]
    body = table_to_csv(
        header,
        (
            [
                r["key"] or "",
                *([r["label"] or ""] if group == "link" else []),
                *(r[c] for c in CSV_COLUMNS),
                report["currency"],
                r["install_rate"],
            ]
            for r in report["rows"]
        ),
    )
    return _csv_download(body, f"report-{group}", report)


def _csv_download(body: str, kind: str, report: dict[str, Any]) -> Response:
    """A CSV attachment named by its kind, the report's filter and its days."""
    day_from: date | None = report["day_from"]
    day_to: date | None = report["day_to"]
    scope = f"-{report['where'][0]}" if report["where"] else ""
    resp = Response(body, mimetype="text/csv")
    name = f"{kind}{scope}-{day_from or 'start'}-{day_to or 'today'}.csv"
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


BREAKDOWN_CSV_HEADER: Final = ("breakdown", "value", "people_clicks", "bot_clicks", "share")


@bp.get("/reports/breakdowns.csv")
def breakdowns_csv() -> Response | tuple[str, int]:
    args = with_range({k: v for k, v in request.args.items() if v})
    try:
        day_from, day_to = parse_range(args)
        where = parse_filter(args)
    except LinkgenError as exc:
        return exc.message, 400
    with get_runtime().db.session() as db:  # the breakdowns only: not the rest of the page
        split = _breakdowns(db, day_from, day_to, where)
    report: dict[str, Any] = {
        "day_from": day_from,
        "day_to": day_to,
        "where": where,
        "breakdowns": split,
    }
    body = table_to_csv(
        BREAKDOWN_CSV_HEADER,
        (
            [b["dimension"], r["row"].label, r["row"].human_clicks, r["row"].bot_clicks, r["share"]]
            for b in report["breakdowns"]
            for r in b["rows"]
        ),
    )
    return _csv_download(body, "breakdowns", report)


# ---- the click log ---------------------------------------------------------------------------


def _click_log(args: Mapping[str, str]) -> tuple[ClickQuery, ClickPage, dict[str, str]]:
    query = parse_click_query(args)
    with get_runtime().db.session() as db:
        page = click_page(db, query)
        names = _link_names(db, [e.link_id for e in page.entries if e.link_id])
    return query, page, names


@bp.get("/reports/clicks")
def click_log_page() -> tuple[str, int]:
    args = {k: v for k, v in request.args.items() if v}
    try:
        query, page, names = _click_log(args)
        error = None
    except LinkgenError as exc:
        query, page, names, error = ClickQuery(), ClickPage([], None), {}, exc
    html = render_template(
        "reports/clicks.html",
        q=query,
        page=page,
        names=names,
        error=error,
        args=args,
        who=WHO,
    )
    return html, 400 if error else 200


CLICK_CSV_HEADER: Final = (
    "click_number",
    "time_utc",
    "link_id",
    "link",
    "template_id",
    "campaign",
    "channel",
    "media_source",
    "platform",
    "os_version",
    "referrer_host",
    "sent_to",
    "bot",
    "bot_reason",
    "bot_reason_text",
    "attributable",
    "not_attributable_reason",
    "won_attribution",
)


@bp.get("/reports/clicks.csv")
def click_log_csv() -> Response | tuple[str, int]:
    args = {k: v for k, v in request.args.items() if v}
    try:
        _, page, names = _click_log(args)
    except LinkgenError as exc:
        return f"{exc.message} (field: {exc.field})" if exc.field else exc.message, 400
    body = table_to_csv(
        CLICK_CSV_HEADER,
        (
            [
                e.id,
                e.ts.isoformat(),
                e.link_id or "",
                names.get(e.link_id or "", ""),
                e.template_id,
                e.campaign or "",
                e.channel or "",
                e.media_source or "",
                e.platform,
                e.os_version or "",
                e.referrer_host or "",
                e.outcome,
                "yes" if e.is_bot else "no",
                e.bot_reason or "",
                e.bot_text or "",
                "yes" if e.attributable else "no",
                e.not_attributable_reason or "",
                "yes" if e.consumed else "no",
            ]
            for e in page.entries
        ),
    )
    resp = Response(body, mimetype="text/csv")
    first = page.entries[0].id if page.entries else 0
    resp.headers["Content-Disposition"] = f'attachment; filename="clicks-from-{first}.csv"'
    return resp
