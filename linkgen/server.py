"""`linkgen serve`: the production server (granian, WSGI) plus the postback worker.

Stopping (SIGTERM or SIGINT to this process): granian stops accepting, lets each web worker
finish the requests it accepted and closes idle keep-alive connections; each web worker then
closes its runtime (`linkgen.runtime.close_on_exit`: queued clicks committed, connections
closed). The postback worker subprocess gets SIGTERM at the same moment, finishes the batch in
flight, records it and removes its heartbeat. The command exits 0 once all of them are gone.
See docs/operations.md.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import click
from flask.cli import with_appcontext

from linkgen.runtime import Runtime, get_runtime

# Threads per web process that may block on the database: clicks wait for their group commit
# on these, so there must be at least as many as concurrent connections to batch well. More
# only adds GIL contention and memory (measured: 33 and 64 give the same throughput).
BLOCKING_THREADS = 40
# glibc gives each thread that allocates its own malloc arena (up to 8 per CPU); with ~40
# request threads that is tens of MB of fragmented heap per worker. Two arenas are plenty for
# a process that holds the GIL anyway.
MALLOC_ARENA_MAX = 2
# On SIGTERM: granian kills a web worker still busy after this long; the postback worker gets
# as long to finish its batch (one CleverTap call is bounded by its timeout, 10 s by default).
WEB_STOP_SECONDS = 30
WORKER_STOP_SECONDS = 30

log = logging.getLogger("linkgen")


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
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from linkgen.logs import configure_logging, granian_log_config

    rt = get_runtime()
    settings = rt.settings
    configure_logging(settings)
    if not no_migrate:
        from linkgen.factory import _install_initial_key
        from linkgen.storage.migrate import upgrade

        upgrade(settings.database_url)
        if settings.initial_api_key:
            _install_initial_key(rt, settings.initial_api_key)
    _offer_setup_code(rt)
    rt.db.dispose()  # workers open their own connections after the fork
    worker: subprocess.Popen[bytes] | None = None
    if not no_worker and settings.run_worker:
        worker = subprocess.Popen([sys.executable, "-m", "linkgen", "worker"])
    host = host or settings.host
    port = port or settings.port
    _limit_malloc_arenas()
    log.info("linkgen serving on http://%s:%d (%d web process(es))", host, port, workers)
    server = Granian(
        "linkgen.wsgi:app",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=BLOCKING_THREADS,
        backlog=2048,
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=granian_log_config(settings),
        log_access=False,  # linkgen logs its own (linkgen/logs.py), never per click
        respawn_failed_workers=True,
        workers_kill_timeout=WEB_STOP_SECONDS,
    )
    if worker is not None:
        # Granian installs its SIGTERM / SIGINT handlers when it starts; chain ours after them
        # so the postback worker drains its batch while the web workers drain theirs.
        server.on_startup(lambda: _forward_stop_signals(worker))
    try:
        server.serve()
    finally:
        if worker is not None:
            _stop_worker(worker)


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


def _forward_stop_signals(worker: subprocess.Popen[bytes]) -> None:
    """On SIGTERM / SIGINT, tell the postback worker to stop too, then let granian stop."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def _handler(
            sig: int, frame: FrameType | None, previous: Callable[..., Any] | Any = previous
        ) -> None:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            if callable(previous):
                previous(sig, frame)

        signal.signal(signum, _handler)


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Stop the postback worker (it finishes its batch first) and wait for it."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
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
