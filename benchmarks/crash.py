"""Crash durability: SIGKILL the server mid-load; every click whose redirect arrived must be stored.

    .venv/bin/python benchmarks/crash.py [--threads 16] [--kill-after 4] [--no-write]

Starts `linkgen serve --workers 1` on a fresh SQLite database, creates a short link, and runs
keep-alive HTTP clients in several threads; each request carries a unique marker
(`af_sub1=<n>`, stored in the click's params) and the client notes every marker whose 302 it
received. After `--kill-after` seconds the server's processes (granian's main process and its
worker) get SIGKILL, by PID. Then the database is opened and every received marker is looked up.
Writes the result to benchmarks/RESULTS.md, section `crash`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import child_pids, start_server, write_results
from benchmarks.redirects import IPHONE_UA, setup_short_link


def client(
    port: int,
    path: str,
    counter: itertools.count[int],
    received: list[int],
    errors: list[str],
    stop: threading.Event,
) -> None:
    """Send requests on one keep-alive connection until the server dies (or `stop`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        while not stop.is_set():
            n = next(counter)
            try:
                conn.request("GET", f"{path}?af_sub1={n}", headers={"User-Agent": IPHONE_UA})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
                return  # the server is gone
            if resp.status == 302:
                received.append(n)  # list.append is atomic under the GIL
            else:
                errors.append(f"HTTP {resp.status}")
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--kill-after", type=float, default=4.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="linkgen-crash-") as tmp:
        server = start_server(Path(tmp))
        pids = [server.pid]
        try:
            path = setup_short_link(server)
            pids = [server.pid, *child_pids(server.pid)]
            counter = itertools.count(1)
            received: list[int] = []
            errors: list[str] = []
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=client, args=(server.port, path, counter, received, errors, stop)
                )
                for _ in range(args.threads)
            ]
            for t in threads:
                t.start()
            time.sleep(args.kill_after)
            # Workers first, so none outlives the main process to finish its batch politely.
            for pid in reversed(pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            server.process.wait(timeout=10)
            for t in threads:
                t.join(timeout=30)
            stop.set()
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

        with sqlite3.connect(Path(tmp) / "linkgen.db") as conn:
            stored = {
                int(v)
                for (v,) in conn.execute("SELECT json_extract(params, '$.af_sub1') FROM clicks")
                if v is not None
            }
            counted = conn.execute("SELECT coalesce(sum(clicks), 0) FROM stat_counters").fetchone()
    missing = sorted(set(received) - stored)
    sent = next(counter) - 1
    lines = [
        f"requests sent {sent}, redirects received {len(received)}, clicks stored {len(stored)}, "
        f"counter total {counted[0]}",
        f"received but missing from the database: {len(missing)} {missing[:10]}",
        f"stored without a received redirect (in flight at the kill): "
        f"{len(stored - set(received))}",
        f"client errors at the kill: {len(errors)} ({', '.join(sorted(set(errors)))})",
    ]
    ok = not missing and len(received) > 0 and counted[0] == len(stored)
    lines.append("OK: every answered click survived SIGKILL" if ok else "FAILED")
    print("\n".join(lines))
    if not args.no_write:
        body = "\n".join(f"- {line}" for line in lines)
        write_results(
            "crash",
            f"""## Crash durability (SIGKILL mid-load)

`benchmarks/crash.py`: {args.threads} keep-alive client threads against a short link, one
worker, SQLite (WAL, synchronous=NORMAL); SIGKILL to granian and its worker after
{args.kill_after:g} s; {time.strftime("%Y-%m-%d")}.

{body}
""",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
