"""Links in bulk: validated outside the write transaction, then inserted in chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkgen.domain.errors import Conflict, InvalidParameter, LinkgenError
from linkgen.domain.links import (
    TemplateInfo,
    generate_shortlink_id,
    parse_link_request,
)
from linkgen.services.link_templates import TemplateLookup, body_template
from linkgen.services.link_views import SchemeFor, link_to_dict, new_link_id
from linkgen.services.links import (
    ID_ATTEMPTS,
    INSERT_CHUNK,
    MAX_BULK_ROWS,
    as_link,
    duplicate_error,
    insert_tags,
    row_values,
    write_transaction,
)
from linkgen.storage.db import Database
from linkgen.storage.epochs import bump_epoch
from linkgen.storage.models import Link
from linkgen.storage.types import utcnow

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
    templates = TemplateLookup(db.engine, scheme_for, db.template_rows)
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
            info = body_template(body, templates)
            spec = parse_link_request(body, info)
            if spec.shortlink_id is not None:
                key = (info.template_id, spec.shortlink_id)
                if key in claimed:
                    raise Conflict(
                        f"shortlink_id {spec.shortlink_id!r} is also given in row {claimed[key]}",
                        field="shortlink_id",
                    )
                claimed[key] = row_no
            values = row_values(spec, info, now, created_by)
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
            "link": link_to_dict(as_link(p.values), p.info),
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
                insert_tags(session, (p.values for p in pending))
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
            exc = duplicate_error(*key)
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
