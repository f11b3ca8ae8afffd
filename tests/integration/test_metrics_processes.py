"""/metrics under a real `linkgen serve --workers 2`: the counts of every web process, summed.

Through a real server on a free 127.0.0.1 port (SQLite: the subject is the server, not the
storage), with its temporary directory inside the test's, so the metrics directory `serve`
makes can be looked at. Requests go on a fresh connection each, from several threads at once,
so both web processes answer some (checked from each process's own files). Then every scrape,
whichever process answers it, shows exactly the requests sent; a web process killed outright is
replaced, marked dead (it leaves `linkgen_info`) and its counts still count; when `serve` exits
the directory is gone. Only the processes started here are stopped, by PID.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from benchmarks.common import Server, child_pids, running_server
from benchmarks.redirects import setup_short_link
from linkgen import __version__
from tests.integration.test_metrics import parse_exposition, series

REQUESTS = 120  # of each kind per round, in rounds until both processes have answered some
MAX_ROUNDS = 20
THREADS = 6
SCRAPES = 8  # at least, and until both processes have answered one (at most MAX_SCRAPES)
MAX_SCRAPES = 200
WAIT = 30.0
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
LIST_APPS = {"endpoint": "api.list_apps", "method": "GET", "status": "2xx"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with running_server(tmp_path / "instance", workers=2, extra_env={"TMPDIR": str(tmp)}) as srv:
        yield srv, tmp


def _get(server: Server, path: str, **headers: str) -> tuple[int, bytes]:
    """One request on its own connection (no keep-alive: the next may reach another process)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        conn.request("GET", path, headers={"Connection": "close", **headers})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _scrape(server: Server) -> dict[str, float]:
    status, body = _get(server, "/metrics")
    assert status == 200, body[:300]
    return parse_exposition(body.decode())


def _per_process(directory: Path, kind: str) -> dict[int, dict[str, float]]:
    """Each process's own samples, read from its file of `kind` (counter, histogram)."""
    out: dict[int, dict[str, float]] = {}
    for file in directory.glob(f"{kind}_*.db"):
        samples: dict[str, float] = {}
        for family in MultiProcessCollector.merge([str(file)]):  # type: ignore[no-untyped-call]
            for sample in family.samples:
                samples[series(sample.name, **sample.labels)] = sample.value
        out[int(file.stem.rpartition("_")[2])] = samples
    return out


def _web_pids(server: Server) -> set[int]:
    return set(child_pids(server.pid))  # `--no-worker`: granian's web processes only


def _scrapes_by(directory: Path, pids: set[int]) -> dict[int, float]:
    """How many scrapes each process answered, from its own file."""
    scraped = series(
        "linkgen_http_request_duration_seconds_count",
        endpoint="metrics.metrics",
        method="GET",
        status="2xx",
    )
    histograms = _per_process(directory, "histogram")
    return {pid: histograms.get(pid, {}).get(scraped, 0) for pid in pids}


def _totals(samples: dict[str, float]) -> tuple[float, float]:
    """(requests to api.list_apps, redirects of any outcome) in one scrape."""
    listed = samples.get(series("linkgen_http_request_duration_seconds_count", **LIST_APPS), 0)
    redirects = sum(v for k, v in samples.items() if k.startswith("linkgen_redirects_total{"))
    return listed, redirects


def _wait_for(check: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {WAIT} s: {what}")


def test_every_scrape_sums_both_processes(served: tuple[Server, Path]) -> None:
    server, tmp = served
    [directory] = tmp.glob("linkgen-metrics-*")
    assert directory.stat().st_mode & 0o077 == 0  # private to this user
    click = setup_short_link(server)
    auth = {"Authorization": f"Bearer {server.api_key}"}

    def one(n: int) -> int:
        if n % 2:
            return _get(server, "/api/v1/apps", **auth)[0]
        return _get(server, click, **{"User-Agent": DESKTOP_UA})[0]

    # Both processes answer some, and their own counts add up to what was sent. Which process
    # the kernel hands a connection to is its choice: on a busy machine one process may take a
    # whole round, so rounds go on until both have answered (at most MAX_ROUNDS).
    sent = 0
    with ThreadPoolExecutor(THREADS) as pool:
        while True:
            statuses = list(pool.map(one, range(2 * REQUESTS)))
            sent += REQUESTS
            assert statuses.count(200) >= REQUESTS  # the API's (a click may be 200 or 302)
            assert set(statuses) <= {200, 302}, statuses
            histograms = _per_process(directory, "histogram")
            listed_by = {
                pid: s.get(series("linkgen_http_request_duration_seconds_count", **LIST_APPS), 0)
                for pid, s in histograms.items()
            }
            assert sum(listed_by.values()) == sent
            if len([n for n in listed_by.values() if n > 0]) == 2:
                break
            assert sent < MAX_ROUNDS * REQUESTS, listed_by

    # Every scrape says the sum, whichever process answers it: scrape until both have answered.
    pids = _web_pids(server)
    assert len(pids) == 2, pids
    assert set(histograms) == pids  # only the web processes write (not serve itself)
    scrapes = 0
    while scrapes < SCRAPES or 0 in _scrapes_by(directory, pids).values():
        assert scrapes < MAX_SCRAPES, _scrapes_by(directory, pids)
        samples = _scrape(server)
        scrapes += 1
        assert _totals(samples) == (sent, sent)
        assert samples[series("linkgen_clicks_total", kind="all")] == sent  # the database's
        live = {k for k in samples if k.startswith("linkgen_info{")}
        assert {series("linkgen_info", pid=str(p), version=__version__) for p in pids} == live
        resident = {k for k in samples if k.startswith("process_resident_memory_bytes{")}
        assert {series("process_resident_memory_bytes", pid=str(p)) for p in pids} == resident
    assert sum(_scrapes_by(directory, pids).values()) == scrapes

    # A web process killed outright: granian starts another; the dead one's counts stay, it
    # leaves linkgen_info and process_*.
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: len(_web_pids(server) - {victim}) == 2, "a new web process")
    new_pids = _web_pids(server)

    def marked_dead() -> bool:
        live = {k for k in _scrape(server) if k.startswith("linkgen_info{")}
        return live == {series("linkgen_info", pid=str(p), version=__version__) for p in new_pids}

    _wait_for(marked_dead, f"pid {victim} marked dead")
    for _ in range(SCRAPES):
        samples = _scrape(server)
        assert _totals(samples) == (sent, sent)
        assert not any(f'pid="{victim}"' in k for k in samples)


def test_serve_removes_its_metrics_directory(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with running_server(tmp_path / "instance", workers=2, extra_env={"TMPDIR": str(tmp)}) as srv:
        [directory] = tmp.glob("linkgen-metrics-*")
        pids = _web_pids(srv)
        # Until both serve: granian does not stop a web process still starting until it kills
        # it, 30 s later (the SIGTERM reached it before its handler was in place).
        for _ in range(MAX_SCRAPES):
            assert _get(srv, "/metrics")[0] == 200
            if 0 not in _scrapes_by(directory, pids).values():
                break
        assert 0 not in _scrapes_by(directory, pids).values()
    assert srv.process.returncode == 0
    assert not directory.exists()
