"""Cache epochs: a counter per cache, bumped with each edit, so every process can notice."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from linkgen.storage.models import CacheEpoch

ROUTES = "routes"  # templates and links: what the click path caches
APPS = "apps"  # apps (SDK keys, attribution settings) and their CleverTap settings: SDK caches


@lru_cache(maxsize=4)
def _bump(dialect: str) -> Any:
    """The epoch upsert, built once per dialect (it runs with every link write)."""
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    table = CacheEpoch.__table__
    return insert(table).on_conflict_do_update(
        index_elements=["name"], set_={"epoch": table.c.epoch + 1}
    )


def bump_epoch(session: Session, name: str = ROUTES) -> None:
    """Bump a cache epoch inside the caller's transaction (local caches clear on commit)."""
    session.execute(_bump(session.get_bind().dialect.name), {"name": name, "epoch": 1})
    session.info["epoch_bumped"] = True


def read_epoch(session: Session, name: str = ROUTES) -> int:
    """The current epoch (0 before the first edit)."""
    return int(session.scalar(select(CacheEpoch.epoch).where(CacheEpoch.name == name)) or 0)
