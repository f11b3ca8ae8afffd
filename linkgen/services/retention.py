"""Retention: delete raw clicks and launches past every attribution window.

Reports read `stat_counters`, never the raw rows, so deleting old rows changes no figure. The
longest window that reads clicks is 30 days (id matching); the default keeps 90 days.

Rows go oldest first, in batches of one short transaction each, so the click writer and the
launches never wait long on them. A batch is a time range on the `ts` index (`ix_clicks_ts`,
`ix_launches_ts`): it finds the time of the `batch`-th oldest row left (reading `batch` index
entries), then deletes `after < ts <= that time` with one range scan. So each batch reads about
what it deletes, whatever the table's size, and the plan cannot turn into a scan of the table
(a `DELETE ... WHERE id IN (SELECT ... LIMIT n)` may be planned as a hash join over the whole
table; ordering batches by primary key re-read, in every batch, the index entries of the rows
the earlier batches had deleted, and the last batch read the rest of the table). Rows sharing
the boundary instant go in the same batch, which can therefore exceed `batch` by a few.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from linkgen.storage.db import Database
from linkgen.storage.models import Click, Launch
from linkgen.storage.types import utcnow

MIN_DAYS = 31  # never below the longest click lookback (30 days)
MAX_DAYS = 3650

log = logging.getLogger("linkgen.retention")

Model = type[Click] | type[Launch]


def delete_before(db: Database, cutoff: datetime, *, batch: int = 10_000) -> dict[str, int]:
    """Delete clicks and launches older than `cutoff`, one batch per transaction."""
    deleted = {"clicks": 0, "launches": 0}
    for name, model in (("clicks", Click), ("launches", Launch)):
        after: datetime | None = None
        while True:
            with db.session() as session:
                n, after = delete_batch(session, model, cutoff, batch, after)
            deleted[name] += n
            if after is None:
                break
    return deleted


def _window(model: Model, cutoff: datetime, after: datetime | None) -> list[ColumnElement[bool]]:
    conditions = [model.ts < cutoff]
    if after is not None:
        conditions.append(model.ts > after)
    return conditions


def delete_batch(
    session: Session, model: Model, cutoff: datetime, batch: int, after: datetime | None = None
) -> tuple[int, datetime | None]:
    """Delete the `batch` oldest rows with `after < ts < cutoff` (and any sharing the last
    one's time). Returns (rows deleted, the `after` of the next batch, or None when no old
    row is left)."""
    window = _window(model, cutoff, after)
    upper = session.scalar(
        select(model.ts).where(*window).order_by(model.ts).offset(batch - 1).limit(1)
    )
    if upper is not None:
        window.append(model.ts <= upper)
    result = session.execute(
        delete(model).where(*window), execution_options={"synchronize_session": False}
    )
    return int(getattr(result, "rowcount", 0) or 0), upper


class RetentionSchedule:
    """`LINKGEN_RETENTION_DAYS` applied by a worker: every `every` seconds a round deletes what
    is older than `days`, one batch per `step()` so the worker's postback loop goes on between
    batches. Several workers may each run it: a batch another one already deleted deletes 0."""

    def __init__(
        self,
        db: Database,
        days: int,
        *,
        every: float = 3600.0,
        batch: int = 10_000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.days = days
        self.every = every
        self.batch = batch
        self.clock = clock or utcnow
        self._due = 0.0  # monotonic time of the next round; the first comes at once
        self._round: list[tuple[str, Model, datetime | None]] = []
        self._cutoff: datetime | None = None
        self.deleted = {"clicks": 0, "launches": 0}
        self._round_deleted = {"clicks": 0, "launches": 0}
        self.rounds = 0

    def step(self) -> bool:
        """Delete one batch when a round is due or under way; True when it did any work."""
        if not self._round:
            if time.monotonic() < self._due:
                return False
            self._cutoff = self.clock() - timedelta(days=self.days)
            self._round = [("clicks", Click, None), ("launches", Launch, None)]
            self._round_deleted = {"clicks": 0, "launches": 0}
        assert self._cutoff is not None
        name, model, after = self._round[0]
        with self.db.session() as session:
            n, after = delete_batch(session, model, self._cutoff, self.batch, after)
        self.deleted[name] += n
        self._round_deleted[name] += n
        if after is None:
            self._round.pop(0)
        else:
            self._round[0] = (name, model, after)
        if not self._round:
            self.rounds += 1
            self._due = time.monotonic() + self.every
            done = self._round_deleted
            if done["clicks"] or done["launches"]:
                log.info(
                    "retention: deleted %d click(s) and %d launch(es) older than %d days",
                    done["clicks"],
                    done["launches"],
                    self.days,
                )
        return True
