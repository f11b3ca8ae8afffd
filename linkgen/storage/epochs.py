"""Cache epochs: a counter per cache, bumped with each edit, so every process can notice.

`routes` covers templates and links (the click path's cache: `Database.session` runs the
database's `epoch_listeners` once a transaction that bumped it commits). `api_keys` moves when
an API key is revoked (the API's key cache, see `linkgen.services.accounts.ApiKeyCache`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from linkgen.storage.models import CacheEpoch

ROUTES = "routes"  # templates and links: what the click path caches
APPS = "apps"  # apps (SDK keys, attribution settings) and their CleverTap settings: SDK caches
API_KEYS = "api_keys"  # revocations: what the API's key cache holds

_READ = select(CacheEpoch.epoch).where(CacheEpoch.name == bindparam("name"))


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
    if name == ROUTES:
        session.info["epoch_bumped"] = True


def bump_epoch_core(conn: Connection, name: str = ROUTES) -> None:
    """Bump a cache epoch inside a Core transaction.

    Nothing is told locally: after the commit, the caller runs what `Database.session` would
    (the database's `epoch_listeners` for `routes`).
    """
    conn.execute(_bump(conn.dialect.name), {"name": name, "epoch": 1})


def read_epoch(conn: Session | Connection, name: str = ROUTES) -> int:
    """The current epoch (0 before the first edit)."""
    return int(conn.scalar(_READ, {"name": name}) or 0)
