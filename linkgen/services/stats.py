"""Reports from `stat_counters` (kept as clicks, launches and events arrive, so a report never
counts rows): one item per link, campaign, channel or media source over a range of days. The
API's `GET /api/v1/stats` and the web app's reports page both read them here.

Reports by campaign, channel or media source (narrowed or not) and the daily chart of all links
read the days that `counter_rollups` holds (every day before yesterday once the worker has built
them: one row per campaign, channel and media source a day instead of one per link) and the
counters themselves for the later days, in one query; until the worker has built them, and by
link, they read the counters alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import Subquery, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter
from linkgen.storage.models import CounterRollup, Event, RollupWatermark, StatCounter

USD: Final = "USD"  # what an event's revenue is taken to be in when it names no currency

GROUPS: Final = {
    "link": ("link_id", StatCounter.link_id),
    "campaign": ("campaign", StatCounter.campaign),
    "channel": ("channel", StatCounter.channel),
    "media_source": ("media_source", StatCounter.media_source),
}
# A report may be narrowed to one campaign, channel or media source (its longest value).
FILTERS: Final = {"campaign": 100, "channel": 20, "media_source": 150}
Filter = tuple[str, str]  # (column, value)

# rollup_watermarks row whose last_id is the last day (date.toordinal) counter_rollups holds.
COUNTER_DAYS: Final = "counter_days"

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
    return group_by, *parse_range(args)


def parse_range(args: Mapping[str, str]) -> tuple[date | None, date | None]:
    """`from` and `to` (both optional, inclusive), checked."""
    day_from, day_to = parse_day(args, "from"), parse_day(args, "to")
    if day_from is not None and day_to is not None and day_from > day_to:
        raise InvalidParameter("from must not be after to", field="from")
    return day_from, day_to


def parse_filter(args: Mapping[str, str]) -> Filter | None:
    """The one of `campaign`, `channel`, `media_source` a report is narrowed to, if any."""
    given = [(name, args[name]) for name in FILTERS if args.get(name)]
    if len(given) > 1:
        raise InvalidParameter(
            "narrow a report to one of campaign, channel or media source", field=given[1][0]
        )
    if not given:
        return None
    name, value = given[0]
    if len(value) > FILTERS[name]:
        raise InvalidParameter(f"{name} must be at most {FILTERS[name]} characters", field=name)
    return name, value


def summarise_counters(
    session: Session,
    group_by: str,
    day_from: date | None,
    day_to: date | None,
    *,
    where: Filter | None = None,
) -> list[dict[str, Any]]:
    """One item per group: the summed counters, revenue as a number."""
    name, column = GROUPS[group_by]
    rolled = rolled_up_counters(session, day_from, day_to, where) if group_by != "link" else None
    if rolled is not None:
        key = rolled.c[group_by]
        sums = [func.sum(rolled.c[c]).label(c) for c in (*COUNTS, "revenue_micros")]
        query = select(key.label("key"), *sums).group_by(key).order_by(key)
    else:
        sums = [func.sum(getattr(StatCounter, c)).label(c) for c in (*COUNTS, "revenue_micros")]
        query = select(column.label("key"), *sums).group_by(column).order_by(column)
        if day_from is not None:
            query = query.where(StatCounter.day >= day_from)
        if day_to is not None:
            query = query.where(StatCounter.day <= day_to)
        if where is not None:
            query = query.where(getattr(StatCounter, where[0]) == where[1])
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


DAY_SERIES: Final = ("human_clicks", "bot_clicks", "installs", "reengagements")


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One day's summed counters, for the daily chart."""

    day: date
    human_clicks: int = 0
    bot_clicks: int = 0
    installs: int = 0
    reengagements: int = 0


def daily_totals(
    session: Session,
    day_from: date,
    day_to: date,
    *,
    link_id: str | None = None,
    where: Filter | None = None,
) -> list[DayTotals]:
    """Every day from `day_from` to `day_to` (zeros included), summed in one grouped query."""
    rolled = rolled_up_counters(session, day_from, day_to, where) if link_id is None else None
    if rolled is not None:
        query = select(rolled.c.day, *[func.sum(rolled.c[c]) for c in DAY_SERIES]).group_by(
            rolled.c.day
        )
    else:
        sums = [func.sum(getattr(StatCounter, c)) for c in DAY_SERIES]
        query = (
            select(StatCounter.day, *sums)
            .where(StatCounter.day >= day_from, StatCounter.day <= day_to)
            .group_by(StatCounter.day)
        )
        if link_id is not None:
            query = query.where(StatCounter.link_id == link_id)
        if where is not None:
            query = query.where(getattr(StatCounter, where[0]) == where[1])
    found = {row[0]: [int(v or 0) for v in row[1:]] for row in session.execute(query)}
    out = []
    for offset in range((day_to - day_from).days + 1):
        day = day_from + timedelta(days=offset)
        out.append(DayTotals(day, *found.get(day, (0, 0, 0, 0))))
    return out


_FIELDS: Final = (*COUNTS, "revenue_micros")


def counters_rolled_up_to(session: Session) -> date | None:
    """The last day `counter_rollups` holds (None until the worker first built it)."""
    ordinal = session.scalar(
        select(RollupWatermark.last_id).where(RollupWatermark.name == COUNTER_DAYS)
    )
    return date.fromordinal(ordinal) if ordinal else None


_ROLLED_KEYS: Final = ("campaign", "channel", "media_source")


def rolled_up_counters(
    session: Session,
    day_from: date | None,
    day_to: date | None,
    where: Filter | None = None,
) -> Subquery | None:
    """(day, campaign, channel, media_source, counts...) rows over the days: `counter_rollups`
    up to the day it holds, the counters after it (one query). None when it holds none of the
    days asked for."""
    through = counters_rolled_up_to(session)
    if through is None or (day_from is not None and day_from > through):
        return None
    upto = through if day_to is None else min(day_to, through)
    rolled = select(
        CounterRollup.day,
        *[getattr(CounterRollup, c) for c in (*_ROLLED_KEYS, *_FIELDS)],
    ).where(CounterRollup.day <= upto)
    live = select(
        StatCounter.day,
        *[getattr(StatCounter, c) for c in (*_ROLLED_KEYS, *_FIELDS)],
    ).where(StatCounter.day > through)
    if day_from is not None:
        rolled = rolled.where(CounterRollup.day >= day_from)
    if day_to is not None:
        live = live.where(StatCounter.day <= day_to)
    if where is not None:
        rolled = rolled.where(getattr(CounterRollup, where[0]) == where[1])
        live = live.where(getattr(StatCounter, where[0]) == where[1])
    return union_all(rolled, live).subquery()


def _credited(primary: Any, reengagement: Any) -> Any:
    # An event counts under its re-engagement source while that window covers it (the row then
    # has re_media_source), else under the install's source: as the counters do.
    return case((Event.re_media_source.is_not(None), reengagement), else_=primary)


def revenue_by_currency(
    session: Session,
    day_from: date | None = None,
    day_to: date | None = None,
    *,
    link_ids: Sequence[str] | None = None,
) -> dict[str, dict[str, int]]:
    """Revenue in micros per currency, per credited link ("" = all links when not asked).

    Counters sum amounts without their currency, so the currency comes from the events
    themselves: each one's `af_currency` (USD when the app sent none), which is also the
    currency its postback names."""
    link = _credited(Event.link_id, Event.re_link_id)
    key = link if link_ids is not None else literal("")
    query = (
        select(key.label("key"), Event.currency, func.sum(Event.revenue_micros))
        .where(Event.revenue_micros.is_not(None))
        .group_by(key, Event.currency)
    )
    if day_from is not None:
        query = query.where(Event.ts >= _midnight(day_from))
    if day_to is not None:
        query = query.where(Event.ts < _midnight(day_to + timedelta(days=1)))
    if link_ids is not None:
        if not link_ids:
            return {}
        query = query.where(link.in_(list(link_ids)))
    out: dict[str, dict[str, int]] = {}
    for row in session.execute(query):
        out.setdefault(row[0] or "", {})[row[1] or USD] = int(row[2] or 0)
    return out


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def currency_label(currencies: Mapping[str, int] | None) -> str:
    """The one currency revenue was reported in, "mixed" for several, "" for none."""
    codes = [c for c, v in (currencies or {}).items() if v]
    return codes[0] if len(codes) == 1 else "mixed" if codes else ""


def format_revenue(micros: int, currencies: Mapping[str, int] | None) -> str:
    """An amount with its currency when there is only one ("49.90 EUR"), else "mixed"."""
    amount = f"{micros / 1_000_000:,.2f}"
    codes = [c for c, v in (currencies or {}).items() if v]
    if len(codes) == 1:
        return f"{amount} {codes[0]}"
    if len(codes) > 1:
        return f"{amount} (mixed currencies)"
    return amount


def currency_breakdown(currencies: Mapping[str, int]) -> list[tuple[str, str]]:
    """(currency, amount) pairs, largest first, for a "revenue by currency" list."""
    ordered = sorted(currencies.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(code, f"{micros / 1_000_000:,.2f}") for code, micros in ordered if micros]
