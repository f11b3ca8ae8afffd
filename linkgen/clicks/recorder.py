"""Durable click capture with group commit.

A request hands its click to `ClickRecorder.submit` and waits on the `Ticket` it gets back: a
request thread blocks in `Ticket.wait`, a request on the event loop (linkgen/web/front.py)
awaits `Ticket.committed` and holds no thread. One writer thread per process takes every click
waiting at that moment, writes them, their counter increments and the short links' renewed
expiries in ONE transaction, commits, and only then releases the waiting requests: one wake-up
for the threads of a batch and one call into each event loop that has clicks in it. So a
redirect is never answered before its click is durable, yet a burst of N concurrent clicks costs
one commit rather than N.

The writer talks to the database driver directly, with multi-row statements built once per
batch size: with SQLAlchemy's per-row parameter processing and sqlite3's per-row `executemany`
(each row releases and re-takes the GIL, which 60 request threads contend for) the writer
spent most of its time waiting for the GIL, not writing. A batch is now ~5 driver calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table

from linkgen.storage.counters import CounterBatch, CounterKey, upsert_counters
from linkgen.storage.db import Database
from linkgen.storage.models import Click, Link
from linkgen.storage.rawsql import Insert, OnCursor, Rows, dialect
from linkgen.threads import Thread

log = logging.getLogger("linkgen.clicks")

# The clicks columns the click path fills, in statement order (ids come from the database).
CLICK_COLUMNS = (
    "click_id",
    "ts",
    "link_id",
    "template_id",
    "app_id",
    "media_source",
    "campaign",
    "channel",
    "params",
    "ip",
    "user_agent",
    "platform",
    "os_version",
    "referrer",
    "device_id",
    "customer_user_id",
    "is_retargeting",
    "is_bot",
    "bot_reason",
    "is_qr",
    "attributable",
    "not_attributable_reason",
    "outcome",
    "consumed",
)
# What a re-flagged click's counter key is made of, read back from its row.
_REFLAG_KEY = ("ts", "link_id", "template_id", "campaign", "channel", "media_source")
# Re-flagged clicks the writer did not find yet (their request thread had not handed them over):
# flagged when they arrive. Bounded: a click whose request failed never arrives.
MAX_PENDING_FLAGS = 10_000
# SQLite allows 32766 bound variables per statement (3.32+): 24 columns x 500 rows stays under.
MAX_ROWS_PER_STATEMENT = 500


class RecordError(RuntimeError):
    """The click could not be committed (the caller must not answer with a redirect)."""


@dataclass(slots=True)
class _Item:
    row: dict[str, Any]
    key: CounterKey
    counts: dict[str, int]
    renewal: tuple[str, datetime] | None
    reflag: Sequence[str]


def _flag_in_memory(item: _Item, reason: str) -> None:
    """Make a not yet written click a bot's, as the re-flag UPDATE does for stored ones."""
    row = item.row
    if row["is_bot"]:
        return
    row["is_bot"] = True
    row["bot_reason"] = reason
    if row["attributable"]:
        row["attributable"] = False
        row["not_attributable_reason"] = "bot"
    counts = dict(item.counts)
    counts["human_clicks"] = counts.get("human_clicks", 0) - 1
    counts["bot_clicks"] = counts.get("bot_clicks", 0) + 1
    item.counts = {k: v for k, v in counts.items() if v}


class _Batch:
    """The clicks that arrived while the previous batch was being written."""

    __slots__ = ("done", "errors", "items", "loops")

    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.done = threading.Event()
        self.errors: list[BaseException | None] | None = None  # per item, set only on failure
        # Each event loop with clicks in this batch -> the one future they all await.
        self.loops: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}

    def settle(self) -> None:
        """The batch is written (or failed): wake its threads and each loop once."""
        self.done.set()
        for loop, future in self.loops.items():
            # A closed loop (RuntimeError) has nobody waiting on it any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # it may have timed out
        future.set_result(None)


def _cancel(timer: asyncio.TimerHandle, _future: asyncio.Future[None]) -> None:
    timer.cancel()


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(RecordError("the click was not committed in time"))


class Ticket:
    """One click's place in a batch: wait for the batch's commit, then learn how it went."""

    __slots__ = ("_batch", "_future", "_index", "_timeout")

    def __init__(
        self,
        batch: _Batch,
        index: int,
        timeout: float,
        future: asyncio.Future[None] | None,
    ) -> None:
        self._batch = batch
        self._index = index
        self._timeout = timeout
        self._future = future

    def wait(self) -> None:
        """Block this thread until the click is committed (`RecordError` if it is not)."""
        if not self._batch.done.wait(self._timeout):
            raise RecordError("the click was not committed in time")
        self._check()

    async def committed(self) -> None:
        """On the loop that submitted the click: the same as `wait`, holding no thread."""
        assert self._future is not None, "submitted without a loop"
        await self._future  # shared by the batch's clicks on this loop; never cancelled
        self._check()

    def _check(self) -> None:
        errors = self._batch.errors
        if errors is not None and (error := errors[self._index]) is not None:
            raise RecordError("the click could not be stored") from error


class _Statements:
    """The writer's statements for one database, built from the models (linkgen/storage/rawsql.py
    converts each value by its column's type, by name)."""

    def __init__(self, name: str) -> None:
        d = self.d = dialect(name)
        p = d.p
        clicks = cast(Table, Click.__table__)
        self.sqlite = d.sqlite
        self.insert_clicks = Insert(d, clicks, CLICK_COLUMNS)
        self.reflagged = Rows(d, clicks, _REFLAG_KEY, "Reflagged")
        self.expires_at = d.writer(cast(Table, Link.__table__).c.expires_at)
        # Every name below is a constant of this module; values always go in as parameters.
        self.renew_sql = "UPDATE links SET expires_at = " + p + " WHERE id = " + p  # noqa: S608 - constant names
        # A click made before its client was recognised as a scanner: flagged once (is_bot
        # false -> true), its own earlier reason kept when it was not attributable already.
        self.reflag_sql = (
            "UPDATE clicks SET is_bot = TRUE, bot_reason = " + p + ", "  # noqa: S608 - constant names
            "not_attributable_reason = CASE WHEN attributable THEN 'bot' "
            "ELSE not_attributable_reason END, attributable = FALSE "
            "WHERE click_id = " + p + " AND is_bot = FALSE RETURNING " + ", ".join(_REFLAG_KEY)
        )

    def counter_key(self, raw: Sequence[Any]) -> CounterKey:
        """The counter key of a stored click from its `_REFLAG_KEY` columns."""
        row = self.reflagged.one(raw)
        return CounterKey.of(
            row.ts,
            link_id=row.link_id,
            template_id=row.template_id,
            campaign=row.campaign,
            channel=row.channel,
            media_source=row.media_source,
        )


class ClickRecorder:
    """Batches clicks from many request threads into few transactions."""

    def __init__(self, db: Database, *, timeout: float = 10.0) -> None:
        self.db = db
        self.timeout = timeout
        self._sql = _Statements(db.dialect)
        self._cond = threading.Condition(threading.Lock())
        self._open = _Batch()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._conn: Any = None  # the writer's own pooled DBAPI connection
        # click_id -> bot reason; only the writer thread touches it (see _flag_later).
        self._pending_flags: OrderedDict[str, str] = OrderedDict()
        self.batches = 0
        self.recorded = 0
        self.reflagged = 0

    def submit(
        self,
        row: dict[str, Any],
        key: CounterKey,
        counts: dict[str, int],
        renewal: tuple[str, datetime] | None = None,
        reflag: Sequence[str] = (),
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Ticket:
        """Queue one click (and its counters / link renewal) for the next group commit.

        `reflag` names earlier clicks (click ids) of the same scanner: in the same transaction
        they become bot clicks with this click's ``bot_reason`` and their counters move from
        human_clicks to bot_clicks. Called on an event loop, pass it as `loop` and await
        `Ticket.committed` there; the batch's future on that loop expires after `timeout`.
        """
        item = _Item(row, key, counts, renewal, reflag)
        future: asyncio.Future[None] | None = None
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._start()
            batch = self._open
            index = len(batch.items)
            batch.items.append(item)
            if loop is not None:
                future = batch.loops.get(loop)
                if future is None:
                    # Made here, under the lock: the writer takes the batch under it too, so
                    # every future it settles is one that was there when it took the batch.
                    future = batch.loops[loop] = loop.create_future()
                    timer = loop.call_later(self.timeout, _expire, future)
                    future.add_done_callback(functools.partial(_cancel, timer))
            if index == 0:
                self._cond.notify()
        return Ticket(batch, index, self.timeout, future)

    def _start(self) -> None:
        self._stopping = False
        self._thread = Thread(target=self._run, name="linkgen-clicks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify()
        if thread is not None:
            thread.join(timeout=30)
        with self._cond:
            self._thread = None
        self._close_conn()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._open.items and not self._stopping:
                    self._cond.wait()
                batch = self._open
                if not batch.items:
                    return  # stopping, nothing left
                self._open = _Batch()
            self._write(batch)

    # -- writing -----------------------------------------------------------------------------

    def _write(self, batch: _Batch) -> None:
        items = batch.items
        try:
            self._store(items)
        except Exception as exc:  # noqa: BLE001 - every waiting request must learn of it
            log.error("could not store %d click(s): %s", len(items), exc.__class__.__name__)
            if len(items) == 1:
                batch.errors = [exc]
            else:
                # One bad row must not fail its neighbours: try each alone.
                batch.errors = [self._store_one(item) for item in items]
        else:
            self.batches += 1
            self.recorded += len(items)
        batch.settle()

    def _store_one(self, item: _Item) -> BaseException | None:
        try:
            self._store([item])
        except Exception as exc:  # noqa: BLE001 - reported to that click's request
            return exc
        self.batches += 1
        self.recorded += 1
        return None

    def _store(self, items: list[_Item]) -> None:
        """Write clicks, counters and renewals in one transaction, and commit."""
        if self._pending_flags:
            self._take_pending_flags(items)
        counters = CounterBatch()
        renewals: dict[str, datetime] = {}
        for item in items:
            counters.add(item.key, **item.counts)
            if item.renewal is not None:
                link_id, expires_at = item.renewal
                if link_id not in renewals or renewals[link_id] < expires_at:
                    renewals[link_id] = expires_at
        with self.db.writer_turn():  # behind this process's other SQLite writers, not asleep
            missing = self._write_rows(items, counters, renewals)
        if missing:
            self._flag_later(missing)

    def _flag_later(self, missing: list[tuple[str, str]]) -> None:
        """Remember re-flagged clicks that were not stored yet, for the batch that brings them.

        One writer writes one batch at a time, so a click not found is one whose request thread
        had not handed it over when this batch was taken: a later batch (or, after a failed
        batch, a later single retry) brings it, and `_take_pending_flags` flags it there.
        """
        pending = self._pending_flags
        for click_id, reason in missing:
            pending[click_id] = reason
        while len(pending) > MAX_PENDING_FLAGS:
            pending.popitem(last=False)

    def _take_pending_flags(self, items: list[_Item]) -> None:
        pending = self._pending_flags
        for item in items:
            if (reason := pending.pop(item.row["click_id"], None)) is not None:
                _flag_in_memory(item, reason)

    def _write_rows(
        self, items: list[_Item], counters: CounterBatch, renewals: dict[str, datetime]
    ) -> list[tuple[str, str]]:
        """Write and commit; the re-flagged clicks not found (click_id, reason)."""
        sql = self._sql
        missing: list[tuple[str, str]] = []
        flagged = 0
        conn = self._connection()
        cur = conn.cursor()
        try:
            if sql.sqlite:
                cur.execute("BEGIN IMMEDIATE")
            insert = sql.insert_clicks
            for start in range(0, len(items), MAX_ROWS_PER_STATEMENT):
                chunk = [item.row for item in items[start : start + MAX_ROWS_PER_STATEMENT]]
                cur.execute(insert.rows_sql(len(chunk)), insert.many(chunk))
            for item in items:
                # After the inserts, so the earlier clicks of this same batch are found too.
                for click_id in item.reflag:
                    reason = str(item.row["bot_reason"])
                    cur.execute(sql.reflag_sql, (reason, click_id))
                    if (found := cur.fetchone()) is not None:
                        counters.add(sql.counter_key(found), human_clicks=-1, bot_clicks=1)
                        flagged += 1
                    else:
                        missing.append((click_id, reason))
            upsert_counters(OnCursor(sql.d, cur), counters.deltas)
            for link_id in sorted(renewals):
                cur.execute(sql.renew_sql, (sql.expires_at(renewals[link_id]), link_id))
            if sql.sqlite:
                cur.execute("COMMIT")
            else:
                conn.commit()
            cur.close()
        except BaseException:
            self._discard_conn()
            raise
        self.reflagged += flagged
        return missing

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.db.engine.raw_connection()
        return self._conn

    def _discard_conn(self) -> None:
        # After a failure the connection's state is unknown (a transaction may be open): drop it
        # rather than roll back on a connection that may itself be the problem.
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
            except Exception:
                log.debug("could not invalidate the click writer's connection", exc_info=True)

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("could not close the click writer's connection", exc_info=True)
