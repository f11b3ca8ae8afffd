"""Links: create (one or in bulk), read, list, update, delete, export and QR data.

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

import itertools
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkgen.domain.bulk import links_to_csv
from linkgen.domain.errors import Conflict, InvalidParameter, LinkgenError, NotFound
from linkgen.domain.links import (
    KNOWN_PARAMS,
    LinkSpec,
    TemplateInfo,
    build_long_url,
    build_short_url,
    clevertap_block,
    generate_shortlink_id,
    link_ref,
    parse_link_request,
    with_qr_flag,
)
from linkgen.storage.db import Database
from linkgen.storage.epochs import bump_epoch, bump_epoch_core
from linkgen.storage.models import Link, LinkTag, Template
from linkgen.storage.types import utcnow

PARTNER = "clevertap"
MAX_BULK_ROWS = 50_000
MAX_QR_LINKS = 10_000
INSERT_CHUNK = 1_000
ID_ATTEMPTS = 8
# Ids are letters and digits: anything else (an over-long value, a NUL byte that PostgreSQL
# refuses outright) is certainly unknown and never reaches a query.
_TEMPLATE_ID_RE = re.compile(r"\A[A-Za-z0-9]{1,16}\Z")
_LINK_ID_RE = re.compile(r"\A[A-Za-z0-9]{1,32}\Z")

_KNOWN_RANK = {name: rank for rank, name in enumerate(KNOWN_PARAMS)}
_IMMUTABLE = ("template_id", "shortlink_id", "short")

SchemeFor = Callable[[str], str]
_SEQUENCE = itertools.count()


# --------------------------------------------------------------------------- ids and shapes


def new_link_id() -> str:
    """A 32-character hex id: creation time in ms, a per-process sequence, then 56 random bits.

    Ids sort in creation order (a bulk insert shares one created_at, and the list orders ties
    by id) and keep inserts at the end of the primary-key index; the random tail keeps them
    unguessable and unique across processes.
    """
    seq = next(_SEQUENCE) & 0xFFFFFF
    return f"{time.time_ns() // 1_000_000:012x}{seq:06x}{os.urandom(7).hex()}"


def canonical_params(params: Mapping[str, str]) -> dict[str, str]:
    """Known params in table order, then custom params sorted by name."""
    known = sorted((k for k in params if k in _KNOWN_RANK), key=_KNOWN_RANK.__getitem__)
    custom = sorted(k for k in params if k not in _KNOWN_RANK)
    return {k: str(params[k]) for k in (*known, *custom)}


@dataclass(frozen=True)
class LinkUrls:
    """The URLs of a link."""

    long_url: str
    short_url: str | None

    @property
    def shared_url(self) -> str:
        """The URL people get: the short one when there is one."""
        return self.short_url or self.long_url


def template_info(t: Template, scheme_for: SchemeFor) -> TemplateInfo:
    """The builder's view of a template."""
    return TemplateInfo(
        template_id=t.template_id,
        domain=t.domain,
        scheme=scheme_for(t.domain),
        redirect_allowlist=tuple(t.redirect_allowlist or ()),
    )


class LinkRow(Protocol):
    """What serializing a link reads: a stored `Link` or a just-inserted `NewLink`."""

    @property
    def id(self) -> str: ...
    @property
    def template_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def media_source(self) -> str: ...
    @property
    def campaign(self) -> str | None: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def short(self) -> bool: ...
    @property
    def shortlink_id(self) -> str | None: ...
    @property
    def ttl_seconds(self) -> int | None: ...
    @property
    def renew_ttl(self) -> bool: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def created_by(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def tags(self) -> list[str] | None: ...
    @property
    def notes(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class NewLink:
    """A row as inserted (cheaper than a transient ORM object on the hot create path)."""

    id: str
    template_id: str
    channel: str
    media_source: str
    campaign: str | None
    params: dict[str, Any]
    short: bool
    shortlink_id: str | None
    ttl_seconds: int | None
    renew_ttl: bool
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    title: str | None = None
    tags: list[str] | None = None
    notes: str | None = None


def _url_params(link: LinkRow, params: Mapping[str, str]) -> dict[str, str]:
    """`ordered_params` of a stored link whose params are already canonical (same order)."""
    out: dict[str, str] = {"pid": link.media_source}
    if link.campaign is not None:
        out["c"] = link.campaign
    out["af_channel"] = link.channel
    out.update(params)
    return out


def _urls(link: LinkRow, info: TemplateInfo, params: Mapping[str, str]) -> LinkUrls:
    long_url = build_long_url(info, _url_params(link, params), ref=link_ref(link.id))
    short_url = None
    if link.short and link.shortlink_id:
        short_url = build_short_url(info, link.shortlink_id, params)
    return LinkUrls(long_url=long_url, short_url=short_url)


def link_urls(link: LinkRow, info: TemplateInfo) -> LinkUrls:
    """The long URL and (short links) the short URL of a stored link."""
    return _urls(link, info, canonical_params(link.params or {}))


def qr_url(link: LinkRow, info: TemplateInfo) -> str:
    """What a link's QR code encodes: the short URL (else the long URL) with af_qr=true."""
    return with_qr_flag(link_urls(link, info).shared_url)


def link_to_dict(link: LinkRow, info: TemplateInfo) -> dict[str, Any]:
    """The API shape of a link (the contract's fields first)."""
    params = canonical_params(link.params or {})
    urls = _urls(link, info, params)
    base = f"/api/v1/links/{link.id}"
    return {
        "id": link.id,
        "template_id": link.template_id,
        "channel": link.channel,
        "media_source": link.media_source,
        "campaign": link.campaign,
        "params": params,
        "partner": PARTNER,
        "long_url": urls.long_url,
        "short_url": urls.short_url,
        "shortlink_id": link.shortlink_id,
        "expires_at": _iso(link.expires_at),
        "clevertap": clevertap_block(urls.shared_url, link.channel),
        "qr_png_url": f"{base}/qr.png",
        "qr_svg_url": f"{base}/qr.svg",
        "short": link.short,
        "ttl": ttl_text(link.ttl_seconds),
        "renew_ttl": link.renew_ttl,
        "created_at": _iso(link.created_at),
        "updated_at": _iso(link.updated_at),
        "created_by": link.created_by,
        "title": link.title,
        "tags": list(link.tags or ()),
        "notes": link.notes,
    }


def _iso(value: datetime | None) -> str | None:
    # catalog.iso's format (seconds, Z) without strftime, which costs more than the rest of
    # the link's serialization; stored times are always UTC.
    if value is None:
        return None
    return value.isoformat(timespec="seconds")[:19] + "Z"


def ttl_text(seconds: int | None) -> str | None:
    """A TTL as the API answers it (`31d`, `2h`, `10m`), None when the link never expires."""
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


# --------------------------------------------------------------------------- transactions


@contextmanager
def write_transaction(db: Database) -> Iterator[Session]:
    """`db.session()` for link writes, in this process's writer turn (`Database.writer_turn`:
    under concurrent link creation on SQLite, ~1 ms instead of tens of ms per link)."""
    with db.writer_turn(), db.session() as session:
        yield session


# --------------------------------------------------------------------------- templates


_TEMPLATE_COLUMNS = (Template.template_id, Template.domain, Template.redirect_allowlist)
_TEMPLATE_BY_ID = select(*_TEMPLATE_COLUMNS).where(Template.template_id == bindparam("tid"))
_TEMPLATES_BY_IDS = select(*_TEMPLATE_COLUMNS).where(
    Template.template_id.in_(bindparam("tids", expanding=True))
)


# Template rows (domain, allow-list) are kept per database engine for a second, so creating
# links in a burst does not query the template each time. An edit made through the ORM in this
# process (the API, the UI) empties the cache at once; an edit made by another process is seen
# within TEMPLATE_CACHE_SECONDS.
TEMPLATE_CACHE_SECONDS = 1.0
_TemplateRow = tuple[float, int, str, tuple[str, ...]]  # expires, generation, domain, allow-list
_template_rows: weakref.WeakKeyDictionary[Any, dict[str, _TemplateRow]] = (
    weakref.WeakKeyDictionary()
)
_template_generation = itertools.count(1)
_current_generation = 0


def _templates_changed(*_args: Any) -> None:
    global _current_generation
    _current_generation = next(_template_generation)


for _event in ("after_insert", "after_update", "after_delete"):
    event.listen(Template, _event, _templates_changed)


class TemplateLookup:
    """Templates by id for one transaction, loaded at most once each.

    Reads through an ORM session, a Core connection, or (outside any transaction) an engine,
    which lends a connection only when a template is not in the shared cache.
    """

    def __init__(self, session: Session | Connection | Engine, scheme_for: SchemeFor) -> None:
        self.session = session
        self.scheme_for = scheme_for
        self._cache: dict[str, TemplateInfo | None] = {}

    def _engine(self) -> Engine:
        source = self.session
        if isinstance(source, Session):
            bind = source.get_bind()
            return bind if isinstance(bind, Engine) else bind.engine
        return source if isinstance(source, Engine) else source.engine

    def _query(self, missing: list[str]) -> list[tuple[str, str, Any]]:
        # Prebuilt statements: building a select per call costs more than running it.
        stmt: Any = _TEMPLATE_BY_ID
        params: dict[str, Any] = {"tid": missing[0]}
        if len(missing) > 1:
            stmt, params = _TEMPLATES_BY_IDS, {"tids": sorted(missing)}
        source = self.session
        if isinstance(source, Engine):
            with source.connect() as conn:
                return [tuple(row) for row in conn.execute(stmt, params)]
        conn = source.connection() if isinstance(source, Session) else source
        return [tuple(row) for row in conn.execute(stmt, params)]

    def _remember(self, t_id: str, domain: str, allowlist: tuple[str, ...]) -> None:
        self._cache[t_id] = TemplateInfo(
            template_id=t_id,
            domain=domain,
            scheme=self.scheme_for(domain),
            redirect_allowlist=allowlist,
        )

    def preload(self, template_ids: Iterable[str]) -> None:
        """Load many templates with (at most) one query."""
        wanted = {t for t in template_ids if t not in self._cache and _TEMPLATE_ID_RE.match(t)}
        if not wanted:
            return
        shared = _template_rows.setdefault(self._engine(), {})
        now, generation = time.monotonic(), _current_generation
        missing: list[str] = []
        for t_id in wanted:
            hit = shared.get(t_id)
            if hit is not None and hit[0] > now and hit[1] == generation:
                self._remember(t_id, hit[2], hit[3])
            else:
                missing.append(t_id)
        if not missing:
            return
        found = self._query(missing)
        if len(shared) > 10_000:
            shared.clear()
        for t_id, domain, raw_allowlist in found:
            allowlist = tuple(raw_allowlist or ())
            shared[t_id] = (now + TEMPLATE_CACHE_SECONDS, generation, domain, allowlist)
            self._remember(t_id, domain, allowlist)
        for t_id in missing:
            self._cache.setdefault(t_id, None)

    def get(self, template_id: str) -> TemplateInfo | None:
        """A template, or None when there is none with this id."""
        if template_id not in self._cache:
            self.preload([template_id])
        return self._cache.get(template_id)

    def require(self, template_id: str) -> TemplateInfo:
        """A template the stored data refers to (404 if it vanished)."""
        info = self.get(template_id)
        if info is None:
            raise NotFound(f"no template {template_id!r}", field="template_id")
        return info


def _body_template(body: Mapping[str, Any], templates: TemplateLookup) -> TemplateInfo:
    raw = body.get("template_id")
    if raw is None or raw == "":
        raise InvalidParameter("template_id is required", field="template_id")
    if not isinstance(raw, str):
        raise InvalidParameter("template_id must be a string", field="template_id")
    info = templates.get(raw)
    if info is None:
        raise InvalidParameter(f"no template {raw!r}", field="template_id")
    return info


# --------------------------------------------------------------------------- create


def _row_values(
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


def _as_link(values: Mapping[str, Any]) -> NewLink:
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
    row = _NewRow(spec, info, _row_values(spec, info, utcnow(), created_by))
    _insert_rows(session.connection(), [row])
    if row.error is not None:
        raise row.error
    bump_epoch(session)
    return link_to_dict(_as_link(row.values), info)


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
    info, spec = _validate(body, TemplateLookup(db.engine, scheme_for))
    return _NewRow(spec, info, _row_values(spec, info, utcnow(), created_by))


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
    return link_to_dict(_as_link(stored.row.values), stored.info)


def _validate(body: Mapping[str, Any], templates: TemplateLookup) -> tuple[TemplateInfo, LinkSpec]:
    if not isinstance(body, Mapping):
        raise InvalidParameter("the body must be a JSON object", field="body")
    info = _body_template(body, templates)
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
                row.error = _duplicate(row.info.template_id, row.spec.shortlink_id)
            else:
                row.values["id"] = new_link_id()
                retry.append(row)
        todo = retry
        if not todo:
            break
    for row in todo:
        row.error = Conflict("could not find a free shortlink id; try again", field="shortlink_id")
    _insert_tags(conn, [row.values for row in rows if row.error is None])


def _insert_tags(conn: Connection | Session, values: Iterable[Mapping[str, Any]]) -> None:
    """The `link_tags` rows of links just inserted (their `tags` as stored)."""
    tag_rows = [{"link_id": v["id"], "tag": tag} for v in values for tag in v["tags"] or ()]
    for start in range(0, len(tag_rows), INSERT_CHUNK):
        conn.execute(insert(LinkTag), tag_rows[start : start + INSERT_CHUNK])


def _replace_tags(session: Session, link_id: str, tags: Sequence[str]) -> None:
    session.execute(delete(LinkTag).where(LinkTag.link_id == link_id))
    _insert_tags(session, [{"id": link_id, "tags": tags}])


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


def _duplicate(template_id: str, shortlink_id: str | None) -> Conflict:
    return Conflict(
        f"template {template_id!r} already has a short link {shortlink_id!r}",
        field="shortlink_id",
    )


# --------------------------------------------------------------------------- bulk


@dataclass
class BulkResult:
    """The outcome of a bulk create: per-row results in input order."""

    results: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The API shape."""
        return {"created": self.created, "failed": self.failed, "results": self.results}


@dataclass
class _Pending:
    index: int  # position in the results list
    values: dict[str, Any]
    info: TemplateInfo
    given_id: bool


def _error(row: int, exc: LinkgenError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message, "field": exc.field}
    return {"row": row, "ok": False, "error": error}


def check_bulk_size(count: int) -> None:
    """Refuse an empty or over-long bulk request."""
    if count == 0:
        raise InvalidParameter("there are no links in the request", field="body")
    if count > MAX_BULK_ROWS:
        raise InvalidParameter(
            f"at most {MAX_BULK_ROWS} links per request ({count} sent)", field="body"
        )


def create_links_bulk(
    db: Database,
    rows: Sequence[tuple[int, Any]],
    *,
    scheme_for: SchemeFor,
    created_by: str | None = None,
    default_template_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BulkResult:
    """Create many links in one transaction: good rows stored, bad rows reported.

    `rows` are (row number, JSON-shaped body) pairs; the row number is echoed in the results
    (the list index for JSON, the line number for CSV). Every row is validated first, outside
    any transaction; then, in one write transaction (this process's writer turn), shortlink ids
    are checked against each other and the database in bulk and the good rows are inserted with
    one executemany per chunk; the answer is built after the commit. So on SQLite the write
    lock, which every click's commit also needs, is held only for the inserts: validating and
    describing 40,000 rows took about two thirds of the request. `progress` receives counts of
    rows validated.
    """
    check_bulk_size(len(rows))
    templates = TemplateLookup(db.engine, scheme_for)
    templates.preload(
        str(body.get("template_id") or default_template_id or "")
        for _, body in rows
        if isinstance(body, Mapping)
    )
    now = utcnow()
    result = BulkResult(results=[{} for _ in rows])
    pending: list[_Pending] = []
    claimed: dict[tuple[str, str], int] = {}  # given ids -> row number that holds it
    done = 0
    for index, (row_no, body) in enumerate(rows):
        try:
            if not isinstance(body, Mapping):
                raise InvalidParameter("each link must be a JSON object", field=None)
            if default_template_id and not body.get("template_id"):
                body = {**body, "template_id": default_template_id}
            info = _body_template(body, templates)
            spec = parse_link_request(body, info)
            if spec.shortlink_id is not None:
                key = (info.template_id, spec.shortlink_id)
                if key in claimed:
                    raise Conflict(
                        f"shortlink_id {spec.shortlink_id!r} is also given in row {claimed[key]}",
                        field="shortlink_id",
                    )
                claimed[key] = row_no
            values = _row_values(spec, info, now, created_by)
            pending.append(_Pending(index, values, info, spec.shortlink_id is not None))
        except LinkgenError as exc:
            result.results[index] = _error(row_no, exc)
        done += 1
        if progress is not None and done % 500 == 0:
            progress(500)
    if progress is not None and done % 500:
        progress(done % 500)

    with write_transaction(db) as session:
        pending = _insert_pending(session, pending, rows, result, claimed)
    for p in pending:
        row_no = rows[p.index][0]
        result.results[p.index] = {
            "row": row_no,
            "ok": True,
            "link": link_to_dict(_as_link(p.values), p.info),
        }
    result.created = len(pending)
    result.failed = len(rows) - len(pending)
    return result


def _insert_pending(
    session: Session,
    pending: list[_Pending],
    rows: Sequence[tuple[int, Any]],
    result: BulkResult,
    claimed: dict[tuple[str, str], int],
) -> list[_Pending]:
    """Insert the validated rows whose ids are free; the rows inserted."""
    for _ in range(3):
        pending = _drop_taken_ids(session, pending, rows, result)
        _assign_generated_ids(session, pending, claimed)
        try:
            # A savepoint: if a concurrent request took an id between the check and the
            # insert, the check runs again instead of the whole request failing.
            with session.begin_nested():
                for start in range(0, len(pending), INSERT_CHUNK):
                    chunk = pending[start : start + INSERT_CHUNK]
                    session.execute(insert(Link), [p.values for p in chunk])
                _insert_tags(session, (p.values for p in pending))
            break
        except IntegrityError:
            for p in pending:
                p.values["id"] = new_link_id()
    else:
        raise Conflict("shortlink ids kept colliding with concurrent requests; try again")
    if pending:
        bump_epoch(session)
    return pending


def _existing_ids(session: Session, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    by_template: dict[str, list[str]] = {}
    for t_id, s_id in keys:
        by_template.setdefault(t_id, []).append(s_id)
    taken: set[tuple[str, str]] = set()
    for t_id, ids in by_template.items():
        for start in range(0, len(ids), INSERT_CHUNK):
            found = session.scalars(
                select(Link.shortlink_id).where(
                    Link.template_id == t_id,
                    Link.shortlink_id.in_(ids[start : start + INSERT_CHUNK]),
                )
            )
            taken.update((t_id, s) for s in found if s is not None)
    return taken


def _drop_taken_ids(
    session: Session, pending: list[_Pending], rows: Sequence[tuple[int, Any]], result: BulkResult
) -> list[_Pending]:
    given = [(p.info.template_id, p.values["shortlink_id"]) for p in pending if p.given_id]
    taken = _existing_ids(session, given)
    if not taken:
        return pending
    kept: list[_Pending] = []
    for p in pending:
        key = (p.info.template_id, p.values["shortlink_id"])
        if p.given_id and key in taken:
            exc = _duplicate(*key)
            result.results[p.index] = _error(rows[p.index][0], exc)
        else:
            kept.append(p)
    return kept


def _assign_generated_ids(
    session: Session, pending: list[_Pending], claimed: Mapping[tuple[str, str], int]
) -> None:
    used = set(claimed)
    todo = [p for p in pending if p.values["short"] and not p.given_id]
    for _ in range(ID_ATTEMPTS):
        fresh: list[_Pending] = []
        for p in todo:
            key = (p.info.template_id, generate_shortlink_id())
            while key in used:
                key = (p.info.template_id, generate_shortlink_id())
            used.add(key)
            p.values["shortlink_id"] = key[1]
            fresh.append(p)
        taken = _existing_ids(
            session, ((p.info.template_id, p.values["shortlink_id"]) for p in fresh)
        )
        todo = [p for p in fresh if (p.info.template_id, p.values["shortlink_id"]) in taken]
        if not todo:
            return
    raise Conflict("could not find free shortlink ids; try again", field="shortlink_id")


# --------------------------------------------------------------------------- read


def get_link(session: Session, link_id: str) -> Link:
    """A link by id, or 404."""
    link = session.get(Link, link_id) if _LINK_ID_RE.match(link_id) else None
    if link is None:
        raise NotFound(f"no link {link_id!r}", field="id")
    return link


def get_link_dict(session: Session, link_id: str, *, scheme_for: SchemeFor) -> dict[str, Any]:
    """A link's API shape."""
    link = get_link(session, link_id)
    return link_to_dict(link, TemplateLookup(session, scheme_for).require(link.template_id))


@dataclass(frozen=True)
class LinkFilter:
    """List filters: exact campaign, channel, template and tag (case-insensitive, as tags are
    kept lower-case); `q` searches several columns, the title among them."""

    campaign: str | None = None
    channel: str | None = None
    template_id: str | None = None
    q: str | None = None
    tag: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LinkFilter:
        """Filters from query arguments (empty means no filter)."""
        values: dict[str, str | None] = {}
        for name in ("campaign", "channel", "template_id", "q", "tag"):
            raw = args.get(name)
            if raw is not None and len(raw) > 200:
                raise InvalidParameter(f"{name} is longer than 200 characters", field=name)
            if raw is not None and "\x00" in raw:
                raise InvalidParameter(f"{name} must not contain a NUL character", field=name)
            values[name] = raw or None
        if values["tag"] is not None:
            values["tag"] = values["tag"].strip().lower() or None
        return cls(**values)

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        return any((self.campaign, self.channel, self.template_id, self.q, self.tag))

    def apply(self, query: Select[Any]) -> Select[Any]:
        """Add the filters to a query on Link."""
        if self.campaign is not None:
            query = query.where(Link.campaign == self.campaign)
        if self.channel is not None:
            query = query.where(Link.channel == self.channel)
        if self.template_id is not None:
            query = query.where(Link.template_id == self.template_id)
        if self.tag is not None:
            # ix_link_tags_tag: the ids of the tag's links, then the links by primary key.
            tagged = select(LinkTag.link_id).where(LinkTag.tag == self.tag)
            query = query.where(Link.id.in_(tagged))
        if self.q is not None:
            escaped = self.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            query = query.where(
                or_(
                    func.lower(Link.campaign).like(pattern, escape="\\"),
                    func.lower(Link.media_source).like(pattern, escape="\\"),
                    func.lower(Link.shortlink_id).like(pattern, escape="\\"),
                    func.lower(Link.title).like(pattern, escape="\\"),
                    Link.id == self.q,
                )
            )
        return query


def _parse_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    stamp, sep, link_id = cursor.partition("|")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        when = None
    if not sep or when is None or when.tzinfo is None or not _LINK_ID_RE.match(link_id):
        raise InvalidParameter("cursor is not one this API gave out", field="cursor")
    return when, link_id


def _cursor_of(link: Link) -> str:
    return f"{link.created_at.isoformat()}|{link.id}"


def _newest_first(query: Select[Any], after: tuple[datetime, str] | None) -> Select[Any]:
    if after is not None:
        when, link_id = after
        query = query.where(
            or_(Link.created_at < when, and_(Link.created_at == when, Link.id < link_id))
        )
    return query.order_by(Link.created_at.desc(), Link.id.desc())


def list_links(
    session: Session,
    filters: LinkFilter,
    *,
    cursor: str | None,
    limit: int,
    scheme_for: SchemeFor,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of links, newest first; returns the items and the next page's cursor key."""
    query = _newest_first(filters.apply(select(Link)), _parse_cursor(cursor)).limit(limit + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    templates = TemplateLookup(session, scheme_for)
    templates.preload(link.template_id for link in rows)
    items = [link_to_dict(link, templates.require(link.template_id)) for link in rows]
    return items, (_cursor_of(rows[-1]) if more and rows else None)


def iter_links(
    session: Session, filters: LinkFilter, *, chunk: int = 1_000
) -> Iterator[list[Link]]:
    """All matching links, newest first, in chunks (keyset pages: memory stays bounded)."""
    after: tuple[datetime, str] | None = None
    while True:
        rows = list(session.scalars(_newest_first(filters.apply(select(Link)), after).limit(chunk)))
        if not rows:
            return
        yield rows
        if len(rows) < chunk:
            return
        after = (rows[-1].created_at, rows[-1].id)
        session.expunge_all()


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
    if not _LINK_ID_RE.match(link_id):
        raise NotFound(f"no link {link_id!r}", field="id")
    deleted = session.execute(delete(Link).where(Link.id == link_id)).rowcount  # type: ignore[attr-defined]
    if not deleted:
        raise NotFound(f"no link {link_id!r}", field="id")
    bump_epoch(session)


# --------------------------------------------------------------------------- export, QR


def export_csv_chunks(
    session: Session, filters: LinkFilter, *, scheme_for: SchemeFor
) -> Iterator[str]:
    """The CSV export (links_to_csv's format) in pieces, so large exports stream.

    A first pass collects the param names (the header needs them all), then the rows are
    written chunk by chunk with the same columns.
    """
    names: set[str] = set()
    only_params = filters.apply(select(Link.params)).execution_options(yield_per=2_000)
    for params in session.scalars(only_params):
        names.update(params or ())
    # links_to_csv names columns in first-seen order: a leading row holding every name fixes
    # the columns for each chunk; that row (all empty cells) and repeated headers are cut.
    column_row = {"params": dict.fromkeys(canonical_params(dict.fromkeys(names, "")))}
    templates = TemplateLookup(session, scheme_for)
    first = True
    for query_rows in iter_links(session, filters):
        templates.preload(link.template_id for link in query_rows)
        dicts = [link_to_dict(link, templates.require(link.template_id)) for link in query_rows]
        text = links_to_csv([column_row, *dicts])
        header, _, rest = text.partition("\r\n")
        _, _, body = rest.partition("\r\n")
        yield (header + "\r\n" + body) if first else body
        first = False
    if first:
        yield links_to_csv([])


def qr_targets(
    session: Session,
    *,
    ids: Sequence[str] | None,
    campaign: str | None,
    scheme_for: SchemeFor,
) -> list[tuple[str, str]]:
    """(file name, QR data) for the given link ids or a campaign's links.

    File names are the shortlink id (else the link id). Unknown ids are a 400 naming
    `ids[i]`; a campaign without links is a 404.
    """
    templates = TemplateLookup(session, scheme_for)
    if ids is not None:
        valid = [i for i in ids if _LINK_ID_RE.match(i)]
        found: dict[str, Link] = {}
        for start in range(0, len(valid), INSERT_CHUNK):
            for link in session.scalars(
                select(Link).where(Link.id.in_(valid[start : start + INSERT_CHUNK]))
            ):
                found[link.id] = link
        for pos, link_id in enumerate(ids):
            if link_id not in found:
                raise InvalidParameter(f"no link {link_id!r}", field=f"ids[{pos}]")
        links = [found[i] for i in ids]
    else:
        links = []
        for chunk in iter_links(session, LinkFilter(campaign=campaign)):
            links.extend(chunk)
            if len(links) > MAX_QR_LINKS:
                raise InvalidParameter(
                    f"campaign has more than {MAX_QR_LINKS} links; ask by ids", field="campaign"
                )
        if not links:
            raise NotFound(f"no links in campaign {campaign!r}", field="campaign")
    templates.preload(link.template_id for link in links)
    return [
        (link.shortlink_id or link.id, qr_url(link, templates.require(link.template_id)))
        for link in links
    ]


def link_qr_data(session: Session, link_id: str, *, scheme_for: SchemeFor) -> str:
    """The data one link's QR code encodes."""
    link = get_link(session, link_id)
    return qr_url(link, TemplateLookup(session, scheme_for).require(link.template_id))
