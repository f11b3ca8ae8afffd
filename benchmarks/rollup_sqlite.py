"""The click rollup step on SQLite: how long each step holds the write lock the click path needs.

On SQLite every writer takes the one write lock (BEGIN IMMEDIATE), so while a rollup step
writes its sums, click batches wait. Fills a throwaway SQLite file with `--clicks` clicks of
one day (ten campaigns' worth of addresses, platforms and referrers, as benchmarks/reports.py
makes them), then runs steps of each `--batch` size and times each step's upsert (the part of
its write transaction that grows with the batch) and the clicks rolled up a second.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import load_average, write_results
from linkgen.services import rollups
from linkgen.storage.db import Database
from linkgen.storage.models import Base, Click

SECTION = "rollup_sqlite"


def _clicks(n: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=1, hours=1)
    return [
        {
            "click_id": f"ck{g}",
            "ts": start + timedelta(seconds=g * 0.4),
            "link_id": f"lk{g % 4000}",
            "template_id": "AbCd",
            "media_source": ("Email", "SMS", "Push", "QR")[g % 4],
            "campaign": f"camp{g % 400}",
            "channel": ("email", "sms", "push", "qr")[g % 4],
            "params": {},
            "ip": f"{1 + (g * 7919) % 223}.{(g * 104729) % 256}.{(g * 31) % 256}.{1 + g % 250}",
            "user_agent": "bench",
            "platform": ("android", "ios", "desktop")[(g % 10) // 4],
            "os_version": str(10 + g % 5),
            "referrer": None if g % 10 >= 3 else "https://t.co/x",
            "is_bot": g % 5 == 0,
        }
        for g in range(n)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[5_000, 1_000])
    parser.add_argument("--per-batch", type=int, default=50_000, help="clicks rolled up per size")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rollup-sqlite-"))
    db = Database(f"sqlite:///{tmp / 'linkgen.db'}")
    lines = []
    try:
        Base.metadata.create_all(db.engine)
        rows = _clicks(args.clicks)
        with db.session() as session:
            for i in range(0, len(rows), 5_000):
                session.execute(insert(Click), rows[i : i + 5_000])
        held: list[float] = []
        names = vars(rollups)  # the step's own reference to the upsert, timed in place
        real = names["upsert_adding"]

        def timed(*a: Any, **k: Any) -> None:
            began = time.perf_counter()
            real(*a, **k)
            held.append((time.perf_counter() - began) * 1000)

        names["upsert_adding"] = timed
        for batch in args.batch:
            held.clear()
            done, began = 0, time.perf_counter()
            while done < args.per_batch:
                step = rollups.roll_up_clicks(db, batch=batch)
                done += step.clicks
                if not step.behind:
                    break
            elapsed = time.perf_counter() - began
            line = (
                f"| {batch:,} | {done / elapsed:,.0f} | {statistics.median(held):.0f} ms | "
                f"{max(held):.0f} ms |"
            )
            print(line, flush=True)
            lines.append(line)
        names["upsert_adding"] = real
    finally:
        db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    markdown = "\n".join(
        [
            "## Click rollups on SQLite (`benchmarks/rollup_sqlite.py`)",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.clicks:,} clicks of one day in a "
            f"SQLite file, load average {load_average():.1f} (a shared, busy 2-core machine). "
            "The upsert is the part of a step's write transaction that grows with its batch; the "
            "click path waits for the write lock meanwhile.",
            "",
            "| clicks a step | clicks/s | upsert (lock held), median | max |",
            "|---:|---:|---:|---:|",
            *lines,
        ]
    )
    print(markdown)
    if not args.no_write:
        write_results(SECTION, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
