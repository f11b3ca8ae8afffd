"""Report counters, bumped in the same transaction as the click, launch or event they count.

Keys are sorted before the upserts so that concurrent transactions lock counter rows in the
same order (no deadlock on PostgreSQL), and `SET x = x + excluded.x` makes concurrent bumps
add up instead of overwriting each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table

from linkgen.storage.models import StatCounter
from linkgen.storage.rawsql import Executor, Insert, dialect

COUNTER_FIELDS = (
    "clicks",
    "human_clicks",
    "bot_clicks",
    "installs",
    "reengagements",
    "events",
    "revenue_micros",
)


@dataclass(frozen=True, order=True)
class CounterKey:
    """What a counter row counts: a day and a link / template / campaign / channel / source."""

    day: date
    link_id: str = ""
    template_id: str = ""
    campaign: str = ""
    channel: str = ""
    media_source: str = ""

    @classmethod
    def of(
        cls,
        ts: datetime,
        *,
        link_id: str | None = None,
        template_id: str | None = None,
        campaign: str | None = None,
        channel: str | None = None,
        media_source: str | None = None,
    ) -> CounterKey:
        """Build a key, with '' for unknown parts (so the unique key works everywhere)."""
        return cls(
            day=ts.date(),
            link_id=link_id or "",
            template_id=template_id or "",
            campaign=(campaign or "")[:100],
            channel=(channel or "")[:20],
            media_source=(media_source or "")[:150],
        )


class CounterBatch:
    """Deltas gathered in memory, written with `upsert_counters`."""

    def __init__(self) -> None:
        self.deltas: dict[CounterKey, dict[str, int]] = defaultdict(dict)

    def add(self, key: CounterKey, **fields: int) -> None:
        """Add to some fields of one key."""
        row = self.deltas[key]
        for name, value in fields.items():
            row[name] = row.get(name, 0) + value

    def __bool__(self) -> bool:
        return bool(self.deltas)


KEY_COLUMNS = ("day", "link_id", "template_id", "campaign", "channel", "media_source")
# Rows per statement: a dozen values a row stays far under SQLite's 32766 bound variables.
MAX_ROWS_PER_UPSERT = 500


@lru_cache(maxsize=16)
def _adding_upsert(
    dialect_name: str, table: Table, keys: tuple[str, ...], fields: tuple[str, ...]
) -> Insert:
    added = ", ".join(f"{f} = {table.name}.{f} + excluded.{f}" for f in fields)
    return Insert(
        dialect(dialect_name),
        table,
        (*keys, *fields),
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}",
    )


def upsert_adding(
    tx: Executor,
    table: Table,
    keys: Sequence[str],
    fields: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Insert `rows`, adding `fields` to the rows whose `keys` exist already (`x = x +
    excluded.x`: concurrent writers add up instead of overwriting each other). The one upsert of
    linkgen's sums: the counters (`upsert_counters`) and the click rollups. Callers pass rows in
    key order, so that concurrent writers lock rows in one order (no deadlock on PostgreSQL);
    up to MAX_ROWS_PER_UPSERT rows go in one multi-row statement."""
    if not rows:
        return
    upsert = _adding_upsert(tx.d.name, table, tuple(keys), tuple(fields))
    for start in range(0, len(rows), MAX_ROWS_PER_UPSERT):
        chunk = rows[start : start + MAX_ROWS_PER_UPSERT]
        tx.execute(upsert.rows_sql(len(chunk)), upsert.many(chunk))


def upsert_counters(tx: Executor, deltas: Mapping[CounterKey, Mapping[str, int]]) -> None:
    """Add deltas to counter rows, creating the rows as needed, keys in sorted order."""
    keys = sorted(k for k in deltas if any(deltas[k].values()))
    rows = [
        {
            "day": k.day,
            "link_id": k.link_id,
            "template_id": k.template_id,
            "campaign": k.campaign,
            "channel": k.channel,
            "media_source": k.media_source,
            **{name: int(deltas[k].get(name, 0)) for name in COUNTER_FIELDS},
        }
        for k in keys
    ]
    upsert_adding(tx, cast(Table, StatCounter.__table__), KEY_COLUMNS, COUNTER_FIELDS, rows)
