"""The postback delivery worker: drains the outbox to CleverTap's upload API.

`linkgen worker` runs it in the foreground (SIGTERM / SIGINT: the batch in flight is finished,
then it exits); `linkgen serve` starts that command as a subprocess unless `--no-worker`.
Any number of workers may run against one database.

One iteration (`OutboxWorker.run_once`), storage steps in `linkgen.services.postbacks`:

1. In one committed transaction: rows of workers that died holding them (lease expired) go back
   to `queued` if their call had not started, or become `in_doubt` if it had; up to
   `reconcile_limit` in-doubt rows due for a check and up to `claim_limit` due queued rows are
   claimed (`sending`, with a lease) before anything is sent.
2. Read each app's integration *now*. Claimed rows of an app whose integration was switched off,
   or lost every credential, since they were queued become `skipped` (`partner_inactive` /
   `no_credentials`, the reasons enqueueing would give today): the user's latest word wins, as
   it does for new outcomes. Otherwise a row goes to the account id and region the integration
   names now (a corrected account id or region applies to rows still waiting), with the
   passcode read from the settings at send time: it is never stored on the row nor logged.
3. Group the rows by (endpoint, account id, passcode), cut into calls of at most 1000 records,
   and send them on a thread pool with at most `per_account_in_flight` (15, CleverTap's limit)
   calls in flight per account in this process. Right before a call, its start (and where it
   goes) is committed on its rows.
4. Right after each answer, in one transaction: 200 -> `sent` (records CleverTap listed as
   unprocessed -> `failed` with its code and error); 401 / 400 -> `failed`; 429 / 5xx / no
   connection -> `queued` again after an exponential backoff with jitter, until 24 hours after
   the row was created (or manually retried), then `failed`; no answer (read timeout, dropped
   connection, 504) -> `in_doubt`.
5. Alongside the sends, the in-doubt rows claimed in step 1 are checked (see below).

Exactly once, without idempotency at CleverTap: a row answered with a 200 is marked `sent` in
the transaction right after the answer and is never claimed again, and a call is only started
while the lease has at least `timeout` + a margin to run, so a slow call cannot overlap a
second worker's claim of the same rows. A call whose outcome is unknown (the worker was killed
between the call's start and the commit of its outcome, or the answer never came) leaves its
rows `in_doubt`: they may or may not be stored at CleverTap, and sending them again blindly
would store them twice. `reconcile_after` seconds later (600 by default, longer than CleverTap
takes to make an uploaded event visible to its Get Events API), the worker asks that API, per
(account, event name, day range of the records' `ts`, widened by a day each side because the
account's time zone is unknown), which of their `evtData.linkgen_id`s it has, paging through
its cursor: listed rows become `sent` (their `response` says `confirmed_by:
clevertap_events_api`), the others are queued again. When the events API fails, the rows stay
in doubt and are asked about again after a backoff; at the row's 24-hour deadline they become
`failed` with a message saying they may or may not have been delivered. Every record type
linkgen sends (installs, re-engagements, in-app events) is a CleverTap event, so this covers
all of them.

What remains: the check trusts CleverTap's Get Events API. An event CleverTap stored but does
not list yet after `reconcile_after` is sent a second time; an account with more events of one
name in the window than `events_max_pages` pages cannot be checked (its rows fail at the
deadline, saying so).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from linkgen.delivery.clevertap_client import (
    MAX_EVENTS_BATCH,
    MAX_RECORDS_PER_UPLOAD,
    CleverTapClient,
    EventsLookup,
    UploadResult,
)
from linkgen.delivery.reconcile import Lookup, linkgen_id_of, plan_lookups
from linkgen.domain.clevertap import (
    IntegrationSettings,
    resolve_region,
    scrub_secrets,
    upload_endpoint,
)
from linkgen.services import postbacks as store
from linkgen.services.outbox import load_integration
from linkgen.services.retention import RetentionSchedule
from linkgen.services.rollups import RollupSchedule
from linkgen.storage.db import Database
from linkgen.storage.rawsql import OnSession
from linkgen.storage.types import utcnow

log = logging.getLogger("linkgen.worker")


@dataclass(frozen=True)
class WorkerConfig:
    """Tuning of one worker process (tests shorten the times)."""

    batch_size: int = MAX_RECORDS_PER_UPLOAD  # records per upload call
    claim_limit: int = 10_000  # rows claimed per iteration
    per_account_in_flight: int = 15  # CleverTap's concurrent upload limit per account
    threads: int = 32
    timeout: float = 10.0  # every CleverTap call
    lease: float = 120.0  # seconds a claim holds its rows; must exceed timeout plenty
    lease_margin: float = 5.0  # a call starts only with timeout + this left on the lease
    max_age: timedelta = store.MAX_AGE
    backoff_base: float = 10.0  # first retry after ~this many seconds, doubling each time
    backoff_cap: float = 1800.0
    jitter: float = 0.25  # +/- share of the backoff drawn at random
    idle_poll: float = 1.0  # sleep when nothing was due
    busy_poll: float = 0.0  # sleep between full iterations
    heartbeat_every: float = 5.0
    # Seconds a row stays in doubt before CleverTap's events API is asked about it: longer than
    # CleverTap takes to make an uploaded event visible there (see docs/architecture.md).
    reconcile_after: float = 600.0
    reconcile_limit: int = 10_000  # in-doubt rows checked per iteration
    events_batch_size: int = MAX_EVENTS_BATCH  # records per Get Events page
    events_max_pages: int = 1000  # pages read per event name and day range before giving up
    events_attempts: int = 3  # tries of one Get Events request (429 / 5xx / timeout)
    events_retry_pause: float = 0.5  # seconds before the second try, doubling
    # LINKGEN_RETENTION_DAYS: raw clicks and launches older than this are deleted (None: kept).
    retention_days: int | None = None
    retention_every: float = 3600.0  # seconds between retention rounds
    # The reports' click rollups (services/rollups.py): a step this often, back to back while
    # a backlog (a backfill) lasts; 0 turns them off in this worker.
    rollup_every: float = 5.0
    rollup_batch: int | None = None  # clicks per step (None: services/rollups' choice)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_RECORDS_PER_UPLOAD:
            raise ValueError(f"batch_size must be 1..{MAX_RECORDS_PER_UPLOAD}")
        if not 1 <= self.events_batch_size <= MAX_EVENTS_BATCH:
            raise ValueError(f"events_batch_size must be 1..{MAX_EVENTS_BATCH}")
        if self.reconcile_after < 0:
            raise ValueError("reconcile_after cannot be negative")
        if self.lease <= self.timeout + self.lease_margin:
            raise ValueError("the lease must be longer than the timeout plus its margin")


def backoff_seconds(attempts: int, config: WorkerConfig, rng: random.Random) -> float:
    """Exponential backoff with jitter after the `attempts`-th failed attempt (1-based)."""
    base = min(config.backoff_cap, config.backoff_base * 2.0 ** max(0, attempts - 1))
    return max(0.0, base * (1 + rng.uniform(-config.jitter, config.jitter)))


@dataclass
class _Call:
    """One upload call: rows of one account, in the order their records are sent."""

    endpoint: str
    account_id: str | None
    passcode: str | None
    rows: list[store.Claimed]
    lease_until: datetime
    token: str | None = field(default=None, repr=False)  # never sent; scrubbed from answers


@dataclass
class IterationStats:
    """What one iteration did (for logs, tests and the benchmark)."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    released: int = 0
    calls: int = 0
    # Rows of a worker that died holding them: queued again (call never started) / in doubt.
    expired_requeued: int = 0
    expired_in_doubt: int = 0
    doubted: int = 0  # rows whose call got no answer this iteration (timeout, 504, ...)
    checked: int = 0  # in-doubt rows taken for a check with CleverTap's events API
    confirmed: int = 0  # ... that CleverTap listed: sent
    resent: int = 0  # ... that CleverTap did not list: queued again
    deferred: int = 0  # ... the events API could not tell about: checked again later
    lookups: int = 0  # Get Events queries (each one cursor, paged)
    lookup_pages: int = 0
    slowest_commit: float = 0.0  # seconds from an upload's answer to its outcome's commit
    errors: list[str] = field(default_factory=list)

    def merge(self, other: IterationStats) -> None:
        """Add another task's counts to these."""
        for name in (
            "sent",
            "failed",
            "retried",
            "skipped",
            "released",
            "calls",
            "doubted",
            "confirmed",
            "resent",
            "deferred",
            "lookups",
            "lookup_pages",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.slowest_commit = max(self.slowest_commit, other.slowest_commit)
        self.errors.extend(other.errors)


class OutboxWorker:
    """Claims due postbacks and uploads them; see the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        api_base: str | None = None,
        client: CleverTapClient | None = None,
        config: WorkerConfig | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.api_base = api_base
        self.config = config or WorkerConfig()
        self._own_client = client is None
        self.client = client or CleverTapClient(
            timeout=self.config.timeout,
            events_attempts=self.config.events_attempts,
            events_retry_pause=self.config.events_retry_pause,
        )
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.config.threads, thread_name_prefix="postback-send")
        self._account_slots: dict[tuple[str, str | None], threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._last_beat = 0.0
        self.retention = (
            RetentionSchedule(db, self.config.retention_days, every=self.config.retention_every)
            if self.config.retention_days is not None
            else None
        )
        self.rollups = (
            RollupSchedule(db, every=self.config.rollup_every, batch=self.config.rollup_batch)
            if self.config.rollup_every > 0
            else None
        )

    # --- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop the send threads (after their calls) and close the HTTP client if it is ours."""
        self._pool.shutdown(wait=True)
        if self._own_client:
            self.client.close()

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; the batch in flight when it is set is finished first."""
        log.info("postback worker %s started", self.worker_id)
        try:
            while not stop.is_set():
                try:
                    self.maybe_beat()
                    stats = self.run_once()
                    # One retention batch per iteration: deliveries go on between batches.
                    retained = self.retention is not None and self.retention.step()
                    # One rollup batch per iteration too (a backfill goes on between them).
                    rolled = self.rollups is not None and self.rollups.step()
                except Exception:  # a database hiccup must not end the worker
                    log.exception("postback worker iteration failed; trying again shortly")
                    stop.wait(max(self.config.idle_poll, 1.0))
                    continue
                busy = stats.claimed or retained or rolled
                pause = self.config.busy_poll if busy else self.config.idle_poll
                if pause:
                    stop.wait(pause)
        finally:
            try:
                with self.db.session() as session:
                    store.remove_heartbeat(session, self.worker_id)
            except Exception:  # exiting anyway; the beat goes stale in 30 s
                log.warning("could not remove the worker heartbeat", exc_info=True)
            log.info("postback worker %s stopped", self.worker_id)

    def maybe_beat(self) -> None:
        """Write the heartbeat when the last one is older than `heartbeat_every`."""
        if time.monotonic() - self._last_beat >= self.config.heartbeat_every:
            self.beat()

    def beat(self) -> None:
        """Write the heartbeat now (and forget workers silent for a day)."""
        now = self.clock()
        with self.db.session() as session:
            store.record_heartbeat(session, self.worker_id, now)
            store.prune_heartbeats(session, now - timedelta(days=1))
        self._last_beat = time.monotonic()

    # --- one iteration --------------------------------------------------------------------

    def run_once(self) -> IterationStats:
        """One iteration: take back dead workers' rows, claim due rows and in-doubt rows due for
        a check, then send and check them on the thread pool; wait for all."""
        stats = IterationStats()
        now = self.clock()
        lease_until = now + timedelta(seconds=self.config.lease)
        reconcile_at = now + timedelta(seconds=self.config.reconcile_after)
        with self.db.session() as session:
            requeued, doubted = store.expire_leases(session, now=now, reconcile_at=reconcile_at)
            in_doubt = store.claim_in_doubt(
                session, now=now, lease_until=lease_until, limit=self.config.reconcile_limit
            )
            claimed = store.claim_due(
                session, now=now, lease_until=lease_until, limit=self.config.claim_limit
            )
        stats.expired_requeued, stats.expired_in_doubt = requeued, doubted
        if requeued or doubted:
            log.warning(
                "postbacks of a stopped worker: in_doubt_after_crash=%d (their call had started; "
                "CleverTap is asked about them in %g s), requeued_unstarted=%d",
                doubted,
                self.config.reconcile_after,
                requeued,
            )
        stats.claimed, stats.checked = len(claimed), len(in_doubt)
        if not claimed and not in_doubt:
            return stats
        settings = self._settings({row.app_id for row in [*claimed, *in_doubt]})
        tasks: list[Callable[[], IterationStats]] = self._plan_checks(
            in_doubt, lease_until, settings
        )
        for call in self._plan(claimed, lease_until, stats, settings):
            tasks.append(partial(self._send_call, call))
        futures: list[Future[IterationStats]] = [self._pool.submit(task) for task in tasks]
        for future in futures:
            try:
                stats.merge(future.result())
            except Exception as exc:  # its rows stay leased and come back later
                log.exception("postback call failed unexpectedly")
                stats.errors.append(type(exc).__name__)
        self._log_iteration(stats)
        return stats

    def _log_iteration(self, stats: IterationStats) -> None:
        if stats.checked:
            log.info(
                "postbacks checked with CleverTap's events API: checked=%d confirmed=%d "
                "resent=%d deferred=%d lookups=%d pages=%d",
                stats.checked,
                stats.confirmed,
                stats.resent,
                stats.deferred,
                stats.lookups,
                stats.lookup_pages,
            )
        log.debug(
            "postbacks: claimed=%d sent=%d failed=%d retried=%d skipped=%d in_doubt_now=%d "
            "calls=%d commit_ms_max=%.1f",
            stats.claimed,
            stats.sent,
            stats.failed,
            stats.retried,
            stats.skipped,
            stats.doubted,
            stats.calls,
            stats.slowest_commit * 1000,
        )

    def _settings(self, app_ids: Iterable[str]) -> dict[str, IntegrationSettings]:
        """Each app's integration as it is now."""
        with self.db.session() as session:
            tx = OnSession(session)
            return {app_id: load_integration(tx, app_id=app_id) for app_id in app_ids}

    def _plan(
        self,
        claimed: Sequence[store.Claimed],
        lease_until: datetime,
        stats: IterationStats,
        settings: Mapping[str, IntegrationSettings],
    ) -> list[_Call]:
        """Group claimed rows into upload calls, skipping those whose integration went away."""
        skip: dict[str, list[int]] = defaultdict(list)
        groups: dict[tuple[str, str | None, str | None, str | None], list[store.Claimed]] = (
            defaultdict(list)
        )
        for row in claimed:
            current = settings[row.app_id]
            if not current.active:
                skip["partner_inactive"].append(row.id)
            elif not current.has_credentials:
                skip["no_credentials"].append(row.id)
            else:
                endpoint = upload_endpoint(resolve_region(current.region), self.api_base)
                key = (
                    endpoint,
                    current.account_id,
                    current.account_passcode,
                    current.account_token,
                )
                groups[key].append(row)
        if skip:
            with self.db.session() as session:
                for reason, ids in skip.items():
                    stats.skipped += store.mark_skipped(
                        session, ids, lease_until=lease_until, reason=reason
                    )
        calls: list[_Call] = []
        size = self.config.batch_size
        for (endpoint, account_id, passcode, token), rows in groups.items():
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                calls.append(_Call(endpoint, account_id, passcode, chunk, lease_until, token))
        return calls

    def _slot(self, endpoint: str, account_id: str | None) -> threading.BoundedSemaphore:
        key = (endpoint, account_id)
        with self._slots_lock:
            slot = self._account_slots.get(key)
            if slot is None:
                slot = threading.BoundedSemaphore(self.config.per_account_in_flight)
                self._account_slots[key] = slot
            return slot

    def _send_call(self, call: _Call) -> IterationStats:
        stats = IterationStats()
        ids = [row.id for row in call.rows]
        with self._slot(call.endpoint, call.account_id):
            # Too little lease left to be sure this call ends before another worker may take
            # the rows: give them back rather than risk sending them twice.
            left = (call.lease_until - self.clock()).total_seconds()
            if left < self.config.timeout + self.config.lease_margin:
                self._release(call, stats)
                return stats
            # Committed before the call: from here on a crash leaves the rows in doubt rather
            # than simply unsent.
            with self.db.session() as session:
                started = store.mark_started(
                    session,
                    ids,
                    lease_until=call.lease_until,
                    started_at=self.clock(),
                    account_id=call.account_id,
                    endpoint=call.endpoint,
                )
            if started != len(ids):  # another worker took some of them: send none
                self._release(call, stats)
                return stats
            stats.calls += 1
            result = self.client.upload(
                call.endpoint, call.account_id, call.passcode, [row.record for row in call.rows]
            )
        answered = time.monotonic()
        self._record(call, result, stats)
        stats.slowest_commit = time.monotonic() - answered
        return stats

    def _release(self, call: _Call, stats: IterationStats) -> None:
        with self.db.session() as session:
            stats.released += store.release(
                session,
                [row.id for row in call.rows],
                lease_until=call.lease_until,
                now=self.clock(),
            )

    def _record(self, call: _Call, result: UploadResult, stats: IterationStats) -> None:
        """Store the outcome of one call in one transaction."""
        # Whatever CleverTap answered is stored and shown (API, postback log): its secrets go
        # first, in every form it might echo them in.
        result = scrubbed(result, (call.passcode, call.token))
        now = self.clock()
        rows = call.rows
        with self.db.session() as session:
            if result.outcome == "ok":
                by_failure: dict[tuple[int | None, str], list[int]] = defaultdict(list)
                for index, failure in result.failed.items():
                    by_failure[(failure.code, failure.error)].append(rows[index].id)
                failed_ids = {i for ids in by_failure.values() for i in ids}
                sent_ids = [row.id for row in rows if row.id not in failed_ids]
                if result.unmatched:
                    log.warning(
                        "CleverTap listed %d unprocessed records linkgen could not match",
                        len(result.unmatched),
                    )
                stats.sent += store.mark_sent(
                    session,
                    sent_ids,
                    now=now,
                    status=result.status,
                    response={"status": "success"},
                    account_id=call.account_id,
                    endpoint=call.endpoint,
                )
                for (code, error), ids in by_failure.items():
                    stats.failed += store.mark_failed(
                        session,
                        ids,
                        lease_until=None,
                        status=result.status,
                        error=f"CleverTap refused the record ({code}): {error}",
                        response={"status": "fail", "code": code, "error": error},
                        account_id=call.account_id,
                        endpoint=call.endpoint,
                    )
            elif result.outcome == "reject":
                stats.failed += store.mark_failed(
                    session,
                    [row.id for row in rows],
                    lease_until=call.lease_until,
                    status=result.status,
                    error=result.message,
                    response=_body(result),
                    account_id=call.account_id,
                    endpoint=call.endpoint,
                )
            elif result.outcome == "unknown":
                stats.doubted += store.mark_in_doubt(
                    session,
                    [row.id for row in rows],
                    lease_until=call.lease_until,
                    reconcile_at=now + timedelta(seconds=self.config.reconcile_after),
                    status=result.status,
                    error=f"{result.message} CleverTap may or may not have stored it, so "
                    "linkgen asks CleverTap's events API before sending it again.",
                )
            else:
                self._retry_later(session, call, result, now, stats)
        if result.outcome == "unknown":
            log.warning(
                "postbacks in doubt after a call without an answer: in_doubt_no_answer=%d",
                len(rows),
            )

    def _retry_later(
        self, session: Any, call: _Call, result: UploadResult, now: datetime, stats: IterationStats
    ) -> None:
        expired: list[int] = []
        by_time: dict[datetime, list[int]] = defaultdict(list)
        by_attempts: dict[tuple[int, datetime], list[int]] = defaultdict(list)
        for row in call.rows:
            by_attempts[(row.attempts, row.deadline(self.config.max_age))].append(row.id)
        for (attempts, deadline), ids in by_attempts.items():
            if now >= deadline:
                expired.extend(ids)
                continue
            with self._rng_lock:
                delay = backoff_seconds(attempts, self.config, self.rng)
            by_time[min(now + timedelta(seconds=delay), deadline)].extend(ids)
        for when, ids in by_time.items():
            stats.retried += store.reschedule(
                session,
                ids,
                lease_until=call.lease_until,
                next_attempt_at=when,
                status=result.status,
                error=result.message,
            )
        if expired:
            hours = self.config.max_age.total_seconds() / 3600
            stats.failed += store.mark_failed(
                session,
                expired,
                lease_until=call.lease_until,
                status=result.status,
                error=f"Gave up after {hours:g} h of retries: {result.message}",
                response=_body(result),
            )

    # --- in-doubt rows: ask CleverTap's events API -----------------------------------------

    def _plan_checks(
        self,
        rows: Sequence[store.Claimed],
        lease_until: datetime,
        settings: Mapping[str, IntegrationSettings],
    ) -> list[Callable[[], IterationStats]]:
        """One task per account (its queries run one after another), plus one for the rows
        nobody can ask CleverTap about."""
        if not rows:
            return []
        askable: list[tuple[store.Claimed, str]] = []
        stuck: list[store.Claimed] = []
        for row in rows:
            current = settings[row.app_id]
            # The passcode of the account the call went to; a changed account cannot be asked.
            if row.account_id and current.account_id == row.account_id and current.account_passcode:
                askable.append((row, current.account_passcode))
            else:
                stuck.append(row)
        lookups, unanswerable = plan_lookups(askable, self.clock())
        stuck.extend(unanswerable)
        by_account: dict[tuple[str, str], list[Lookup]] = defaultdict(list)
        for lookup in lookups:
            by_account[(lookup.events_url, lookup.account_id)].append(lookup)
        tasks: list[Callable[[], IterationStats]] = [
            partial(self._check_account, group, lease_until) for group in by_account.values()
        ]
        if stuck:
            message = (
                "CleverTap cannot be asked about it: the integration's account ID or passcode "
                "changed or was removed since the call, or the record is not an event."
            )
            tasks.append(partial(self._undecided, stuck, lease_until, message))
        return tasks

    def _check_account(self, lookups: Sequence[Lookup], lease_until: datetime) -> IterationStats:
        stats = IterationStats()
        for lookup in lookups:
            wanted = {lid: row for row in lookup.rows if (lid := linkgen_id_of(row))}
            answer = self.client.find_linkgen_ids(
                lookup.events_url,
                lookup.account_id,
                lookup.passcode,
                event_name=lookup.event_name,
                first_day=lookup.first_day,
                last_day=lookup.last_day,
                wanted=set(wanted),
                batch_size=self.config.events_batch_size,
                max_pages=self.config.events_max_pages,
            )
            stats.lookups += 1
            stats.lookup_pages += answer.pages
            if answer.ok:
                stats.merge(self._settle(lookup, answer, wanted, lease_until))
            else:
                stats.merge(self._undecided(lookup.rows, lease_until, answer.message))
        return stats

    def _settle(
        self,
        lookup: Lookup,
        answer: EventsLookup,
        wanted: Mapping[str, store.Claimed],
        lease_until: datetime,
    ) -> IterationStats:
        """CleverTap answered: listed rows were delivered, the others are sent again."""
        stats = IterationStats()
        now = self.clock()
        found = [row.id for lid, row in wanted.items() if lid in answer.found]
        missing = [row.id for lid, row in wanted.items() if lid not in answer.found]
        with self.db.session() as session:
            stats.confirmed += store.confirm_delivered(
                session, found, lease_until=lease_until, now=now
            )
            stats.resent += store.requeue_not_delivered(
                session,
                missing,
                lease_until=lease_until,
                now=now,
                error=f"CleverTap's events API did not list this {lookup.event_name!r} event "
                "after the earlier call got no answer, so it is sent again.",
            )
        return stats

    def _undecided(
        self, rows: Sequence[store.Claimed], lease_until: datetime, why: str
    ) -> IterationStats:
        """The events API could not tell: ask again after a backoff, or give up at the
        row's deadline."""
        stats = IterationStats()
        now = self.clock()
        expired: list[int] = []
        # Rows with the same history share one delay, so they are asked about together again.
        by_history: dict[tuple[int, datetime], list[int]] = defaultdict(list)
        for row in rows:
            deadline = row.deadline(self.config.max_age)
            if now >= deadline:
                expired.append(row.id)
            else:
                by_history[(_lookups_so_far(row) + 1, deadline)].append(row.id)
        later: dict[tuple[datetime, int], list[int]] = defaultdict(list)
        for (lookups, deadline), ids in by_history.items():
            with self._rng_lock:
                delay = backoff_seconds(lookups, self.config, self.rng)
            later[(min(now + timedelta(seconds=delay), deadline), lookups)].extend(ids)
        with self.db.session() as session:
            for (when, lookups), ids in later.items():
                stats.deferred += store.defer_in_doubt(
                    session,
                    ids,
                    lease_until=lease_until,
                    next_check_at=when,
                    lookups=lookups,
                    error=f"The call to CleverTap got no answer, and asking CleverTap's events "
                    f"API whether it arrived failed ({why}); asking again later.",
                )
            if expired:
                hours = self.config.max_age.total_seconds() / 3600
                stats.failed += store.mark_failed(
                    session,
                    expired,
                    lease_until=lease_until,
                    holding=store.IN_DOUBT,
                    status=None,
                    error=f"Unknown whether CleverTap received this postback: its call got no "
                    f"answer and CleverTap's events API could not tell within {hours:g} h "
                    f"({why}). It may or may not have been delivered: look for its linkgen_id "
                    "in CleverTap and retry it by hand if it is missing.",
                    response={"status": "unknown"},
                )
        if expired:
            log.warning("postbacks given up in doubt: failed=%d (%s)", len(expired), why)
        return stats


def _lookups_so_far(row: store.Claimed) -> int:
    value = row.response.get("lookups") if isinstance(row.response, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def scrubbed(result: UploadResult, secrets: tuple[str | None, ...]) -> UploadResult:
    """The answer with every form of the secrets replaced, in its message, per-record errors
    and body."""
    failed = {
        index: replace(failure, error=scrub_secrets(failure.error, secrets))
        for index, failure in result.failed.items()
    }
    return replace(
        result,
        message=scrub_secrets(result.message, secrets),
        failed=failed,
        body=scrub_secrets(result.body, secrets),
    )


def _body(result: UploadResult) -> dict[str, Any] | None:
    return dict(result.body) if isinstance(result.body, dict) else None


# --- commands ----------------------------------------------------------------------------------
