"""`linkgen serve`: the production server (granian, RSGI) plus the postback worker.

Stopping (SIGTERM or SIGINT to this process): granian stops accepting, lets each web worker
finish the requests it accepted and closes idle keep-alive connections; each web worker then
closes its runtime (`linkgen.runtime.close_on_exit`: queued clicks committed, connections
closed). The postback worker subprocess gets SIGTERM at the same moment, finishes the batch in
flight, records it and removes its heartbeat. The command exits 0 once all of them are gone.

Supervision: a postback worker that dies (a crash, a SIGKILL, the OOM killer) is started again
after a pause that doubles with each death in a row (RESTART_DELAY up to RESTART_DELAY_CAP; a
worker that ran RESTART_RESET seconds counts as healthy again), each death and restart logged.
The dead worker's heartbeat is removed at once, so /healthz says "degraded" until the new one
beats. See docs/operations.md.

Metrics: the web processes share a fresh directory for prometheus_client's multiprocess mode,
made before they start and removed when this command exits (linkgen/web/metrics_dir.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import click
from flask.cli import with_appcontext

from linkgen.config import Settings
from linkgen.runtime import Runtime, get_runtime
from linkgen.threads import Thread
from linkgen.web import metrics_dir

# glibc gives each thread that allocates its own malloc arena (up to 8 per CPU); with ~40
# request threads that is tens of MB of fragmented heap per worker. Two arenas are plenty for
# a process that holds the GIL anyway.
MALLOC_ARENA_MAX = 2
# On SIGTERM: granian kills a web worker still busy after this long; the postback worker gets
# as long to finish its batch (one CleverTap call is bounded by its timeout, 10 s by default).
WEB_STOP_SECONDS = 30
WORKER_STOP_SECONDS = 30
# Open connections one web process holds at most (granian's backpressure: past it, it stops
# accepting). A connection costs a file descriptor and a few KiB but no thread, so slow or idle
# clients can hold many without stopping the others; the open-files limit is raised to fit.
MAX_CONNECTIONS = 10_000
# Restarting a postback worker that died: the first pause, its cap, and how long a worker must
# have run for the next death to start from the first pause again.
RESTART_DELAY = 1.0
RESTART_DELAY_CAP = 60.0
RESTART_RESET = 60.0

log = logging.getLogger("linkgen")

# What the migration's child interpreter runs (`migrate_apart`).
MIGRATION_CHILD = "from linkgen.cli.serve import migrate_from_stdin; migrate_from_stdin()"


def raise_open_files_limit(wanted: int) -> None:
    """Raise the soft open-files limit towards `wanted` (never above the hard limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas (inherited by the forked workers); a no-op elsewhere."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-8, MALLOC_ARENA_MAX)  # -8 is M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        return


@click.command("serve")
@click.option("--host", default=None, help="Address (default LINKGEN_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default LINKGEN_PORT or 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--no-worker", is_flag=True, help="Do not run the postback worker here.")
@click.option("--no-migrate", is_flag=True, help="Do not migrate the database on start.")
@with_appcontext
def serve_cmd(
    host: str | None, port: int | None, workers: int, no_worker: bool, no_migrate: bool
) -> None:
    """Serve the web app, the API and the link domain (production server)."""
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from linkgen.logs import configure_logging, granian_log_config

    rt = get_runtime()
    settings = rt.settings
    configure_logging(settings)
    if not no_migrate:
        from linkgen.services.accounts import install_initial_key

        migrate_apart(settings)
        if settings.initial_api_key:
            install_initial_key(rt.db, settings.initial_api_key)
    _offer_setup_code(rt)
    rt.db.dispose()  # workers open their own connections after the fork
    supervisor: WorkerSupervisor | None = None
    if not no_worker and settings.run_worker:
        supervisor = WorkerSupervisor(settings.database_url)
        supervisor.start()
    else:
        # The web processes read their settings from the environment: /healthz then says the
        # worker is "disabled" rather than "stopped".
        os.environ["LINKGEN_WORKER"] = "false"
    host = host or settings.host
    port = port or settings.port
    _limit_malloc_arenas()
    raise_open_files_limit(workers * MAX_CONNECTIONS + 1024)
    log.info("linkgen serving on http://%s:%d (%d web process(es))", host, port, workers)
    server = Granian(
        # RSGI, not WSGI: bodies are read on the event loop before a thread is taken
        # (linkgen/web/front.py); headers have granian's own deadline.
        "linkgen.wsgi:front",
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        websockets=False,
        workers=workers,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout_seconds * 1000)
        ),
        backlog=2048,
        backpressure=MAX_CONNECTIONS,
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=granian_log_config(settings),
        log_access=False,  # linkgen logs its own (linkgen/logs.py), never per click
        respawn_failed_workers=True,
        workers_kill_timeout=WEB_STOP_SECONDS,
        # uvloop where it is installed (a dependency but on Windows), else asyncio's loop: the
        # clicks answered on the loop ran 1.15-1.25 times as fast on it in A/B runs
        # (benchmarks/RESULTS.md, "Clicks on the event loop").
        loop=Loops.auto,
    )
    if supervisor is not None:
        # Granian installs its SIGTERM / SIGINT handlers when it starts; chain ours after them
        # so the postback worker drains its batch while the web workers drain theirs.
        server.on_startup(lambda: _forward_stop_signals(supervisor))
    # The web processes add up their metrics through this directory (linkgen/web/metrics_dir.py).
    metrics_path = metrics_dir.create()
    sweeper = metrics_dir.DeadProcessSweeper(metrics_path)
    sweeper.start()
    try:
        server.serve()
    finally:
        if supervisor is not None:
            supervisor.stop()
        sweeper.stop()
        metrics_dir.remove(metrics_path)


def _offer_setup_code(rt: Runtime) -> None:
    """While no user exists, print a one-time code that opens /setup from afar."""
    from sqlalchemy.exc import DBAPIError

    from linkgen.services import setup_code
    from linkgen.services.accounts import count_users

    try:
        with rt.db.session() as session:
            users = count_users(session)
    except DBAPIError:  # not migrated yet (--no-migrate): the page says how to get a code
        log.debug("users not counted", exc_info=True)
        return
    instance = rt.settings.instance_path
    if users:
        setup_code.clear(instance)
        return
    code = setup_code.issue(instance)
    log.warning(
        "no user exists yet: open /setup from this machine, or from elsewhere with the "
        "one-time setup code %s (it ends when the first user is made)",
        code,
    )


def _forward_stop_signals(supervisor: WorkerSupervisor) -> None:
    """On SIGTERM / SIGINT, tell the postback worker to stop too, then let granian stop."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def _handler(
            sig: int, frame: FrameType | None, previous: Callable[..., Any] | Any = previous
        ) -> None:
            supervisor.signal_stop()
            if callable(previous):
                previous(sig, frame)

        signal.signal(signum, _handler)


class WorkerSupervisor:
    """Runs `linkgen worker` as a subprocess and starts it again when it dies."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.thread = Thread(target=self._watch, name="linkgen-watch", daemon=True)

    def start(self) -> None:
        """Start the worker and the thread that watches it."""
        self._spawn()
        self.thread.start()

    def _spawn(self) -> None:
        with self.lock:
            if not self.stopping.is_set():
                # The postback worker reports no metrics of its own: no metrics directory.
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "linkgen", "worker"], env=metrics_dir.environ_without()
                )

    def _watch(self) -> None:
        delay = RESTART_DELAY
        while not self.stopping.is_set():
            process = self.process
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            if self.stopping.is_set():
                return
            _forget_heartbeat(self.database_url, process.pid)
            if time.monotonic() - started >= RESTART_RESET:
                delay = RESTART_DELAY
            log.warning(
                "the postback worker (pid %d) died with status %s: restarting it in %.0f s",
                process.pid,
                code,
                delay,
            )
            if self.stopping.wait(delay):
                return
            self._spawn()
            if self.process is not None and self.process is not process:
                log.info("the postback worker restarted (pid %d)", self.process.pid)
            delay = min(delay * 2, RESTART_DELAY_CAP)

    def signal_stop(self) -> None:
        """Stop restarting; tell the running worker to finish its batch and stop (SIGTERM)."""
        with self.lock:
            self.stopping.set()
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop the postback worker (it finishes its batch first) and wait for it."""
        self.signal_stop()
        worker = self.process
        if worker is None:
            return
        try:
            code = worker.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the postback worker did not stop in %d s: killing it", WORKER_STOP_SECONDS)
            worker.kill()
            code = worker.wait()
        if code == -signal.SIGTERM:  # ended by our signal before it had set up its own handling
            log.info("the postback worker stopped before it had started")
        elif code != 0:
            log.warning("the postback worker exited with status %s", code)


def _forget_heartbeat(database_url: str, pid: int) -> None:
    """A worker killed outright could not remove its heartbeat: remove it, so /healthz knows."""
    from linkgen.services.postbacks import remove_process_heartbeats
    from linkgen.storage.db import Database

    db = Database(database_url)
    try:
        with db.session() as session:
            remove_process_heartbeats(session, f"{socket.gethostname()}:{pid}:")
    except Exception:
        log.warning("could not remove the dead postback worker's heartbeat", exc_info=True)
    finally:
        db.dispose()


def migrate_apart(settings: Settings) -> None:
    """Migrate the database to head in a child interpreter, so alembic never enters this one.

    granian forks the web processes from this process, and each carries what it has imported:
    alembic and its templates were about 10 MB of every web process's memory (a worker's idle
    RSS 136.6 MB when `serve` migrated in-process, 126.9 MB with `--no-migrate`; the target is
    150 MB through a million clicks, benchmarks/memory.py). The child logs as this process does;
    when it fails, `serve` stops before anything listens.
    """
    job = {
        "database_url": settings.database_url,
        "log_level": settings.log_level,
        "log_format": settings.log_format,
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, a constant program, no shell
        [sys.executable, "-c", MIGRATION_CHILD], input=json.dumps(job), text=True, check=False
    )
    if done.returncode != 0:
        raise click.ClickException("could not migrate the database (the error is logged above)")


def migrate_from_stdin() -> None:
    """The child `migrate_apart` starts: its settings as JSON on stdin, then the migration.

    The database URL comes on stdin, not in the arguments, where `ps` would show its password.
    """
    from linkgen.logs import configure_logging
    from linkgen.storage.migrate import upgrade

    job = json.loads(sys.stdin.read())
    settings = Settings(
        database_url=job["database_url"],
        secret_key="",  # not needed to migrate
        log_level=job["log_level"],
        log_format=job["log_format"],
    )
    configure_logging(settings)
    try:
        upgrade(settings.database_url)
    except Exception:
        log.exception("the database migration failed")
        raise SystemExit(1) from None
