"""Clicks while 1,000 slow-body and 1,000 slow-header connections are held (issue 14, item 1).

    .venv/bin/python -m benchmarks.slow_clients [--slow 1000] [--duration 30]

One `linkgen serve --no-worker` (one web process, SQLite, its default 10 s deadlines). wrk
clicks one short link for `--duration` seconds twice: first alone, then while this process
holds `--slow` slow-body connections (headers with `Content-Length: 100000` to the link API,
the SDK launches and the login form, then one body byte every 2 s) and `--slow` slow-header
connections (a header line that never ends, one byte every 2 s). A connection the server cuts
off (408 or closed at its deadline) is opened again at once, so the number held stays the same
for the whole run. Printed, and written to RESULTS.md: the clicks' rate, p50 and p99, and
errors (socket errors and non-3xx answers) in both runs, with the cut-offs seen. Target (the
issue): click p99 under 100 ms with the slow clients, and no errors.

Bounded: each run stops after `--duration` seconds; the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    WrkResult,
    cpu_count,
    load_average,
    run_wrk,
    running_server,
    write_results,
)
from benchmarks.redirects import setup_short_link
from linkgen.cli.serve import raise_open_files_limit

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
SLOW_BODY_PATHS = ("/api/v1/links", "/api/v1/sdk/id123456789/launches", "/login")
TRICKLE_EVERY = 2.0  # seconds between two bytes of a slow client
WRK_THREADS = 2
WRK_CONNECTIONS = 20
TARGET_P99_MS = 100.0
# Measured once, by hand (not by this script); kept in the RESULTS.md section it writes.
NOTES = """\
Before (main at `f302c0c`, granian WSGI with 40 blocking threads): 45 slow-body connections
were enough for a click and `/healthz` to go unanswered (8 s client timeout), by a small
script against the same server; the benchmark's wrk run would have been all timeouts.

Cost of the RSGI front on the click path itself (wrk, 2 threads, 50 connections, one short
link, interleaved 6 s runs against `granian --interface wsgi --blocking-threads 40` on the same
SQLite file, load average 5-12, five runs): 0.64-0.75 of WSGI's requests per second. p99 was
mixed: lower than WSGI's in the noisier runs, higher in the quietest (25-57 ms against 10-19
ms at load 5). The click path's speed is issue 15's subject (an asynchronous edge)."""


@dataclass
class Held:
    """What the slow clients saw."""

    body_cut: int = 0  # slow bodies the server ended (408 or closed)
    header_cut: int = 0  # slow headers the server ended
    connect_errors: int = 0
    open_body: int = 0
    open_header: int = 0


async def _slow_client(port: int, kind: str, n: int, held: Held, stop: asyncio.Event) -> None:
    """Hold one slow connection of `kind`; open a new one whenever the server ends it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            held.connect_errors += 1
            await asyncio.sleep(TRICKLE_EVERY)
            continue
        if kind == "body":
            path = SLOW_BODY_PATHS[n % len(SLOW_BODY_PATHS)]
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            )
        else:
            head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: a"
        setattr(held, f"open_{kind}", getattr(held, f"open_{kind}") + 1)
        try:
            writer.write(head.encode())
            while not stop.is_set():
                await writer.drain()
                try:
                    await asyncio.wait_for(reader.read(4096), TRICKLE_EVERY)
                except TimeoutError:
                    writer.write(b"a" if kind == "body" else b"b")
                    continue
                # the server answered (408) or closed: this connection is over
                setattr(held, f"{kind}_cut", getattr(held, f"{kind}_cut") + 1)
                break
        except OSError:
            setattr(held, f"{kind}_cut", getattr(held, f"{kind}_cut") + 1)
        finally:
            setattr(held, f"open_{kind}", getattr(held, f"open_{kind}") - 1)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _hold(port: int, count: int, held: Held, stop: asyncio.Event) -> None:
    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(_slow_client(port, "body", n, held, stop)))
        tasks.append(asyncio.create_task(_slow_client(port, "header", n, held, stop)))
        if n % 100 == 99:
            await asyncio.sleep(0.05)  # do not overflow the listen backlog
    await asyncio.gather(*tasks)


class SlowClients:
    """The slow connections, held by an asyncio loop in a thread of this process."""

    def __init__(self, port: int, count: int) -> None:
        self.held = Held()
        self.loop = asyncio.new_event_loop()
        self.stop_event = asyncio.Event()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete,
            args=(_hold(port, count, self.held, self.stop_event),),
            daemon=True,
        )

    def __enter__(self) -> SlowClients:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=TRICKLE_EVERY * 3 + 10)
        if not self.thread.is_alive():
            self.loop.close()


def _raise_open_files_limit(wanted: int) -> None:
    raise_open_files_limit(wanted)
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if now != resource.RLIM_INFINITY and now < wanted:
        sys.exit(f"the open-files limit is {now}; this benchmark needs {wanted}")


def _row(name: str, r: WrkResult) -> str:
    errors = r.errors.removeprefix("Socket errors: ") if r.errors else "none"
    return f"| {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.non_ok} | {errors} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=1000, help="slow connections of each kind")
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    args = parser.parse_args()
    _raise_open_files_limit(4 * args.slow + 2048)  # both ends of each connection, and spare
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        path = setup_short_link(server)
        url = server.base_url + path
        headers = {"User-Agent": IPHONE_UA}
        wrk = {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "headers": headers}
        alone = run_wrk(url, duration=args.duration, **wrk)  # type: ignore[arg-type]
        with SlowClients(server.port, args.slow) as slow:
            deadline = time.monotonic() + 60
            while (
                slow.held.open_body + slow.held.open_header < 2 * args.slow * 0.95
                and time.monotonic() < deadline
            ):
                time.sleep(0.2)
            held_at_start = (slow.held.open_body, slow.held.open_header)
            attacked = run_wrk(url, duration=args.duration, **wrk)  # type: ignore[arg-type]
            held_at_end = (slow.held.open_body, slow.held.open_header)
            held = slow.held
        health_ok = server.api("GET", "/healthz") is not None
    met = attacked.p99_ms < TARGET_P99_MS and attacked.non_ok == 0 and not attacked.errors
    table = "\n".join(
        [
            "| clicks (wrk, 20 connections) | req/s | p50 ms | p99 ms | non-3xx | socket errors |",
            "|---|---|---|---|---|---|",
            _row("alone", alone),
            _row(f"with {args.slow:,} slow bodies + {args.slow:,} slow headers", attacked),
        ]
    )
    summary = (
        f"Slow connections held (body, header): {held_at_start} when the clicks started, "
        f"{held_at_end} when they ended; cut off by the server's 10 s deadlines while held: "
        f"{held.body_cut:,} bodies (408), {held.header_cut:,} header reads; "
        f"connect errors {held.connect_errors}. Click rate with / without: "
        f"{attacked.rps / alone.rps:.2f}. Target p99 < {TARGET_P99_MS:.0f} ms and no errors: "
        f"{'met' if met else 'NOT met'}. /healthz answered after: {health_ok}. "
        f"Load average {load_average():.1f} on {cpu_count()} CPUs (shared machine)."
    )
    print(table)
    print(summary)
    write_results(
        "slow_clients",
        "## Slow clients (`benchmarks/slow_clients.py`)\n\n"
        f"One `linkgen serve --no-worker` (one web process, SQLite), wrk for {args.duration} s "
        f"per run on one short link, {WRK_THREADS} threads.\n\n{table}\n\n{summary}\n\n{NOTES}\n",
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
