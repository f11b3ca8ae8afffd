"""The postback outbox after enqueueing: the log (list, read, retry, replay) and the storage
steps of the delivery worker (claim, finish, heartbeat).

Life of a row (see `linkgen.services.outbox` for how rows are written):

    queued --claim--> sending --200--> sent           (records CleverTap refused: failed)
                         |-- 401/400 -----> failed      (retrying the same call cannot help)
                         |-- 429/5xx/no connection -> queued (backoff) ... failed after 24 h
                         |-- no answer (timeout, 504, connection dropped) -> in_doubt
                         |-- lease expired, call never started (worker died) -> queued
                         '-- lease expired, call started (worker died mid-call) -> in_doubt

    in_doubt --after `reconcile_after`, CleverTap's Get Events API lists its linkgen_id--> sent
             |-- the events API does not list it -----------------------------------> queued
             '-- the events API fails: in_doubt again (backoff) ... failed after 24 h
                 ("may or may not have been delivered")

`in_doubt` exists because CleverTap's upload API has no idempotency: a call that may have
reached CleverTap is never sent again blindly, only after CleverTap's events API says it does
not have it.

A claim sets `status='sending'`, `lease_until`, `attempts+1` and `next_attempt_at=NULL` in one
committed statement before anything is sent; right before its call, the worker commits the
call's start time into `next_attempt_at` (`mark_started`), so a dead worker's rows whose call
never started go straight back to `queued`. On PostgreSQL claims skip rows another worker holds
(FOR UPDATE SKIP LOCKED), on SQLite the writer lock (BEGIN IMMEDIATE) serialises claims. Each
later update is one `UPDATE ... WHERE id IN (...)` per outcome, never one statement per row.

An `in_doubt` row keeps its state in plain columns: `next_attempt_at` is when it is checked
next, `lease_until` marks the worker checking it, and `response` is `{"status": "unknown",
"lookups": n}` (failed events API lookups so far, for the backoff) until CleverTap's answer is
known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import CursorResult, and_, delete, select, update
from sqlalchemy.orm import Session

from linkgen.domain.errors import Conflict, InvalidParameter, NotFound
from linkgen.services.catalog import iso
from linkgen.storage.models import Event, Launch, Postback, WorkerHeartbeat

IN_DOUBT: Final = "in_doubt"
STATUSES: Final = ("queued", "sending", IN_DOUBT, "sent", "failed", "skipped")
KINDS: Final = ("install", "reengagement", "event")
MAX_AGE: Final = timedelta(hours=24)  # transient failures are retried this long
MAX_ERROR_CHARS: Final = 2000
# Rows whose status a worker may still overwrite with "sent" (a 200 is the truth).
_NOT_SENT: Final = ("sending", "queued", "failed", IN_DOUBT)
WORKER_STOPPED: Final = (
    "The worker stopped during its call to CleverTap, so its answer was never recorded."
)
# The `response` of a row CleverTap's events API confirmed (the upload's own answer was lost).
CONFIRMED_RESPONSE: Final = {"status": "success", "confirmed_by": "clevertap_events_api"}


# --- the log (API, UI, CLI) ------------------------------------------------------------------


def postback_to_dict(p: Postback) -> dict[str, Any]:
    """The API shape of a postback (records never carry credentials)."""
    return {
        "id": p.id,
        "linkgen_id": p.linkgen_id,
        "app_id": p.app_id,
        "kind": p.kind,
        "status": p.status,
        "reason": p.reason,
        "record": p.record,
        "attempts": p.attempts,
        "last_status": p.last_status,
        "response": p.response,
        "last_error": p.last_error,
        "created_at": iso(p.created_at),
        "sent_at": iso(p.sent_at),
        # For in_doubt: when CleverTap's events API is asked (again) whether it arrived.
        "next_attempt_at": iso(p.next_attempt_at) if p.status in ("queued", IN_DOUBT) else None,
        "endpoint": p.endpoint,
    }


def _choice(value: str | None, allowed: Sequence[str], field: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise InvalidParameter(f"{field} must be one of {', '.join(allowed)}", field=field)
    return value


def list_postbacks(
    session: Session,
    *,
    app_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[Postback], int | None]:
    """A page of postbacks, newest first; bad filter values are a 400 naming the filter."""
    status = _choice(status, STATUSES, "status")
    kind = _choice(kind, KINDS, "kind")
    query = select(Postback).order_by(Postback.id.desc()).limit(limit + 1)
    if app_id:
        query = query.where(Postback.app_id == app_id)
    if status:
        query = query.where(Postback.status == status)
    if kind:
        query = query.where(Postback.kind == kind)
    if before is not None:
        query = query.where(Postback.id < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


@dataclass(frozen=True)
class PostbackSource:
    """What caused a postback, as the log shows it: the event, the customer and the link."""

    event_name: str | None
    customer_user_id: str | None
    link_id: str | None


def postback_sources(session: Session, rows: Sequence[Postback]) -> dict[int, PostbackSource]:
    """The launch or event behind each postback of a page: two queries, whatever its size."""
    launch_ids = {p.source_id for p in rows if p.kind != "event"}
    event_keys = {(p.app_id, p.source_id) for p in rows if p.kind == "event"}
    launches: dict[str, Launch] = {}
    if launch_ids:
        found = session.scalars(select(Launch).where(Launch.launch_id.in_(launch_ids)))
        launches = {launch.launch_id: launch for launch in found}
    events: dict[tuple[str, str], Event] = {}
    if event_keys:
        query = select(Event).where(Event.event_id.in_({key[1] for key in event_keys}))
        events = {(e.app_id, e.event_id): e for e in session.scalars(query)}
    out: dict[int, PostbackSource] = {}
    for p in rows:
        record = p.record or {}
        name = record.get("evtName")
        customer = record.get("objectId") or record.get("identity")
        if p.kind == "event":
            event = events.get((p.app_id, p.source_id))
            out[p.id] = PostbackSource(
                name or (event.event_name if event else None),
                customer or (event.customer_user_id if event else None),
                (event.re_link_id or event.link_id) if event else None,
            )
        else:
            launch = launches.get(p.source_id)
            out[p.id] = PostbackSource(
                name,
                customer or (launch.customer_user_id if launch else None),
                launch.link_id if launch else None,
            )
    return out


def get_postback(session: Session, postback_id: int) -> Postback:
    """A postback by id, or 404."""
    row = session.get(Postback, postback_id)
    if row is None:
        raise NotFound(f"no postback {postback_id}", field="postback_id")
    return row


def retry_postback(session: Session, postback_id: int, *, now: datetime) -> Postback:
    """Queue a failed postback again, due now, with a fresh 24 hours of retries."""
    row = session.scalar(select(Postback).where(Postback.id == postback_id).with_for_update())
    if row is None:
        raise NotFound(f"no postback {postback_id}", field="postback_id")
    if row.status != "failed":
        raise Conflict(
            f"postback {postback_id} is {row.status}: only a failed postback can be retried",
            field="status",
        )
    row.status = "queued"
    row.next_attempt_at = now
    row.lease_until = None
    row.give_up_at = now + MAX_AGE
    session.flush()
    return row


def requeue_failed(
    session: Session, *, app_id: str | None, since: datetime | None, now: datetime
) -> int:
    """Queue every failed postback again (of one app, created since a time); returns how many."""
    query = update(Postback).where(Postback.status == "failed")
    if app_id:
        query = query.where(Postback.app_id == app_id)
    if since is not None:
        query = query.where(Postback.created_at >= since)
    return _run(
        session,
        query.values(
            status="queued", next_attempt_at=now, lease_until=None, give_up_at=now + MAX_AGE
        ),
    )


# --- the worker's storage steps ----------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A row a worker holds until `lease_until`."""

    id: int
    app_id: str
    account_id: str | None
    endpoint: str | None
    record: dict[str, Any]
    attempts: int
    created_at: datetime
    give_up_at: datetime | None
    response: Mapping[str, Any] | None = None

    def deadline(self, max_age: timedelta = MAX_AGE) -> datetime:
        """When transient failures stop being retried."""
        return self.give_up_at or self.created_at + max_age


def expire_leases(session: Session, *, now: datetime, reconcile_at: datetime) -> tuple[int, int]:
    """Rows of workers that died holding them: `(back to queued, now in doubt)`.

    A row whose call had not started (`next_attempt_at` still NULL from the claim) is queued
    again, due at once; a row whose call had started may have reached CleverTap and waits in
    doubt until `reconcile_at` (see the module docstring).
    """
    expired = and_(Postback.status == "sending", Postback.lease_until <= now)
    requeued = _run(
        session,
        update(Postback)
        .where(expired, Postback.next_attempt_at.is_(None))
        .values(status="queued", lease_until=None, next_attempt_at=now),
    )
    doubted = _run(
        session,
        update(Postback)
        .where(expired)
        .values(
            status=IN_DOUBT,
            lease_until=None,
            next_attempt_at=reconcile_at,
            last_status=None,
            last_error=WORKER_STOPPED,
            response={"status": "unknown", "lookups": 0},
        ),
    )
    return requeued, doubted


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Take up to `limit` queued rows whose time has come. Commit before sending anything.

    Call `expire_leases` first (in the same transaction) so a dead worker's unsent rows are
    among them.
    """
    return _claim(
        session,
        status="queued",
        now=now,
        limit=limit,
        values={
            "status": "sending",
            "lease_until": lease_until,
            "next_attempt_at": None,  # set by mark_started when the call begins
            "attempts": Postback.attempts + 1,
        },
    )


def claim_in_doubt(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Take up to `limit` in-doubt rows due for a check with CleverTap's events API.

    They stay `in_doubt`; `lease_until` (also written to `next_attempt_at`, so no other worker
    finds them due meanwhile) identifies this worker's hold in the updates that follow.
    """
    return _claim(
        session,
        status=IN_DOUBT,
        now=now,
        limit=limit,
        values={"lease_until": lease_until, "next_attempt_at": lease_until},
    )


def _claim(
    session: Session, *, status: str, now: datetime, limit: int, values: dict[str, Any]
) -> list[Claimed]:
    due = (
        select(Postback.id)
        .where(Postback.status == status, Postback.next_attempt_at <= now)
        .order_by(Postback.next_attempt_at, Postback.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the writer lock anyway
    )
    stmt = (
        update(Postback)
        .where(Postback.id.in_(due.scalar_subquery()))
        .values(**values)
        .returning(
            Postback.id,
            Postback.app_id,
            Postback.account_id,
            Postback.endpoint,
            Postback.record,
            Postback.attempts,
            Postback.created_at,
            Postback.give_up_at,
            Postback.response,
        )
    )
    rows = session.execute(stmt, execution_options={"synchronize_session": False}).all()
    claimed = [
        Claimed(
            id=r.id,
            app_id=r.app_id,
            account_id=r.account_id,
            endpoint=r.endpoint,
            record=dict(r.record or {}),
            attempts=r.attempts,
            created_at=r.created_at,
            give_up_at=r.give_up_at,
            response=r.response,
        )
        for r in rows
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


def _held(ids: Iterable[int], lease_until: datetime, status: str = "sending") -> Any:
    # Only rows this worker still holds: if its lease ran out and another worker took them,
    # that worker's outcome stands.
    return and_(
        Postback.id.in_(list(ids)),
        Postback.status == status,
        Postback.lease_until == lease_until,
    )


def _run(session: Session, stmt: Any) -> int:
    result = cast(
        "CursorResult[Any]",
        session.execute(stmt, execution_options={"synchronize_session": False}),
    )
    return int(result.rowcount or 0)


def _update_held(
    session: Session,
    ids: Sequence[int],
    lease_until: datetime,
    values: Mapping[str, Any],
    holding: str = "sending",
) -> int:
    """Set `values` on those of `ids` this worker still holds (in status `holding`, under its
    lease); returns how many rows changed."""
    if not ids:
        return 0
    return _run(session, update(Postback).where(_held(ids, lease_until, holding)).values(values))


def mark_sent(
    session: Session,
    ids: Sequence[int],
    *,
    now: datetime,
    status: int | None,
    response: Mapping[str, Any],
    account_id: str | None,
    endpoint: str,
) -> int:
    """CleverTap answered 200 for these records: sent, whoever held them."""
    if not ids:
        return 0
    return _run(
        session,
        update(Postback)
        .where(Postback.id.in_(list(ids)), Postback.status.in_(_NOT_SENT))
        .values(
            status="sent",
            sent_at=now,
            last_status=status,
            response=dict(response),
            last_error=None,
            lease_until=None,
            next_attempt_at=None,
            account_id=account_id,
            endpoint=endpoint,
        ),
    )


def mark_failed(
    session: Session,
    ids: Sequence[int],
    *,
    lease_until: datetime | None,
    status: int | None,
    error: str,
    response: Mapping[str, Any] | None,
    account_id: str | None = None,
    endpoint: str | None = None,
    holding: str = "sending",
) -> int:
    """Failed for good (until someone retries): refused records, 401/400, or out of time.

    `lease_until=None` marks records CleverTap answered for in a 200 (whoever holds them);
    otherwise only rows in status `holding` under that lease change.
    """
    if not ids:
        return 0
    where = (
        _held(ids, lease_until, holding)
        if lease_until is not None
        else and_(Postback.id.in_(list(ids)), Postback.status.in_(_NOT_SENT))
    )
    values: dict[str, Any] = {
        "status": "failed",
        "last_status": status,
        "last_error": error[:MAX_ERROR_CHARS],
        "response": dict(response) if response is not None else None,
        "lease_until": None,
        "next_attempt_at": None,
    }
    if endpoint is not None:
        values["account_id"] = account_id
        values["endpoint"] = endpoint
    return _run(session, update(Postback).where(where).values(**values))


def reschedule(
    session: Session,
    ids: Sequence[int],
    *,
    lease_until: datetime,
    next_attempt_at: datetime,
    status: int | None,
    error: str,
) -> int:
    """A transient failure: queued again for `next_attempt_at`."""
    return _update_held(
        session,
        ids,
        lease_until,
        {
            "status": "queued",
            "next_attempt_at": next_attempt_at,
            "lease_until": None,
            "last_status": status,
            "last_error": error[:MAX_ERROR_CHARS],
        },
    )


def mark_started(
    session: Session,
    ids: Sequence[int],
    *,
    lease_until: datetime,
    started_at: datetime,
    account_id: str | None,
    endpoint: str,
) -> int:
    """The call carrying these rows is about to start: if the worker dies now, they are in
    doubt. Also records where the call goes, which is where CleverTap is asked later."""
    return _update_held(
        session,
        ids,
        lease_until,
        {"next_attempt_at": started_at, "account_id": account_id, "endpoint": endpoint},
    )


def mark_in_doubt(
    session: Session,
    ids: Sequence[int],
    *,
    lease_until: datetime,
    reconcile_at: datetime,
    status: int | None,
    error: str,
) -> int:
    """The call went out but no answer came back: check with CleverTap at `reconcile_at`."""
    return _update_held(
        session,
        ids,
        lease_until,
        {
            "status": IN_DOUBT,
            "lease_until": None,
            "next_attempt_at": reconcile_at,
            "last_status": status,
            "last_error": error[:MAX_ERROR_CHARS],
            "response": {"status": "unknown", "lookups": 0},
        },
    )


def confirm_delivered(
    session: Session, ids: Sequence[int], *, lease_until: datetime, now: datetime
) -> int:
    """CleverTap's events API lists these in-doubt records: they were delivered."""
    return _update_held(
        session,
        ids,
        lease_until,
        {
            "status": "sent",
            "sent_at": now,
            "response": dict(CONFIRMED_RESPONSE),
            "last_error": None,
            "lease_until": None,
            "next_attempt_at": None,
        },
        IN_DOUBT,
    )


def requeue_not_delivered(
    session: Session, ids: Sequence[int], *, lease_until: datetime, now: datetime, error: str
) -> int:
    """CleverTap's events API does not list these in-doubt records: send them again now."""
    return _update_held(
        session,
        ids,
        lease_until,
        {
            "status": "queued",
            "next_attempt_at": now,
            "lease_until": None,
            "response": None,
            "last_error": error[:MAX_ERROR_CHARS],
        },
        IN_DOUBT,
    )


def defer_in_doubt(
    session: Session,
    ids: Sequence[int],
    *,
    lease_until: datetime,
    next_check_at: datetime,
    lookups: int,
    error: str,
) -> int:
    """The events API could not say: still in doubt, checked again at `next_check_at`."""
    return _update_held(
        session,
        ids,
        lease_until,
        {
            "next_attempt_at": next_check_at,
            "lease_until": None,
            "last_error": error[:MAX_ERROR_CHARS],
            "response": {"status": "unknown", "lookups": lookups},
        },
        IN_DOUBT,
    )


def release(session: Session, ids: Sequence[int], *, lease_until: datetime, now: datetime) -> int:
    """Give rows back unsent (e.g. shutting down, or the lease is too short to send safely)."""
    return _update_held(
        session,
        ids,
        lease_until,
        {
            "status": "queued",
            "lease_until": None,
            "next_attempt_at": now,  # the claim cleared it; due again at once
            "attempts": Postback.attempts - 1,
        },
    )


def mark_skipped(
    session: Session, ids: Sequence[int], *, lease_until: datetime, reason: str
) -> int:
    """Not sent after all: the integration was switched off or lost its credentials."""
    return _update_held(
        session,
        ids,
        lease_until,
        {
            "status": "skipped",
            "reason": reason,
            "lease_until": None,
            "next_attempt_at": None,
            "attempts": Postback.attempts - 1,
        },
    )


def record_heartbeat(session: Session, worker_id: str, now: datetime) -> None:
    """Tell /healthz this worker is alive."""
    session.merge(WorkerHeartbeat(worker_id=worker_id, seen_at=now))


def remove_heartbeat(session: Session, worker_id: str) -> None:
    """A worker that stops cleanly says so at once rather than after 30 s of silence."""
    row = session.get(WorkerHeartbeat, worker_id)
    if row is not None:
        session.delete(row)


def remove_process_heartbeats(session: Session, prefix: str) -> None:
    """Remove the heartbeats of one dead process (worker ids starting "host:pid:")."""
    session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id.startswith(prefix, autoescape=True))
    )


def prune_heartbeats(session: Session, older_than: datetime) -> None:
    """Forget workers not seen for a long time (their ids are per process)."""
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < older_than))
