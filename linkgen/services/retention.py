"""Retention: delete raw clicks and launches past every attribution window.

Reports read `stat_counters`, never the raw rows, so deleting old rows changes no figure. The
longest window that reads clicks is 30 days (id matching); the default keeps 90 days.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from linkgen.storage.db import Database
from linkgen.storage.models import Click, Launch

MIN_DAYS = 31  # never below the longest click lookback (30 days)


def delete_before(db: Database, cutoff: datetime, *, batch: int = 10_000) -> dict[str, int]:
    """Delete clicks and launches older than `cutoff`, one batch per transaction."""
    deleted = {"clicks": 0, "launches": 0}
    for name, model in (("clicks", Click), ("launches", Launch)):
        while True:
            with db.session() as session:
                n = _delete_batch(session, model, cutoff, batch)
            deleted[name] += n
            if n < batch:
                break
    return deleted


def _delete_batch(
    session: Session, model: type[Click] | type[Launch], cutoff: datetime, batch: int
) -> int:
    # Small batches keep each transaction short beside the click writer.
    ids = select(model.id).where(model.ts < cutoff).order_by(model.id).limit(batch)
    result = session.execute(
        delete(model).where(model.id.in_(ids.scalar_subquery())),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)
