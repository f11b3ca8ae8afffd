"""`linkgen serve` supervises its postback worker (issue 14, item 7), with real processes.

The worker `serve` started is SIGKILLed by its PID (found in the process tree). /healthz then
says `"status": "degraded"`, `"worker": "stopped"` with HTTP 200 (the link domain still
serves), until `serve` has started a new worker (a new PID, logged) and /healthz says "ok" and
"running" again. A SIGTERM to `serve` afterwards still stops everything cleanly: exit 0, the
new worker and the web worker gone. On SQLite and PostgreSQL (the dead worker's heartbeat is
removed from the database).

Every wait is bounded; only the processes started here are stopped, by PID.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from typing import Any

from benchmarks.common import child_pids
from tests.integration.test_shutdown import (
    STOP_BOUND,
    Served,
    _alive,
    _cmdline,
    _wait_for_heartbeat,
    served,
)

__all__ = ["served"]  # the fixture

WAIT = 60.0


def _health(served: Served) -> tuple[int, dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/healthz", timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def _worker_pids(served: Served) -> list[int]:
    return [
        p
        for p in child_pids(served.process.pid)
        if _cmdline(p)[-2:] == ["linkgen", "worker"] and _alive(p)
    ]


def _wait_for_health(served: Served, status: str, worker: str) -> None:
    deadline = time.monotonic() + WAIT
    seen: list[Any] = []
    while time.monotonic() < deadline:
        code, body = _health(served)
        seen.append((code, body))
        if body["status"] == status and body["worker"] == worker:
            assert code == 200
            return
        time.sleep(0.02)
    raise AssertionError(f"no {status}/{worker} in {seen[-5:]}\n{served.log()}")


def test_a_killed_worker_is_restarted_and_healthz_says_degraded_meanwhile(
    served: Served, database_url: str
) -> None:
    _wait_for_heartbeat(database_url)
    _wait_for_health(served, "ok", "running")
    [first] = _worker_pids(served)

    os.kill(first, signal.SIGKILL)
    _wait_for_health(served, "degraded", "stopped")
    _wait_for_health(served, "ok", "running")

    workers = _worker_pids(served)
    assert len(workers) == 1 and workers[0] != first, workers
    served.pids.extend(workers)  # stopped by the fixture if anything below fails
    log = served.log()
    assert f"the postback worker (pid {first}) died" in log, log
    assert f"the postback worker restarted (pid {workers[0]})" in log, log

    served.process.send_signal(signal.SIGTERM)
    code = served.process.wait(timeout=STOP_BOUND)
    assert code == 0, served.log()
    assert [p for p in served.pids if _alive(p)] == [], served.log()
