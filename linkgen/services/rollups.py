"""Click rollups: clicks per UTC day by platform, OS, country and referrer, for all clicks and
within each campaign, channel and media source (`click_rollups`), so the reports' breakdowns
read a few hundred rows a day instead of the day's clicks.

Filled off the click path: the worker (`RollupSchedule`, or `linkgen rollup-clicks`) reads the
clicks past the watermark (`rollup_watermarks`, the last `clicks.id` rolled up) in id order, a
bounded batch at a time, adds them up in memory and writes the sums and the new watermark in
one transaction, guarded by the old watermark (compare and set): a second worker that read the
same batch writes nothing, a worker stopped mid-way leaves nothing behind, and a step never
counts a click twice or misses one.

Only settled clicks are rolled up: older than `SETTLE`. A click can still turn into a bot's for
about 20 s after it was recorded (the message detector re-flags a scanner's earlier clicks), and
on PostgreSQL a lower click id may commit after a higher one (two processes' batches): a click
whose transaction has not committed a minute after its time is taken as rolled back. So the
breakdowns run a minute or so behind the clicks; the summaries (`stat_counters`) do not.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, cast

import iptocc
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkgen.services.clicklog import PLATFORMS, referrer_host
from linkgen.services.stats import COUNTER_DAYS
from linkgen.storage.counters import COUNTER_FIELDS, upsert_adding
from linkgen.storage.db import Database
from linkgen.storage.models import (
    Click,
    ClickRollup,
    CounterRollup,
    Event,
    Launch,
    RollupWatermark,
    StatCounter,
)
from linkgen.storage.rawsql import OnSession
from linkgen.storage.types import utcnow

log = logging.getLogger("linkgen.rollups")

SCOPES: Final = ("all", "campaign", "channel", "media_source")
DIMENSIONS: Final = ("platform", "os", "country", "referrer")
WATERMARK: Final = "clicks"
SETTLE: Final = timedelta(seconds=60)
BATCH: Final = 5_000  # clicks per step
# The worker's step on SQLite, where the step's write holds the one write lock that the click
# path needs too: 1,000 clicks held it 12-48 ms, 5,000 24-115 ms (benchmarks/rollup_sqlite.py).
SQLITE_WORKER_BATCH: Final = 1_000
DIRECT: Final = "direct"  # the referrer of a click that came with none
KEY_COLUMNS: Final = ("scope", "scope_value", "dimension", "day", "value")
FIELDS: Final = ("human_clicks", "bot_clicks")
_VALUE_LENGTH: Final = 255


def os_label(platform: str, os_version: str | None) -> str:
    """The platform and the major OS version ("iOS 17", "Android 14"); the platform alone for
    computers (their version says nothing without the OS's name) and unknown versions."""
    name = PLATFORMS.get(platform, platform or "Other")
    if platform in ("ios", "android") and os_version:
        major = os_version.split(".", 1)[0]
        if major.isdigit():
            return f"{name} {int(major)}"
    return name


def country_of(ip: str | None) -> str:
    """The ISO 3166 country code of a stored address ('' when dropped or not in the data set).

    A truncated address (the /24 or /48 network, see domain/privacy.py) maps like the network's
    addresses. iptocc's embedded table answers in about 0.2 µs, less than a cache lookup would
    save (benchmarks/RESULTS.md), so nothing is cached."""
    if not ip:
        return ""
    if ip[:7].lower() == "::ffff:" and "." in ip:  # an IPv4 client on a dual-stack socket
        ip = ip[7:]
    return iptocc.country_code(ip) or ""


@lru_cache(maxsize=8192)
def referrer_label(referrer: str | None) -> str:
    """The referrer's host ("mail.google.com"), `direct` when the click had none."""
    host = referrer_host(referrer)
    return host[:_VALUE_LENGTH] if host else DIRECT


# ---- the rollup step -------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """What one step did: clicks rolled up, the watermark after it, and whether more settled
    clicks may be waiting (a full batch was read, or another worker moved the watermark)."""

    clicks: int
    last_id: int
    behind: bool


_READ: Final = (
    Click.id,
    Click.ts,
    Click.campaign,
    Click.channel,
    Click.media_source,
    Click.platform,
    Click.os_version,
    Click.referrer,
    Click.ip,
    Click.is_bot,
)


class _Lost(Exception):
    """Another worker moved the watermark since this step read it."""


def rollup_rows(clicks: Sequence[Any]) -> list[dict[str, Any]]:
    """The rollup rows (in key order) that add up `clicks` (rows with the `_READ` columns)."""
    alike: Counter[tuple[Any, ...]] = Counter()
    for c in clicks:
        alike[
            (
                c.ts.date(),
                c.campaign or "",
                c.channel or "",
                c.media_source or "",
                c.platform or "other",
                c.os_version,
                c.referrer,
                country_of(c.ip),
                bool(c.is_bot),
            )
        ] += 1
    sums: dict[tuple[str, str, str, date, str], list[int]] = {}
    for (
        day,
        campaign,
        channel,
        source,
        platform,
        os_version,
        ref,
        country,
        bot,
    ), n in alike.items():
        values = (
            ("platform", platform),
            ("os", os_label(platform, os_version)),
            ("country", country),
            ("referrer", referrer_label(ref)),
        )
        for scope, scope_value in (
            ("all", ""),
            ("campaign", campaign),
            ("channel", channel),
            ("media_source", source),
        ):
            for dimension, value in values:
                cell = sums.setdefault((scope, scope_value, dimension, day, value), [0, 0])
                cell[bot] += n
    return [
        {
            "scope": key[0],
            "scope_value": key[1],
            "dimension": key[2],
            "day": key[3],
            "value": key[4],
            "human_clicks": cell[0],
            "bot_clicks": cell[1],
        }
        for key, cell in sorted(sums.items())
    ]


def roll_up_clicks(db: Database, *, batch: int = BATCH, now: datetime | None = None) -> StepResult:
    """Roll up the next batch of settled clicks past the watermark (one write transaction)."""
    cutoff = (now or utcnow()) - SETTLE
    with db.session() as session:
        stored = session.scalar(
            select(RollupWatermark.last_id).where(RollupWatermark.name == WATERMARK)
        )
        last = stored or 0
        rows = list(
            session.execute(select(*_READ).where(Click.id > last).order_by(Click.id).limit(batch))
        )
        if not rows and last and _ids_restarted(session, last):
            # SQLite reuses ids once every click was deleted (retention): start over.
            log.warning("click ids restarted below the rollup watermark %d: reading from 0", last)
            rows = list(session.execute(select(*_READ).order_by(Click.id).limit(batch)))
            last = 0
    settled = []
    for row in rows:
        if row.ts >= cutoff:
            break
        settled.append(row)
    if not settled:
        return StepResult(0, last, False)
    new_last = settled[-1].id
    sums = rollup_rows(settled)
    try:
        with db.writer_turn(), db.session() as session:
            _move_watermark(session, WATERMARK, stored, new_last)
            upsert_adding(
                OnSession(session), cast(Table, ClickRollup.__table__), KEY_COLUMNS, FIELDS, sums
            )
    except (_Lost, IntegrityError):  # IntegrityError: two first steps inserted the watermark
        return StepResult(0, last, True)
    return StepResult(len(settled), new_last, len(rows) == batch or len(settled) < len(rows))


def _ids_restarted(session: Session, last: int) -> bool:
    top = session.scalar(select(func.max(Click.id)))
    return top is not None and top < last


def _move_watermark(session: Session, name: str, stored: int | None, new: int) -> None:
    """Set watermark `name` from `stored` (None: no row yet) to `new`, or raise `_Lost` if it
    is no longer `stored`."""
    now = utcnow()
    if stored is None:
        exists = session.scalar(select(RollupWatermark.last_id).where(RollupWatermark.name == name))
        if exists is not None:
            raise _Lost
        session.execute(insert(RollupWatermark).values(name=name, last_id=new, updated_at=now))
        return
    moved = session.execute(
        update(RollupWatermark)
        .where(RollupWatermark.name == name, RollupWatermark.last_id == stored)
        .values(last_id=new, updated_at=now)
    )
    if getattr(moved, "rowcount", 0) != 1:
        raise _Lost


# ---- the counters per day --------------------------------------------------------------------

LIVE_DAYS: Final = 2  # today and yesterday: read from the counters, never rolled up
DAYS_PER_STEP: Final = 7
# Writers of past days' counters besides the click path (whose clicks are today's): launches
# and events, counted on the day of their own `ts`, which an app may send late.
_LATE: Final = (("launches", Launch), ("events", Event))


def roll_up_counters(
    db: Database, *, now: datetime | None = None, batch: int = BATCH
) -> StepResult:
    """Build `counter_rollups` for the next days (up to `DAYS_PER_STEP`, none later than the
    day before yesterday) and rebuild the days already built that late launches or events
    counted in since the last step; `clicks` is the number of days written."""
    now = now or utcnow()
    horizon = now.date() - timedelta(days=LIVE_DAYS)
    cutoff = now - SETTLE
    with db.session() as session:
        marks: dict[str, int] = dict(
            session.execute(  # type: ignore[arg-type]
                select(RollupWatermark.name, RollupWatermark.last_id).where(
                    RollupWatermark.name.in_([COUNTER_DAYS, *(n for n, _ in _LATE)])
                )
            ).all()
        )
        built = date.fromordinal(marks[COUNTER_DAYS]) if COUNTER_DAYS in marks else None
        first = session.scalar(select(func.min(StatCounter.day))) if built is None else None
        late_days: set[date] = set()
        moved: dict[str, int] = {}
        full = False
        for name, model in _LATE:
            rows = session.execute(
                select(model.id, model.ts, model.received_at)
                .where(model.id > marks.get(name, 0))
                .order_by(model.id)
                .limit(batch)
            ).all()
            settled = []
            for row in rows:
                if row.received_at >= cutoff:
                    break
                settled.append(row)
            if settled:
                moved[name] = settled[-1].id
                late_days.update(row.ts.date() for row in settled)
            full = full or len(rows) == batch
    lo = built + timedelta(days=1) if built is not None else (first or horizon + timedelta(days=1))
    hi = min(horizon, lo + timedelta(days=DAYS_PER_STEP - 1))
    new_days = [lo + timedelta(days=k) for k in range((hi - lo).days + 1)]
    through = hi if new_days else (built or horizon)
    days = sorted({*new_days, *(d for d in late_days if built is not None and d <= built)})
    if not days and not moved and built is not None:
        return StepResult(0, built.toordinal(), False)
    try:
        with db.writer_turn(), db.session() as session:
            _move_watermark(
                session,
                COUNTER_DAYS,
                built.toordinal() if built is not None else None,
                through.toordinal(),
            )
            for name, last_id in moved.items():
                _move_watermark(session, name, marks.get(name), last_id)
            if days:
                _rebuild_days(session, days)
    except (_Lost, IntegrityError):
        return StepResult(0, through.toordinal(), True)
    return StepResult(len(days), through.toordinal(), full or through < horizon)


def _rebuild_days(session: Session, days: list[date]) -> None:
    """Replace the days' rows with the sums of their counters."""
    session.execute(delete(CounterRollup).where(CounterRollup.day.in_(days)))
    keys = (StatCounter.day, StatCounter.campaign, StatCounter.channel, StatCounter.media_source)
    grouped = (
        select(*keys, *[func.sum(getattr(StatCounter, c)) for c in COUNTER_FIELDS])
        .where(StatCounter.day.in_(days))
        .group_by(*keys)
    )
    session.execute(
        insert(CounterRollup).from_select(
            ["day", "campaign", "channel", "media_source", *COUNTER_FIELDS], grouped
        )
    )


def catch_up(
    db: Database,
    *,
    batch: int = BATCH,
    progress: Callable[[StepResult], None] | None = None,
    now: datetime | None = None,
) -> int:
    """Run steps until no settled click is left past the watermark and `counter_rollups` holds
    every day it can; the clicks rolled up (`now`: as of then, for a test that cannot wait)."""
    total = 0
    while True:
        result = roll_up_clicks(db, batch=batch, now=now)
        total += result.clicks
        if progress is not None and result.clicks:
            progress(result)
        if not result.behind:
            break
    while roll_up_counters(db, now=now, batch=batch).behind:
        pass
    return total


class RollupSchedule:
    """The rollup as a worker runs it: a step every `every` seconds, and one step after another
    while clicks wait (a backfill catches up in batches, the postbacks going on between)."""

    def __init__(self, db: Database, *, every: float = 5.0, batch: int | None = None) -> None:
        self.db = db
        self.every = every
        self.batch = batch or (SQLITE_WORKER_BATCH if db.dialect == "sqlite" else BATCH)
        self._due = 0.0  # monotonic time of the next step; the first comes at once
        self.rolled_up = 0
        self.days_built = 0

    def step(self) -> bool:
        """Roll up one batch when due or behind; True when it rolled anything up."""
        if time.monotonic() < self._due:
            return False
        result = roll_up_clicks(self.db, batch=self.batch)
        days = roll_up_counters(self.db)
        self.rolled_up += result.clicks
        self.days_built += days.clicks
        behind = result.behind or days.behind
        self._due = 0.0 if behind else time.monotonic() + self.every
        return result.clicks > 0 or days.clicks > 0


# ---- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakdownRow:
    """One value of a breakdown over a range of days."""

    value: str
    label: str
    human_clicks: int
    bot_clicks: int
    rest: bool = False  # the row that sums the values past the top ones

    @property
    def clicks(self) -> int:
        """People's and bots' clicks."""
        return self.human_clicks + self.bot_clicks


TOP: Final = 20  # values shown per breakdown; the rest are summed in one row


def value_label(dimension: str, value: str) -> str:
    """A stored value in words."""
    if dimension == "platform":
        return PLATFORMS.get(value, value or "Other")
    if dimension == "country":
        return value or "Unknown"
    return value or "(none)"


def breakdowns(
    session: Session,
    day_from: date | None,
    day_to: date | None,
    *,
    scope: str = "all",
    scope_value: str = "",
    top: int | None = TOP,
) -> dict[str, list[BreakdownRow]]:
    """Each dimension's values over the days, most people's clicks first (one grouped query);
    past `top` values the rest are summed in an "N others" row."""
    if scope not in SCOPES:
        raise ValueError(scope)
    query = (
        select(
            ClickRollup.dimension,
            ClickRollup.value,
            func.sum(ClickRollup.human_clicks),
            func.sum(ClickRollup.bot_clicks),
        )
        .where(
            ClickRollup.scope == scope,
            ClickRollup.scope_value == ("" if scope == "all" else scope_value),
            ClickRollup.dimension.in_(DIMENSIONS),
        )
        .group_by(ClickRollup.dimension, ClickRollup.value)
    )
    if day_from is not None:
        query = query.where(ClickRollup.day >= day_from)
    if day_to is not None:
        query = query.where(ClickRollup.day <= day_to)
    found: dict[str, list[BreakdownRow]] = {d: [] for d in DIMENSIONS}
    for dimension, value, human, bots in session.execute(query):
        found[dimension].append(
            BreakdownRow(value, value_label(dimension, value), int(human or 0), int(bots or 0))
        )
    for dimension, rows in found.items():
        rows.sort(key=lambda r: (-r.human_clicks, -r.bot_clicks, r.label))
        if top is not None and len(rows) > top + 1:
            rest = rows[top:]
            rows[top:] = [
                BreakdownRow(
                    "",
                    f"{len(rest)} others",
                    sum(r.human_clicks for r in rest),
                    sum(r.bot_clicks for r in rest),
                    rest=True,
                )
            ]
        found[dimension] = rows
    return found
