"""The directory `linkgen serve` gives prometheus_client's multiprocess mode.

Each web process writes its counters, histograms and live gauges to its own files there
(`PROMETHEUS_MULTIPROC_DIR`, read by linkgen/web/metrics.py) and a scrape adds them up. `serve`
makes a fresh private directory (mode 0700, in the system's temporary directory) for each run,
so nothing of an earlier run is counted, and removes it when it exits. A web process that dies
is marked dead (its live gauges removed: it leaves `linkgen_info` and `process_*`) by a thread
that looks every `SWEEP_SECONDS`; its counters stay, so the sums never go back.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from prometheus_client import multiprocess

from linkgen.threads import Thread
from linkgen.web.metrics import MULTIPROC_ENV

SWEEP_SECONDS = 2.0
_LIVE_PREFIX = "gauge_live"

log = logging.getLogger("linkgen")


def create() -> Path:
    """A fresh, empty, private directory, named in this process's environment (for its
    children); any directory named there before is not used."""
    path = Path(tempfile.mkdtemp(prefix="linkgen-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def remove(path: Path) -> None:
    """Remove the directory and stop naming it."""
    if os.environ.get(MULTIPROC_ENV) == str(path):
        del os.environ[MULTIPROC_ENV]
    shutil.rmtree(path, ignore_errors=True)


def environ_without() -> dict[str, str]:
    """This environment without the directory (for a child that reports no metrics)."""
    return {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: the number was reused, ours is gone
        return False
    return True


def mark_dead_processes(path: Path) -> list[int]:
    """Mark dead every process that left live gauges in `path` and is gone; their pids."""
    gone: set[int] = set()
    for file in path.glob(f"{_LIVE_PREFIX}*_*.db"):
        number = file.stem.rpartition("_")[2]
        if number.isdigit() and not _alive(int(number)):
            gone.add(int(number))
    for pid in sorted(gone):
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]  # untyped upstream
        log.info("metrics: web process %d is gone; its live gauges are removed", pid)
    return sorted(gone)


class DeadProcessSweeper:
    """A thread calling `mark_dead_processes` every `interval` seconds until stopped."""

    def __init__(self, path: Path, interval: float = SWEEP_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = Thread(target=self._run, name="linkgen-metrics", daemon=True)

    def start(self) -> None:
        """Start sweeping."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                mark_dead_processes(self.path)
            except OSError:
                log.warning("metrics: could not sweep %s", self.path, exc_info=True)

    def stop(self) -> None:
        """Stop sweeping and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 1)
