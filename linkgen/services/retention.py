"""Retention: delete raw clicks and launches past every attribution window.

Reports read `stat_counters`, never the raw rows, so deleting old rows changes no figure. The
longest window that reads clicks is 30 days (id matching); the default keeps 90 days.

Rows go oldest first, in batches of one short transaction each, so the click writer and the
launches never wait long on them. Each batch walks the `ts` index (`ix_clicks_ts`,
`ix_launches_ts`) from where the previous batch stopped: it reads only the rows it deletes,
so a batch costs the same at the start of a run as at its end, whatever the table's size.
(Ordering by primary key instead reads, in every batch, past the index entries of the rows the
earlier batches deleted, and the final batch reads the rest of the table to learn that no
old row is left.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningDelete

from linkgen.storage.db import Database
from linkgen.storage.models import Click, Launch

MIN_DAYS = 31  # never below the longest click lookback (30 days)

Model = type[Click] | type[Launch]


def delete_before(db: Database, cutoff: datetime, *, batch: int = 10_000) -> dict[str, int]:
    """Delete clicks and launches older than `cutoff`, one batch per transaction."""
    deleted = {"clicks": 0, "launches": 0}
    for name, model in (("clicks", Click), ("launches", Launch)):
        since: datetime | None = None
        while True:
            with db.session() as session:
                n, since = delete_batch(session, model, cutoff, batch, since)
            deleted[name] += n
            if n < batch:
                break
    return deleted


def batch_statement(
    model: Model, cutoff: datetime, batch: int, since: datetime | None = None
) -> ReturningDelete[datetime]:
    """Delete the `batch` oldest rows older than `cutoff` (and not older than `since`),
    returning their times."""
    ids = select(model.id).where(model.ts < cutoff)
    if since is not None:
        # Rows at exactly `since` may remain (the previous batch's limit fell among them).
        ids = ids.where(model.ts >= since)
    ids = ids.order_by(model.ts).limit(batch)
    return (
        delete(model)
        .where(model.id.in_(ids.scalar_subquery()))
        .returning(model.ts)
        .execution_options(synchronize_session=False)
    )


def delete_batch(
    session: Session, model: Model, cutoff: datetime, batch: int, since: datetime | None = None
) -> tuple[int, datetime | None]:
    """Run one batch; returns (rows deleted, where the next batch starts)."""
    times = session.scalars(batch_statement(model, cutoff, batch, since)).all()
    return len(times), max(times, default=since)
