"""`linkgen worker` (deliver queued postbacks until stopped) and `linkgen replay-postbacks`."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from types import FrameType

import click
from flask.cli import with_appcontext

from linkgen.delivery.worker import OutboxWorker, WorkerConfig
from linkgen.domain.validate import is_digits
from linkgen.services import postbacks as store
from linkgen.storage.types import utcnow

log = logging.getLogger("linkgen.worker")


def _install_stop_handlers(stop: threading.Event) -> None:
    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in flight, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one iteration and exit (tests, cron).")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 120),
    default=WorkerConfig.timeout,
    show_default=True,
    help="Seconds to wait for CleverTap.",
)
@click.option(
    "--lease",
    type=click.FloatRange(1, 3600),
    default=WorkerConfig.lease,
    show_default=True,
    help="Seconds a claim holds its rows (a crashed worker's rows wait this long).",
)
@click.option(
    "--backoff-base",
    type=click.FloatRange(0, 3600),
    default=WorkerConfig.backoff_base,
    show_default=True,
    help="First retry delay in seconds; doubles on each failure.",
)
@click.option(
    "--backoff-cap",
    type=click.FloatRange(0, 86400),
    default=WorkerConfig.backoff_cap,
    show_default=True,
    help="Longest retry delay in seconds.",
)
@click.option(
    "--reconcile-after",
    type=click.FloatRange(0, 86400),
    default=WorkerConfig.reconcile_after,
    show_default=True,
    help="Seconds a postback whose call got no answer waits before CleverTap's events API is "
    "asked whether it arrived (longer than CleverTap takes to show an uploaded event).",
)
@with_appcontext
def worker_cmd(
    once: bool,
    timeout: float,
    lease: float,
    backoff_base: float,
    backoff_cap: float,
    reconcile_after: float,
) -> None:
    """Deliver queued postbacks to CleverTap until SIGTERM / SIGINT."""
    from linkgen.logs import configure_logging
    from linkgen.runtime import get_runtime

    # Handlers first: a SIGTERM during start-up (a few seconds of imports and connections) then
    # stops the worker cleanly before it claims anything, instead of killing it.
    stop = threading.Event()
    if not once:
        _install_stop_handlers(stop)
    rt = get_runtime()
    configure_logging(rt.settings)
    try:
        config = WorkerConfig(
            timeout=timeout,
            lease=lease,
            lease_margin=min(WorkerConfig.lease_margin, timeout),
            backoff_base=backoff_base,
            backoff_cap=max(backoff_cap, backoff_base),
            reconcile_after=reconcile_after,
            retention_days=rt.settings.retention_days,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    worker = OutboxWorker(rt.db, api_base=rt.settings.clevertap_api_base, config=config)
    try:
        if once:
            worker.beat()
            stats = worker.run_once()
            click.echo(
                f"claimed {stats.claimed}, sent {stats.sent}, failed {stats.failed}; in doubt "
                f"checked {stats.checked}, confirmed {stats.confirmed}, resent {stats.resent}"
            )
            return
        worker.run(stop)
    finally:
        worker.close()
        rt.db.dispose()


def parse_since(value: str, now: datetime) -> datetime:
    """`--since`: an ISO date / datetime (UTC when no zone is given) or an age such as 6h, 7d."""
    text = value.strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if is_digits(text[:-1]) and text[-1:] in units:
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            "use an ISO date or time (2024-05-01, 2024-05-01T12:00Z) or an age (30m, 6h, 7d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=now.tzinfo)
    return parsed


@click.command("replay-postbacks")
@click.option("--app", "app_id", default=None, help="Only this app's postbacks.")
@click.option("--since", default=None, help="Only those created since: ISO time or 6h / 7d.")
@with_appcontext
def replay_postbacks_cmd(app_id: str | None, since: str | None) -> None:
    """Queue failed postbacks again (the worker sends them)."""
    from linkgen.runtime import get_runtime

    now = utcnow()
    since_at = parse_since(since, now) if since else None
    with get_runtime().db.session() as session:
        count = store.requeue_failed(session, app_id=app_id, since=since_at, now=now)
    click.echo(f"queued {count} failed postback(s) again")


COMMANDS = [worker_cmd, replay_postbacks_cmd]
