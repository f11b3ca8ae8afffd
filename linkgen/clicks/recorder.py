"""Durable click capture with group commit.

A request thread hands its click to `ClickRecorder.record` and waits; one writer thread per
process takes every click waiting at that moment (up to `max_batch`), writes them, their
counter increments and the short links' renewed expiries in ONE transaction, commits, and only
then releases the waiting requests. So a redirect is never answered before its click is durable,
yet a burst of N concurrent clicks costs one commit rather than N.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update

from linkgen.storage.counters import CounterBatch, CounterKey
from linkgen.storage.db import Database
from linkgen.storage.models import Click, Link

log = logging.getLogger("linkgen.clicks")


class RecordError(RuntimeError):
    """The click could not be committed (the caller must not answer with a redirect)."""


@dataclass(slots=True)
class _Pending:
    row: dict[str, Any]
    key: CounterKey
    counts: dict[str, int]
    renewal: tuple[str, datetime] | None
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class ClickRecorder:
    """Batches clicks from many request threads into few transactions."""

    def __init__(self, db: Database, *, max_batch: int = 1000, timeout: float = 10.0) -> None:
        self.db = db
        self.max_batch = max_batch
        self.timeout = timeout
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.recorded = 0

    def record(
        self,
        row: dict[str, Any],
        key: CounterKey,
        counts: dict[str, int],
        renewal: tuple[str, datetime] | None = None,
    ) -> None:
        """Store one click (and its counters / link renewal); returns once committed."""
        self._ensure_started()
        pending = _Pending(row, key, counts, renewal)
        self._queue.put(pending)
        if not pending.done.wait(self.timeout):
            raise RecordError("the click was not committed in time")
        if pending.error is not None:
            raise RecordError("the click could not be stored") from pending.error

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="linkgen-click-writer", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop the writer thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout=30)
        self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[_Pending]) -> None:
        counters = CounterBatch()
        renewals: dict[str, datetime] = {}
        for p in batch:
            counters.add(p.key, **p.counts)
            if p.renewal is not None:
                link_id, expires_at = p.renewal
                if link_id not in renewals or renewals[link_id] < expires_at:
                    renewals[link_id] = expires_at
        error: BaseException | None = None
        try:
            with self.db.engine.begin() as conn:
                conn.execute(insert(Click), [p.row for p in batch])
                counters.write(conn)
                for link_id in sorted(renewals):
                    conn.execute(
                        update(Link).where(Link.id == link_id).values(expires_at=renewals[link_id])
                    )
        except Exception as exc:  # noqa: BLE001 - every waiting request must learn of it
            log.error("could not store %d click(s): %s", len(batch), exc.__class__.__name__)
            error = exc
        else:
            self.batches += 1
            self.recorded += len(batch)
        if error is not None and len(batch) > 1:
            # One bad row must not fail its neighbours: try each alone.
            for p in batch:
                self._write([p])
            return
        for p in batch:
            p.error = error
            p.done.set()
