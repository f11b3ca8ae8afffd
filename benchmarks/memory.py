"""Memory: one worker's RSS through a 1-million-click run.

    .venv/bin/python benchmarks/memory.py [--clicks 1000000] [--max-seconds 400] [--no-write]

Starts `linkgen serve --workers 1` on a fresh SQLite database, creates a short link, and runs
wrk (-t2 -c32, 20-second rounds) until wrk has completed `--clicks` requests (or the time cap).
A thread samples VmRSS of the granian worker process(es) every half second; the maximum is
reported against the 150 MB target. Each request carries a distinct user agent every 50,000
clicks and a distinct af_sub1, so the caches and the writer see varied input.
Writes benchmarks/RESULTS.md, section `memory`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    child_pids,
    rss_kib,
    run_wrk,
    start_server,
    stop_process,
    write_results,
)
from benchmarks.redirects import IPHONE_UA, setup_short_link

TARGET_MB = 150


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=int, default=400)
    parser.add_argument("--round", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="linkgen-memory-") as tmp:
        server = start_server(Path(tmp))
        try:
            path = setup_short_link(server)
            workers = child_pids(server.pid)

            def sample() -> None:
                start = time.monotonic()
                while not stop.wait(0.5):
                    total = sum(rss_kib(pid) for pid in workers)
                    samples.append((time.monotonic() - start, total))

            sampler = threading.Thread(target=sample, daemon=True)
            idle_kib = sum(rss_kib(pid) for pid in workers)
            sampler.start()
            done = 0
            rounds = 0
            deadline = time.monotonic() + args.max_seconds
            while done < args.clicks and time.monotonic() < deadline:
                ua = f"{IPHONE_UA} r{rounds}"
                url = f"{server.base_url}{path}?af_sub1=round{rounds}"
                result = run_wrk(
                    url,
                    threads=2,
                    connections=32,
                    duration=min(args.round, max(1, int(deadline - time.monotonic()))),
                    headers={"User-Agent": ua},
                )
                done += result.requests - result.non_ok
                rounds += 1
                print(f"round {rounds}: {done} clicks, RSS {samples[-1][1] / 1024:.1f} MB")
            stop.set()
            sampler.join(timeout=5)
        finally:
            stop.set()
            stop_process(server.process)
        with sqlite3.connect(Path(tmp) / "linkgen.db") as conn:
            stored = int(conn.execute("SELECT count(*) FROM clicks").fetchone()[0])

    peak_mb = max(kib for _, kib in samples) / 1024
    last_mb = samples[-1][1] / 1024
    ok = done >= args.clicks and peak_mb < TARGET_MB
    lines = [
        f"clicks answered {done} (stored {stored}) in {rounds} wrk rounds",
        f"worker RSS: idle {idle_kib / 1024:.1f} MB, peak {peak_mb:.1f} MB, "
        f"at the end {last_mb:.1f} MB (target < {TARGET_MB} MB)",
    ]
    lines.append("OK" if ok else "TARGET NOT MET")
    print("\n".join(lines))
    if not args.no_write:
        body = "\n".join(f"- {line}" for line in lines)
        write_results(
            "memory",
            f"""## Memory through a {args.clicks:,}-click run

`benchmarks/memory.py`: wrk -t2 -c32 in {args.round}-second rounds against a short link, one
worker, SQLite; VmRSS of the granian worker sampled every 0.5 s; {time.strftime("%Y-%m-%d")}.

{body}
""",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
