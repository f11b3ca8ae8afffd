"""Template rows (domain, allow-list) one database keeps for a second, for link writes.

Creating links in a burst would otherwise read the template each time. Each `Database` owns
one `TemplateRows` (`Database.template_rows`), so two databases (two engines) share nothing,
and it follows the template edits of the sessions its database makes (`watch`):

- a flush that inserts, updates or deletes a `Template` through the ORM marks its session:
  look-ups through that session read past the cache from then on (`edited`), so the
  transaction sees its own edit before it commits and nothing uncommitted is kept;
- the commit of such a session empties the cache: an edit made in this process (the API, the
  UI, the ORM) is seen at once by the next look-up from any session. A rollback only drops
  the mark, as the cache never held what it undid;
- an edit made by another process (or by a Core statement, past the ORM) is seen within
  `TEMPLATE_CACHE_SECONDS`, when the rows it changed expire.

Not the database's `epoch_listeners`: every link write bumps the routes epoch they follow, which
would empty this cache with each link created.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from linkgen.storage.models import Template

TEMPLATE_CACHE_SECONDS = 1.0
MAX_ENTRIES = 10_000  # past this many rows the cache starts over

_ROWS = "linkgen.template_rows"  # session.info: the TemplateRows of the session's database
_EDITED = "linkgen.templates_edited"  # session.info: this transaction flushed a Template edit

# A template's stored values: its domain and its redirect allow-list.
TemplateRow = tuple[str, tuple[str, ...]]


class TemplateRows:
    """Template rows by template id, each kept for `ttl` seconds or until an edit commits."""

    def __init__(self, *, ttl: float = TEMPLATE_CACHE_SECONDS, max_entries: int = MAX_ENTRIES):
        self.ttl = ttl
        self.max_entries = max_entries
        self._rows: dict[str, tuple[float, str, tuple[str, ...]]] = {}  # id: expires, row
        self._generation = 0
        self._lock = threading.Lock()

    # -- the cache --------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Moves with each `clear`: take it before reading rows, give it back to `keep`."""
        return self._generation

    def fresh(self, template_id: str, now: float) -> TemplateRow | None:
        """The row kept for a template, unless there is none or it expired."""
        hit = self._rows.get(template_id)
        if hit is None or hit[0] <= now:
            return None
        return hit[1], hit[2]

    def keep(
        self, generation: int, now: float, rows: Iterable[tuple[str, str, tuple[str, ...]]]
    ) -> None:
        """Keep rows (id, domain, allow-list) read at `now`, unless a `clear` came meanwhile
        (they may predate the edit that caused it)."""
        table = self._rows  # before the check: a clear() after it swaps in a new dict
        if generation != self._generation:
            return
        if len(table) > self.max_entries:
            table.clear()
        expires = now + self.ttl
        for template_id, domain, allowlist in rows:
            table[template_id] = (expires, domain, allowlist)

    def clear(self) -> None:
        """Forget every row (after a template edit commits)."""
        with self._lock:
            self._generation += 1
            self._rows = {}

    def __len__(self) -> int:
        return len(self._rows)

    # -- following a session factory's edits ------------------------------------------------

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Serve and follow the sessions `sessions` makes (and only those: the listeners are
        the factory's own, added when the database is made, never at import)."""
        sessions.configure(info={**sessions.kw.get("info", {}), _ROWS: self})
        event.listen(sessions, "after_flush", self._after_flush)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_rollback", self._after_rollback)

    @staticmethod
    def of(session: Session) -> TemplateRows | None:
        """The rows of the database that made the session (None for a session made elsewhere,
        which then reads every template)."""
        rows = session.info.get(_ROWS)
        return rows if isinstance(rows, TemplateRows) else None

    @staticmethod
    def edited(session: Session) -> bool:
        """True while the session's transaction holds a template edit it has not committed."""
        return bool(session.info.get(_EDITED))

    @staticmethod
    def _after_flush(session: Session, _flush_context: Any) -> None:
        # Still the flush's own lists here: what it inserted, updated, deleted.
        if any(
            isinstance(obj, Template) for obj in chain(session.new, session.dirty, session.deleted)
        ):
            session.info[_EDITED] = True

    def _after_commit(self, session: Session) -> None:
        if session.get_nested_transaction() is not None:
            return  # a savepoint's release: the edit is not committed yet
        if session.info.pop(_EDITED, False):
            self.clear()

    @staticmethod
    def _after_rollback(session: Session) -> None:
        if session.get_nested_transaction() is None:
            session.info.pop(_EDITED, None)
