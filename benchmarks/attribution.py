"""SDK launch throughput and latency with 1,000,000 clicks stored (one linkgen worker, SQLite).

    .venv/bin/python benchmarks/attribution.py [--clicks 1000000] [--duration 15]
        [--connections 4] [--threads 1] [--no-write]

Builds a fresh SQLite database (schema from the models), bulk-inserts the clicks (executemany in
chunks: Android clicks of one app over the last 6 days, each with its own gaid and click id,
spread over 50,000 IP addresses), starts `linkgen serve --no-worker --workers 1 --no-migrate` on
127.0.0.1, creates the app through the API, then drives `POST /api/v1/sdk/{app}/launches` with
wrk: every request is a first launch of a new device; half carry the gaid of a stored click
(device-id match), a quarter an install referrer naming a stored click id, a quarter nothing
(organic, with a probabilistic look-up on the client's IP). Prints launches/s and p50 / p99
latency as wrk measured them, checks afterwards that every answered launch was stored, and
writes the figures into benchmarks/RESULTS.md (section `attribution`). Only processes started
here are stopped, by PID. Targets: p99 < 10 ms and >= 1000 launches/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    WrkResult,
    child_pids,
    cpu_count,
    cpu_seconds,
    load_average,
    run_wrk,
    start_server,
    stop_process,
    write_results,
)

APP_ID = "com.bench.shop"
SECTION = "attribution"
_NOT_MATCH = ("total", "installs_counted")
CHUNK = 50_000
IP_POOL = 50_000
TARGET_P99_MS = 10.0
TARGET_RPS = 1000.0

LUA = """
local counter = 0
local threads = 0
local run = "%(run)s"

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
end

request = function()
  counter = counter + 1
  local device = run .. "-" .. tid .. "-" .. counter
  local n = math.random(0, %(clicks)d - 1)
  local kind = counter %% 4
  local body
  if kind < 2 then
    body = '{"device_id":"' .. device .. '","first_launch":true,"gaid":"gaid-' .. n .. '"}'
  elseif kind == 2 then
    body = '{"device_id":"' .. device .. '","first_launch":true,' ..
           '"install_referrer":"af_tranid=ck' .. n .. '&pid=Email"}'
  else
    body = '{"device_id":"' .. device .. '","first_launch":true,"customer_user_id":"cu-' ..
           device .. '"}'
  end
  return wrk.format("POST", "%(path)s", nil, body)
end
"""


def sqlite_ts(ts: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (the format the queries compare)."""
    return ts.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def create_schema(url: str) -> None:
    """The schema from the models (tests prove the migrations build the same)."""
    from linkgen.storage.db import make_engine
    from linkgen.storage.models import Base

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def insert_clicks(db_path: Path, count: int, seed: int = 7) -> float:
    """Bulk-insert `count` clicks; returns the seconds it took."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA synchronous=OFF")
    sql = (
        "INSERT INTO clicks (click_id, ts, link_id, template_id, app_id, media_source, campaign,"
        " channel, params, ip, user_agent, platform, os_version, referrer, device_id,"
        " customer_user_id, is_retargeting, is_bot, bot_reason, is_qr, attributable,"
        " not_attributable_reason, outcome, consumed)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    for start in range(0, count, CHUNK):
        rows = []
        for i in range(start, min(start + CHUNK, count)):
            campaign = f"camp{i % 50}"
            gaid = f"gaid-{i}"
            params = {"pid": "Email", "c": campaign, "af_channel": "email", "gaid": gaid}
            ip = f"10.{(i % IP_POOL) // 65536}.{(i % 65536) // 256}.{i % 256}"
            ts = now - timedelta(seconds=rng.randint(60, 6 * 86400))
            rows.append(
                (
                    f"ck{i}",
                    sqlite_ts(ts),
                    f"lk{i % 1000}",
                    "BnCh",
                    APP_ID,
                    "Email",
                    campaign,
                    "email",
                    json.dumps(params),
                    ip,
                    "Mozilla/5.0 (Linux; Android 14; Pixel 8)",
                    "android",
                    "14",
                    None,
                    gaid,
                    None,
                    0,
                    0,
                    None,
                    0,
                    1,
                    None,
                    "redirect",
                    0,
                )
            )
        with conn:
            conn.executemany(sql, rows)
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def run_launches(
    url: str, script: Path, *, threads: int, connections: int, duration: int, key: str
) -> WrkResult:
    """wrk with the launch script, the app's SDK key and an Android user agent."""
    headers = {
        "X-SDK-Key": key,
        "Content-Type": "application/json",
        "User-Agent": "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A)",
    }
    return run_wrk(
        url,
        threads=threads,
        connections=connections,
        duration=duration,
        headers=headers,
        script=script,
    )


def write_script(tmp: Path, run: str, clicks: int) -> Path:
    path = tmp / f"launches-{run}.lua"
    path.write_text(LUA % {"run": run, "clicks": clicks, "path": f"/api/v1/sdk/{APP_ID}/launches"})
    return path


def stored_launches(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        total = conn.execute("SELECT count(*) FROM launches").fetchone()[0]
        by_match = dict(
            conn.execute(
                "SELECT coalesce(match_type, 'organic'), count(*) FROM launches GROUP BY 1"
            ).fetchall()
        )
        installs = conn.execute("SELECT coalesce(sum(installs), 0) FROM stat_counters").fetchone()
    finally:
        conn.close()
    return {"total": total, "installs_counted": int(installs[0]), **by_match}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="linkgen-bench-attr-") as tmp_name:
        tmp = Path(tmp_name)
        db_path = tmp / "instance" / "linkgen.db"
        url = f"sqlite:///{db_path}"
        create_schema(url)
        load_s = insert_clicks(db_path, args.clicks)
        print(f"stored {args.clicks:,} clicks in {load_s:.1f} s")
        server = start_server(tmp / "instance", database_url=url, extra_args=("--no-migrate",))
        try:
            app = server.api("POST", "/api/v1/apps", {"app_id": APP_ID, "name": "Bench shop"})
            key = app["sdk_key"]
            endpoint = server.base_url + f"/api/v1/sdk/{APP_ID}/launches"
            run_launches(
                endpoint,
                write_script(tmp, "warm", args.clicks),
                threads=1,
                connections=args.connections,
                duration=3,
                key=key,
            )
            pids = [server.pid, *child_pids(server.pid)]
            cpu_before = cpu_seconds(pids)
            load_before = load_average()
            result = run_launches(
                endpoint,
                write_script(tmp, "main", args.clicks),
                threads=args.threads,
                connections=args.connections,
                duration=args.duration,
                key=key,
            )
            cpu_ms = (cpu_seconds(pids) - cpu_before) * 1000 / max(result.requests, 1)
            load = max(load_before, load_average())
        finally:
            stop_process(server.process)
        stored = stored_launches(db_path)

    ok = result.p99_ms < TARGET_P99_MS and result.rps >= TARGET_RPS and result.non_ok == 0
    print(
        f"launches/s {result.rps:.0f}  p50 {result.p50_ms:.2f} ms  p90 {result.p90_ms:.2f} ms  "
        f"p99 {result.p99_ms:.2f} ms  non-2xx {result.non_ok}  {result.errors}"
    )
    print(
        f"server CPU per launch {cpu_ms:.2f} ms (one idle core: ~{1000 / cpu_ms:.0f} launches/s);"
        f" load average during the run {load:.1f} on {cpu_count()} CPUs"
    )
    print(f"stored launches (warm-up included): {stored}")
    print("targets met" if ok else "TARGETS NOT MET (p99 < 10 ms, >= 1000 launches/s)")
    if not args.no_write:
        write_results(
            SECTION,
            f"""## SDK launches (attribution)

`benchmarks/attribution.py`: `POST /api/v1/sdk/{{app}}/launches`, every request a first launch of
a new device (1/2 gaid match, 1/4 install-referrer match, 1/4 organic with a probabilistic look-up),
against {args.clicks:,} stored clicks; `linkgen serve --workers 1`, SQLite, wrk
`-t{args.threads} -c{args.connections} -d{args.duration}s` on the same machine
({platform.machine()}, {cpu_count()} CPUs, Python {platform.python_version()}).

| launches/s | p50 | p90 | p99 | non-2xx | target |
|---:|---:|---:|---:|---:|---|
| {result.rps:.0f} | {result.p50_ms:.2f} ms | {result.p90_ms:.2f} ms | {result.p99_ms:.2f} ms \
| {result.non_ok} | p99 < 10 ms, >= 1000/s: {"met" if ok else "NOT met"} |

Server CPU time per launch (all server processes, from /proc): {cpu_ms:.2f} ms, i.e. about
{1000 / cpu_ms:.0f} launches/s on one idle core. Load average during the run: {load:.1f} (other
work on a shared machine lowers the wall-clock figures; the CPU figure depends on it much less).

Launches stored after the run (warm-up included): {stored["total"]:,}; by match type:
{", ".join(f"{k} {v:,}" for k, v in sorted(stored.items()) if k not in _NOT_MATCH)};
installs counted: {stored["installs_counted"]:,} (a launch whose random gaid repeats one already
installed is a reinstall, not counted).
Clicks loaded in {load_s:.0f} s (executemany, {CHUNK:,} a transaction).
""",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
