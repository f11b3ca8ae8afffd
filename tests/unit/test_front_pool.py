"""The RSGI front's thread pools (linkgen/web/front.py): jobs run, threads carry their names."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from linkgen.web.front import Pool


def test_jobs_run_on_the_pool_threads_and_the_pool_stops() -> None:
    pool = Pool(3, "linkgen-test")
    seen: list[str] = []
    done = threading.Barrier(2)

    def job() -> None:
        seen.append(threading.current_thread().name)
        done.wait(timeout=10)

    try:
        pool.submit(job)
        done.wait(timeout=10)
    finally:
        pool.shutdown()
    assert len(seen) == 1 and seen[0].startswith("linkgen-test-")
    assert len(pool.threads) == 3
    assert not any(thread.is_alive() for thread in pool.threads)


@pytest.mark.skipif(sys.platform != "linux", reason="OS thread names are read from /proc")
def test_the_os_sees_each_pool_thread_by_its_name() -> None:
    """`top -H`, `ps -L` and benchmarks/front_cost.py tell the pools' threads from granian's."""
    pool = Pool(2, "linkgen-named")
    found: list[str] = []
    done = threading.Event()

    def job() -> None:
        tid = threading.get_native_id()
        found.append(Path(f"/proc/self/task/{tid}/comm").read_text().strip())
        done.set()

    try:
        pool.submit(job)
        assert done.wait(timeout=10)
    finally:
        pool.shutdown()
    # 15 bytes at most: "linkgen-named-0" or "linkgen-named-1"
    assert found and found[0] in {"linkgen-named-0", "linkgen-named-1"}
