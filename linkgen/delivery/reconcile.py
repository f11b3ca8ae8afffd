"""Checking in-doubt postbacks with CleverTap: which Get Events queries can tell whether a call
whose answer never came was stored (see the worker's docstring, linkgen/delivery/worker.py).

Pure planning: `plan_lookups` groups in-doubt rows into one query per (events URL, account,
passcode, event name) and merged day window; the worker runs the queries and applies what they
say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from linkgen.delivery.clevertap_client import events_endpoint
from linkgen.services import postbacks as store


@dataclass(frozen=True)
class Lookup:
    """One Get Events query: in-doubt rows of one account and event name, and the days (UTC,
    widened by a day each side) CleverTap may file their events under."""

    events_url: str
    account_id: str
    passcode: str = field(repr=False)
    event_name: str
    first_day: date
    last_day: date
    rows: tuple[store.Claimed, ...]


def _utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _days_of(row: store.Claimed, now: datetime) -> tuple[date, date]:
    """The UTC days the row's event can be filed under: its `ts`, else (CleverTap stamps
    records without one on arrival) any day from its creation to now."""
    ts = row.record.get("ts")
    if isinstance(ts, int | float) and not isinstance(ts, bool) and 0 < ts < 1e11:
        day = _utc_day(float(ts))
        return day, day
    return row.created_at.date(), now.date()


def merge_windows(spans: Iterable[tuple[date, date]], pad: int = 1) -> list[tuple[date, date]]:
    """Day ranges widened by `pad` days each side (the account's time zone is unknown: a UTC
    day can be the day before or after in it), overlapping or touching ranges merged."""
    widened = sorted(
        (first - timedelta(days=pad), last + timedelta(days=pad)) for first, last in spans
    )
    merged: list[tuple[date, date]] = []
    for first, last in widened:
        if merged and first <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def plan_lookups(
    rows: Iterable[tuple[store.Claimed, str]], now: datetime
) -> tuple[list[Lookup], list[store.Claimed]]:
    """Group in-doubt rows (each with the passcode to ask with) into Get Events queries: one per
    (events URL, account, passcode, event name) and merged day window. The second list holds
    rows no query can answer for (no known destination, or not an event record)."""
    groups: dict[tuple[str, str, str, str], list[store.Claimed]] = defaultdict(list)
    unanswerable: list[store.Claimed] = []
    for row, passcode in rows:
        url = events_endpoint(row.endpoint) if row.endpoint else None
        name = row.record.get("evtName")
        linkgen_id = linkgen_id_of(row)
        if (
            url is None
            or not row.account_id
            or row.record.get("type") != "event"
            or not isinstance(name, str)
            or not name
            or linkgen_id is None
        ):
            unanswerable.append(row)
            continue
        groups[(url, row.account_id, passcode, name)].append(row)
    lookups: list[Lookup] = []
    for (url, account_id, passcode, name), members in groups.items():
        spans = {row.id: _days_of(row, now) for row in members}
        for first, last in merge_windows(spans.values()):
            inside = tuple(r for r in members if first <= spans[r.id][0] <= last)
            lookups.append(Lookup(url, account_id, passcode, name, first, last, inside))
    return lookups, unanswerable


def linkgen_id_of(row: store.Claimed) -> str | None:
    data = row.record.get("evtData")
    value = data.get("linkgen_id") if isinstance(data, Mapping) else None
    return value if isinstance(value, str) and value else None
