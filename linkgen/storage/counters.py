"""Report counters, bumped in the same transaction as the click, launch or event they count.

Keys are sorted before the upserts so that concurrent transactions lock counter rows in the
same order (no deadlock on PostgreSQL), and `SET x = x + excluded.x` makes concurrent bumps
add up instead of overwriting each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from linkgen.storage.models import StatCounter

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
    """Deltas gathered in memory, written with one upsert per key."""

    def __init__(self) -> None:
        self.deltas: dict[CounterKey, dict[str, int]] = defaultdict(dict)

    def add(self, key: CounterKey, **fields: int) -> None:
        """Add to some fields of one key."""
        row = self.deltas[key]
        for name, value in fields.items():
            row[name] = row.get(name, 0) + value

    def __bool__(self) -> bool:
        return bool(self.deltas)

    def write(self, conn: Session | Connection) -> None:
        """Upsert every key, in key order."""
        if not self.deltas:
            return
        bump_counters(conn, self.deltas)
        self.deltas = defaultdict(dict)


KEY_COLUMNS = ("day", "link_id", "template_id", "campaign", "channel", "media_source")


@lru_cache(maxsize=256)
def _upsert(dialect: str, changed: tuple[str, ...]) -> Any:
    """The upsert for one set of changed fields, built and compiled once per process."""
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    table = StatCounter.__table__
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: table.c[name] + stmt.excluded[name] for name in changed},
    )


def bump_counters(
    conn: Session | Connection, deltas: Mapping[CounterKey, Mapping[str, int]]
) -> None:
    """Add deltas to counter rows, creating the rows as needed."""
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    for key in sorted(deltas):
        fields = {name: int(deltas[key].get(name, 0)) for name in COUNTER_FIELDS}
        changed = tuple(name for name, v in fields.items() if v)
        if not changed:
            continue
        conn.execute(
            _upsert(dialect, changed),
            {
                "day": key.day,
                "link_id": key.link_id,
                "template_id": key.template_id,
                "campaign": key.campaign,
                "channel": key.channel,
                "media_source": key.media_source,
                **fields,
            },
        )


def upsert_adding(
    conn: Session | Connection,
    table: Table,
    keys: Sequence[str],
    fields: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Insert `rows`, adding `fields` to rows whose `keys` exist (the same `x = x + excluded.x`
    as the counters; callers pass rows in key order so concurrent writers lock alike).

    PostgreSQL gets every row in one statement as arrays (`unnest`): one round trip and no
    per-row statement work, about ten times what an executemany managed; SQLite an executemany
    of one statement (sqlite3 loops in C)."""
    if not rows:
        return
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    columns = (*keys, *fields)
    if dialect == "postgresql":
        conn.execute(
            _unnest_upsert(table, tuple(keys), tuple(fields)),
            {name: [row[name] for row in rows] for name in columns},
        )
        return
    conn.execute(_row_upsert(table, tuple(keys), tuple(fields)), list(rows))


@lru_cache(maxsize=16)
def _row_upsert(table: Table, keys: tuple[str, ...], fields: tuple[str, ...]) -> Any:
    stmt = sqlite_insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + stmt.excluded[name] for name in fields},
    )


@lru_cache(maxsize=16)
def _unnest_upsert(table: Table, keys: tuple[str, ...], fields: tuple[str, ...]) -> Any:
    columns = (*keys, *fields)
    # Every name is a column of one of linkgen's own tables; values go in as array parameters.
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=_PG)}[])" for name in columns
    )
    updates = ", ".join(f"{name} = {table.name}.{name} + excluded.{name}" for name in fields)
    return text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - names of our own columns
        f"SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


_PG: Any = postgresql.dialect()  # type: ignore[no-untyped-call]


def add_all(batch: CounterBatch, items: Iterable[tuple[CounterKey, dict[str, int]]]) -> None:
    """Add many (key, fields) pairs to a batch."""
    for key, fields in items:
        batch.add(key, **fields)
