"""Links: create one, update, delete; the rest of the family has a module each:
`link_views` (URLs and the JSON answer), `link_templates` (the template look-up),
`link_bulk` (bulk creation), `link_queries` (read, list, filter) and `link_export` (CSV, QR).

Validation and URL building are the pure functions of `linkgen.domain.links`; this module adds
the template lookup, ids, storage and the cache epoch. Choices callers rely on:

- Params are stored (and answered) in one canonical order: known AppsFlyer params in the order
  of the domain table, then custom params sorted by name. The same link therefore reads the same
  on SQLite and PostgreSQL (JSONB does not keep key order) and on every GET.
- A body naming an unknown template is a 400 naming `template_id` (the template is a field of
  the request, not the resource addressed).
- Generated shortlink ids are retried on a collision; a duplicate id the caller gave is a 409
  naming `shortlink_id`.
- `expires_at` is created_at + ttl for short links (renewed by clicks, see the click path) and
  None for long links, which never expire, and for links without a ttl (QR links that ask for
  none: printed codes must keep working).
- A long URL names its link (`lg_link`, see `linkgen.domain.links.link_ref`), so its clicks
  count for the link; links stored before it existed answer the same URL as before.
- PATCH merges the given top-level fields over the stored ones and validates the result like a
  new link; a given `params` object replaces the whole param set. `template_id`,
  `shortlink_id` and `short` cannot change (a sent link or printed QR code would silently
  break): a different value is a 400 naming the field. A new `ttl` restarts the expiry from now;
  `ttl: null` gives the channel's default again (QR: no expiry at all).
- Every create, update and delete bumps the `routes` cache epoch in the same transaction.
- A link's tags are kept twice, in one transaction: `links.tags` (what it answers, in the
  order given) and one `link_tags` row each (what `?tag=` finds through its index). A PATCH
  that sends `tags` replaces the list; the rows go with a deleted link (ON DELETE CASCADE).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    delete,
    insert,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from linkgen.domain.errors import Conflict, InvalidParameter, NotFound
from linkgen.domain.links import (
    LinkSpec,
    TemplateInfo,
    generate_shortlink_id,
    parse_link_request,
)
from linkgen.services.link_queries import LINK_ID_RE, get_link
from linkgen.services.link_templates import TemplateLookup, body_template
from linkgen.services.link_views import (
    NewLink,
    SchemeFor,
    canonical_params,
    link_to_dict,
    new_link_id,
    ttl_text,
)
from linkgen.storage.db import NO_WAIT, Database
from linkgen.storage.epochs import bump_epoch, bump_epoch_core
from linkgen.storage.models import Link, LinkTag
from linkgen.storage.types import utcnow

MAX_BULK_ROWS = 50_000
MAX_QR_LINKS = 10_000
INSERT_CHUNK = 1_000
ID_ATTEMPTS = 8

_IMMUTABLE = ("template_id", "shortlink_id", "short")


# --------------------------------------------------------------------------- transactions


@contextmanager
def write_transaction(db: Database) -> Iterator[Session]:
    """`db.session()` for link writes, in this process's writer turn (`Database.writer_turn`:
    under concurrent link creation on SQLite, ~1 ms instead of tens of ms per link)."""
    with db.writer_turn(), db.session() as session:
        yield session


# --------------------------------------------------------------------------- create


def row_values(
    spec: LinkSpec, info: TemplateInfo, now: datetime, created_by: str | None
) -> dict[str, Any]:
    return {
        "id": new_link_id(),
        "template_id": info.template_id,
        "channel": spec.channel,
        "media_source": spec.media_source,
        "campaign": spec.campaign,
        "params": canonical_params(spec.params),
        "short": spec.short,
        "shortlink_id": spec.shortlink_id,
        "ttl_seconds": spec.ttl_seconds,
        "renew_ttl": spec.renew_ttl,
        "expires_at": _expiry(spec, now) if spec.short else None,
        "created_at": now,
        "updated_at": now,
        "created_by": created_by,
        "title": spec.title,
        "tags": list(spec.tags) or None,
        "notes": spec.notes,
    }


def _expiry(spec: LinkSpec, now: datetime) -> datetime | None:
    return None if spec.ttl_seconds is None else now + timedelta(seconds=spec.ttl_seconds)


def as_link(values: Mapping[str, Any]) -> NewLink:
    return NewLink(**values)


def create_link(
    session: Session,
    body: Mapping[str, Any],
    *,
    scheme_for: SchemeFor,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Validate and store one link in the caller's transaction; returns its API shape."""
    info, spec = _validate(body, TemplateLookup(session, scheme_for))
    row = _NewRow(spec, info, row_values(spec, info, utcnow(), created_by))
    _insert_rows(session.connection(), [row])
    if row.error is not None:
        raise row.error
    bump_epoch(session)
    return link_to_dict(as_link(row.values), info)


def create_one(
    db: Database,
    body: Mapping[str, Any],
    *,
    scheme_for: SchemeFor,
    created_by: str | None = None,
) -> dict[str, Any]:
    """`create_link` committed on its own (or with concurrent ones) before the answer is built.

    The API's hot path, so it is lean: validation runs before any transaction, the row is
    written by this database's `_GroupWriter` on a Core connection (an ORM session adds
    nothing to an insert but costs a tenth of the request), and once the transaction commits
    the database's epoch listeners run as `Database.session` runs them: this process's route
    cache forgets a cached 404 for the new short link at once.
    """
    return created_link_dict(store_one(db, body, scheme_for=scheme_for, created_by=created_by))


def store_one(
    db: Database,
    body: Mapping[str, Any],
    *,
    scheme_for: SchemeFor,
    created_by: str | None = None,
) -> StoredLink:
    """The validation and commit of `create_one` (`prepare_one`, then `write_one`)."""
    return write_one(db, prepare_one(db, body, scheme_for=scheme_for, created_by=created_by))


def prepare_one(
    db: Database,
    body: Mapping[str, Any],
    *,
    scheme_for: SchemeFor,
    created_by: str | None = None,
) -> PendingLink:
    """The validation of `store_one`: the link, ready to be written (nothing is stored yet)."""
    info, spec = _validate(body, TemplateLookup(db.engine, scheme_for, db.template_rows))
    return _NewRow(spec, info, row_values(spec, info, utcnow(), created_by))


def write_one(db: Database, pending: PendingLink) -> StoredLink:
    """The commit of `store_one`. When it raises, `pending.committed` tells whether the link was
    stored all the same (the error came after the commit: an epoch listener's)."""
    _group_writer(db).write(db, pending)
    return StoredLink(pending, pending.info)


@dataclass(frozen=True)
class StoredLink:
    """A link `store_one` committed, with its template, ready to be described."""

    row: _NewRow
    info: TemplateInfo


def created_link_dict(stored: StoredLink) -> dict[str, Any]:
    """The API's answer for a link `store_one` committed."""
    return link_to_dict(as_link(stored.row.values), stored.info)


def _validate(body: Mapping[str, Any], templates: TemplateLookup) -> tuple[TemplateInfo, LinkSpec]:
    if not isinstance(body, Mapping):
        raise InvalidParameter("the body must be a JSON object", field="body")
    info = body_template(body, templates)
    return info, parse_link_request(body, info)


@dataclass(eq=False)
class _NewRow:
    """A validated link on its way into the database, and how that went."""

    spec: LinkSpec
    info: TemplateInfo
    values: dict[str, Any]
    done: bool = False
    error: BaseException | None = None

    @property
    def committed(self) -> bool:
        """True once the row is in a committed transaction."""
        return self.done and self.error is None


PendingLink = _NewRow  # what `prepare_one` gives and `write_one` stores


def _insert_rows(conn: Connection, rows: list[_NewRow]) -> None:
    """Insert link rows with one statement, drawing shortlink ids until each one is free.

    ON CONFLICT DO NOTHING: a taken id costs a retry of that row, not an aborted transaction;
    RETURNING names the rows that went in (the rowcount is -1 on PostgreSQL). A row that
    cannot go in (the shortlink id it gives is taken) gets its `error`; the others are
    inserted.
    """
    stmt = _INSERTS[conn.dialect.name]
    todo = rows
    for _ in range(ID_ATTEMPTS):
        for row in todo:
            if row.spec.short and row.spec.shortlink_id is None:
                row.values["shortlink_id"] = generate_shortlink_id()
        if len(todo) == 1:
            inserted = {found[0] for found in conn.execute(stmt, todo[0].values)}
        else:
            inserted = {found[0] for found in conn.execute(stmt, [r.values for r in todo])}
        retry: list[_NewRow] = []
        for row in todo:
            if row.values["id"] in inserted:
                continue
            if row.spec.shortlink_id is not None:
                row.error = duplicate_error(row.info.template_id, row.spec.shortlink_id)
            else:
                row.values["id"] = new_link_id()
                retry.append(row)
        todo = retry
        if not todo:
            break
    for row in todo:
        row.error = Conflict("could not find a free shortlink id; try again", field="shortlink_id")
    insert_tags(conn, [row.values for row in rows if row.error is None])


def insert_tags(conn: Connection | Session, values: Iterable[Mapping[str, Any]]) -> None:
    """The `link_tags` rows of links just inserted (their `tags` as stored)."""
    tag_rows = [{"link_id": v["id"], "tag": tag} for v in values for tag in v["tags"] or ()]
    for start in range(0, len(tag_rows), INSERT_CHUNK):
        conn.execute(insert(LinkTag), tag_rows[start : start + INSERT_CHUNK])


def _replace_tags(session: Session, link_id: str, tags: Sequence[str]) -> None:
    session.execute(delete(LinkTag).where(LinkTag.link_id == link_id))
    insert_tags(session, [{"id": link_id, "tags": tags}])


class _GroupWriter:
    """Single link creations on one database, written together when they arrive together.

    A group commit like the click recorder's, without a thread of its own: a request queues
    its row, then waits for its writer turn (on SQLite, this process's writers' lock). Whoever
    gets the turn writes every queued row in one transaction (one insert, one epoch bump, one
    commit) and marks each row done, with its own error if it has one; a request whose row was
    written while it waited answers at once. One request at a time writes alone, as before;
    concurrent ones share the transaction's fixed cost. Every row is committed before its
    request answers, and a failed transaction fails every row in it.
    """

    def __init__(self) -> None:
        self._queue_lock = threading.Lock()
        self._queue: list[_NewRow] = []
        # PostgreSQL: one writer per process too. Link writes there already queue on the
        # epoch row's lock, so this costs no parallelism and lets rows share a commit.
        self._turn = threading.Lock()

    def write(self, db: Database, row: _NewRow) -> None:
        """Store a row (alone or with others); raises the row's error."""
        if NO_WAIT.get():
            # On the event loop: the turn now or `WouldWait` before the row is queued, and the
            # row written alone, so a refusal (SQLite's lock held elsewhere) touches no other.
            with db.writer_turn():
                self._write(db, [row])
            if row.error is not None:
                raise row.error
            return
        with self._queue_lock:
            self._queue.append(row)
        with db.writer_turn() if db.dialect == "sqlite" else self._turn:
            if not row.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(db, batch)
        if row.error is not None:
            raise row.error

    @staticmethod
    def _write(db: Database, batch: list[_NewRow]) -> None:
        try:
            with db.engine.begin() as conn:
                _insert_rows(conn, batch)
                stored = any(row.error is None for row in batch)
                if stored:
                    bump_epoch_core(conn)
        except BaseException as exc:
            for row in batch:
                if row.error is None:  # rolled back with the rest
                    row.error = exc
            raise
        finally:
            for row in batch:
                row.done = True
        # Still within the writer turn: the other rows' requests answer only after this.
        if stored:
            for listener in db.epoch_listeners:
                listener()


_group_writers: weakref.WeakKeyDictionary[Engine, _GroupWriter] = weakref.WeakKeyDictionary()
_group_writers_lock = threading.Lock()


def _group_writer(db: Database) -> _GroupWriter:
    writer = _group_writers.get(db.engine)
    if writer is None:
        with _group_writers_lock:
            writer = _group_writers.setdefault(db.engine, _GroupWriter())
    return writer


_LINKS: Table = Link.__table__  # type: ignore[assignment]
_INSERTS: dict[str, Any] = {
    "postgresql": pg_insert(_LINKS).on_conflict_do_nothing().returning(_LINKS.c.id),
    "sqlite": sqlite_insert(_LINKS).on_conflict_do_nothing().returning(_LINKS.c.id),
}


def duplicate_error(template_id: str, shortlink_id: str | None) -> Conflict:
    return Conflict(
        f"template {template_id!r} already has a short link {shortlink_id!r}",
        field="shortlink_id",
    )


# --------------------------------------------------------------------------- update, delete


def update_link(
    session: Session, link_id: str, body: Mapping[str, Any], *, scheme_for: SchemeFor
) -> dict[str, Any]:
    """Apply a PATCH (see the module docstring) and answer the link's new shape."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("the body must be a JSON object", field="body")
    link = get_link(session, link_id)
    current: dict[str, Any] = {
        "template_id": link.template_id,
        "channel": link.channel,
        "media_source": link.media_source,
        "campaign": link.campaign,
        "params": dict(link.params or {}),
        "short": link.short,
        "shortlink_id": link.shortlink_id,
        "renew_ttl": link.renew_ttl,
        "title": link.title,
        "tags": list(link.tags or ()),
        "notes": link.notes,
    }
    for name in _IMMUTABLE:
        if name in body and body[name] != current[name]:
            raise InvalidParameter(
                f"{name} cannot change (links already sent would break); create a new link",
                field=name,
            )
    merged = {**current, **body}
    if "ttl" not in body:
        merged["ttl"] = ttl_text(link.ttl_seconds)
    info = TemplateLookup(session, scheme_for).require(link.template_id)
    spec = parse_link_request(merged, info)
    now = utcnow()
    link.channel = spec.channel
    link.media_source = spec.media_source
    link.campaign = spec.campaign
    link.params = canonical_params(spec.params)
    link.renew_ttl = spec.renew_ttl
    link.title = spec.title
    link.notes = spec.notes
    if list(spec.tags) != list(link.tags or ()):
        link.tags = list(spec.tags) or None
        _replace_tags(session, link.id, spec.tags)
    if "ttl" in body:
        link.ttl_seconds = spec.ttl_seconds
        if link.short:
            link.expires_at = _expiry(spec, now)
    link.updated_at = now
    session.flush()
    bump_epoch(session)
    return link_to_dict(link, info)


def delete_link(session: Session, link_id: str) -> None:
    """Delete a link (its short URL then answers 404 at click time)."""
    if not LINK_ID_RE.match(link_id):
        raise NotFound(f"no link {link_id!r}", field="id")
    deleted = session.execute(delete(Link).where(Link.id == link_id)).rowcount  # type: ignore[attr-defined]
    if not deleted:
        raise NotFound(f"no link {link_id!r}", field="id")
    bump_epoch(session)
