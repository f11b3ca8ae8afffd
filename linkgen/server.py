"""`linkgen serve`: the production server (granian, WSGI) plus the postback worker."""

from __future__ import annotations

import signal
import subprocess
import sys

import click
from flask.cli import with_appcontext

from linkgen.runtime import get_runtime

# Threads per web process that may block on the database: clicks wait for their group commit
# on these, so there must be at least as many as concurrent connections to batch well. More
# only adds GIL contention and memory (measured: 33 and 64 give the same throughput).
BLOCKING_THREADS = 40
# glibc gives each thread that allocates its own malloc arena (up to 8 per CPU); with ~40
# request threads that is tens of MB of fragmented heap per worker. Two arenas are plenty for
# a process that holds the GIL anyway.
MALLOC_ARENA_MAX = 2


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

    rt = get_runtime()
    settings = rt.settings
    if not no_migrate:
        from linkgen.factory import _install_initial_key
        from linkgen.storage.migrate import upgrade

        upgrade(settings.database_url)
        if settings.initial_api_key:
            _install_initial_key(rt, settings.initial_api_key)
    rt.db.dispose()  # workers open their own connections after the fork
    worker: subprocess.Popen[bytes] | None = None
    if not no_worker and settings.run_worker:
        worker = subprocess.Popen([sys.executable, "-m", "linkgen", "worker"])
    host = host or settings.host
    port = port or settings.port
    _limit_malloc_arenas()
    click.echo(f"linkgen serving on http://{host}:{port} ({workers} web process(es))")
    server = Granian(
        "linkgen.wsgi:app",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=BLOCKING_THREADS,
        backlog=2048,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=30,
    )
    try:
        server.serve()
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
