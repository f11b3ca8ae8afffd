"""What `linkgen serve`'s RSGI front costs the SDK's launches and single link creations, in one run.

    .venv/bin/python benchmarks/front_cost.py [--clicks 200000] [--rounds 2] [--duration 12]
        [--connections 4] [--bare-only] [--no-write]

`linkgen serve` runs granian's RSGI interface with linkgen/web/front.py in front of the app: a
request's body is read on the event loop (the slow-client defence of issue 14), then the WSGI
app runs on a pool thread, or, for these two calls on SQLite, on the loop itself when the write
lock is free at once (clicks in memory are answered on the loop too). The other
side here serves the same `linkgen.wsgi:app` under granian's WSGI interface with 40 blocking
threads, as `linkgen serve` did at f302c0c: no event loop in Python, the app reads the body on
granian's thread. That side has no slow-client defence and is not a way to run linkgen; it is
here only to price the front.

Each round starts each side in turn on its own fresh SQLite database (the attribution
benchmark's `--clicks` Android clicks, one app, one template), then drives, with wrk -t1 and
`--connections` connections, SDK launches (the attribution benchmark's script: first launches,
half matched by gaid, a quarter by referrer) and single link creations (`POST /api/v1/links`,
sms, short). For each side and load it prints requests/s, p99, the server's CPU per request
split by thread (the event loop, the threads that run the app, granian's and the rest) and the
voluntary context switches per request, from /proc. On this shared two-core machine requests/s
swing by a quarter between runs of the same code, so compare the sides within a round.

Then the same price with no app work at all (`--bare-only` runs only this part): four servers
answering a small POST with a small JSON body (benchmarks/front_cost_apps.py), each under the
same wrk load: granian's WSGI interface; the RSGI front in front of the same WSGI function (the
body read on the loop, then a pool thread); an RSGI app answering on the loop once it has read
the body; and one answering on the loop without reading it. The steps between them say what
each part of a threaded request's path costs: granian's RSGI scheduling, the body read as a
Rust future, the hand-off to a thread and back. What the front costs a real request beyond
these (the rounds above) is the same hand-offs meeting app threads that hold the GIL.

Writes the figures into benchmarks/RESULTS.md (section `front_cost`); only processes started
here are stopped, by PID.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.attribution import (
    APP_ID,
    create_schema,
    insert_clicks,
    run_launches,
    write_script,
)
from benchmarks.common import (
    LINKGEN,
    ROOT,
    Server,
    WrkResult,
    child_pids,
    cpu_count,
    free_port,
    load_average,
    run_wrk,
    server_env,
    stop_process,
    wait_healthy,
    wait_port,
    write_results,
)

SECTION = "front_cost"
BARE_SECTION = "front_cost_bare"
TEMPLATE = "Bnch"
GRANIAN = str(Path(sys.executable).with_name("granian"))
SIDES = ("serve (RSGI front)", "granian WSGI")
HEADER = (
    "| round | load | side | req/s | p99 | CPU/request | loop | app threads | rest "
    "| switches/request | non-2xx |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)

# wrk: one sms link per request, a campaign out of 50, a subscriber of its own.
LINKS_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"template_id":"%(template)s","channel":"sms","campaign":"bench_' ..
    (counter %% 50) .. '","params":{"af_sub1":"user' .. counter ..
    '","deep_link_value":"shoes","af_sub5":"{{Profile.objectId}}"}}'
  return wrk.format("POST", "/api/v1/links", nil, body)
end
"""


@dataclass
class Threads:
    """CPU seconds and voluntary context switches of one process's threads, by role."""

    cpu: dict[str, float]
    switches: dict[str, int]

    @classmethod
    def read(cls, pid: int) -> Threads:
        tick = os.sysconf("SC_CLK_TCK")
        cpu: dict[str, float] = {}
        switches: dict[str, int] = {}
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                stat = (task / "stat").read_text()
                status = (task / "status").read_text()
            except OSError:
                continue
            name, rest = stat.split("(", 1)[1].rsplit(")", 1)
            fields = rest.split()
            role = _role(name, int(task.name) == pid)
            cpu[role] = cpu.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
            vol = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
            switches[role] = switches.get(role, 0) + vol
        return cls(cpu, switches)

    def minus(self, before: Threads) -> Threads:
        return Threads(
            {k: v - before.cpu.get(k, 0.0) for k, v in self.cpu.items()},
            {k: v - before.switches.get(k, 0) for k, v in self.switches.items()},
        )


def _role(name: str, main: bool) -> str:
    """Which part of the server a thread is: the front's pools name theirs (front.Pool)."""
    if name.startswith("tokio-rt-worke"):
        return "app"  # granian's WSGI blocking threads run the app
    if name.startswith(("linkgen-link-", "linkgen-app-")):
        return "app"  # the front's pools; the click writer and linkgen's other threads: rest
    if main:
        return "loop"  # granian's worker runs the event loop on its main thread
    return "other"


@dataclass
class Measured:
    side: str
    load: str
    wrk: WrkResult
    threads: Threads

    def ms_per_request(self, role: str | None = None) -> float:
        seconds = (
            sum(self.threads.cpu.values()) if role is None else self.threads.cpu.get(role, 0.0)
        )
        return seconds * 1000 / max(self.wrk.requests, 1)

    def switches_per_request(self) -> float:
        return sum(self.threads.switches.values()) / max(self.wrk.requests, 1)


@contextmanager
def serving(side: str, instance: Path, url: str) -> Iterator[Server]:
    """One side's server on a free port, stopped (by PID) on the way out."""
    instance.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(instance, url, link_domains=f"127.0.0.1:{port},localhost", port=port)
    if side == SIDES[0]:
        cmd = [LINKGEN, "serve", "--no-worker", "--no-migrate", "--workers", "1"]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [GRANIAN, "--interface", "wsgi", "--workers", "1", "--blocking-threads", "40"]
        cmd += ["--no-ws", "--log-level", "warning", "--no-access-log"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "linkgen.wsgi:app"]
    log_path = instance / f"server-{port}.log"
    process = _start(cmd, env, log_path)
    server = Server(
        process=process,
        port=port,
        instance=instance,
        database_url=url,
        api_key=env["LINKGEN_INITIAL_API_KEY"],
        link_domain=f"127.0.0.1:{port}",
        log_path=log_path,
        env=env,
    )
    try:
        wait_healthy(server)
        yield server
    finally:
        stop_process(process)


def _start(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A server subprocess in a session of its own, its output in `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
            start_new_session=True,
        )


def worker_of(pid: int) -> int:
    """granian's worker (the process that runs the app) under the server process `pid`."""
    children = child_pids(pid)
    if not children:
        raise RuntimeError("granian started no worker")
    return children[-1]


def web_process(server: Server) -> int:
    """granian's worker under a `serving` server."""
    return worker_of(server.pid)


def measure(side: str, tmp: Path, clicks: int, duration: int, connections: int) -> list[Measured]:
    """Both loads against one side, on a fresh database (in a folder of its own under `tmp`)."""
    instance = Path(tempfile.mkdtemp(prefix=side.split()[0] + "-", dir=tmp)) / "instance"
    db_path = instance / "linkgen.db"
    instance.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db_path}"
    create_schema(url)
    insert_clicks(db_path, clicks)
    found: list[Measured] = []
    with serving(side, instance, url) as server:
        key = server.api("POST", "/api/v1/apps", {"app_id": APP_ID, "name": "Bench shop"})[
            "sdk_key"
        ]
        server.api("POST", "/api/v1/templates", {"template_id": TEMPLATE, "domain": "localhost"})
        pid = web_process(server)
        launches = server.base_url + f"/api/v1/sdk/{APP_ID}/launches"
        run_launches(
            launches,
            write_script(tmp, f"w{side[0]}", clicks),
            threads=1,
            connections=connections,
            duration=3,
            key=key,
        )
        before = Threads.read(pid)
        result = run_launches(
            launches,
            write_script(tmp, f"m{side[0]}{time.time_ns()}", clicks),
            threads=1,
            connections=connections,
            duration=duration,
            key=key,
        )
        found.append(Measured(side, "launches", result, Threads.read(pid).minus(before)))
        script = tmp / "links.lua"
        script.write_text(LINKS_LUA % {"template": TEMPLATE})
        headers = {
            "Authorization": f"Bearer {server.api_key}",
            "Content-Type": "application/json",
        }
        run_wrk(
            server.base_url + "/api/v1/links",
            threads=1,
            connections=connections,
            duration=3,
            headers=headers,
            script=script,
        )
        before = Threads.read(pid)
        result = run_wrk(
            server.base_url + "/api/v1/links",
            threads=1,
            connections=connections,
            duration=duration,
            headers=headers,
            script=script,
        )
        found.append(Measured(side, "link creations", result, Threads.read(pid).minus(before)))
    return found


# The bare servers: (label, granian interface, target in benchmarks/front_cost_apps.py).
BARE = (
    ("granian WSGI", "wsgi", "wsgi"),
    ("RSGI front (loop, then a thread)", "rsgi", "front"),
    ("RSGI, answered on the loop after the body", "rsgi", "loop_body"),
    ("RSGI, answered on the loop, body not read", "rsgi", "loop_bare"),
)
BARE_HEADER = (
    "| round | server | req/s | CPU/request | switches/request | non-2xx |\n"
    "|---:|---|---:|---:|---:|---:|"
)
BARE_LUA = """
wrk.method = "POST"
wrk.body = '{"template_id":"Bnch","channel":"sms","campaign":"bench"}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Bare:
    label: str
    wrk: WrkResult
    threads: Threads

    def us_per_request(self) -> float:
        return sum(self.threads.cpu.values()) * 1e6 / max(self.wrk.requests, 1)

    def switches_per_request(self) -> float:
        return sum(self.threads.switches.values()) / max(self.wrk.requests, 1)


def measure_bare(
    label: str, interface: str, target: str, tmp: Path, duration: int, connections: int
) -> Bare:
    """One bare server (granian, one worker, as `linkgen serve` configures its loop) under wrk."""
    port = free_port()
    cmd = [GRANIAN, "--interface", interface, "--workers", "1", "--no-ws"]
    cmd += ["--log-level", "warning", "--no-access-log", "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    cmd += ["--blocking-threads", "40"] if interface == "wsgi" else ["--loop", "auto"]
    cmd.append(f"benchmarks.front_cost_apps:{target}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKGEN_")}
    env["PYTHONPATH"] = str(ROOT)
    script = tmp / "bare.lua"
    script.write_text(BARE_LUA)
    url = f"http://127.0.0.1:{port}/bare"
    process = _start(cmd, env, tmp / f"bare-{port}.log")
    try:
        wait_port(port)
        run_wrk(url, threads=1, connections=connections, duration=2, script=script)
        worker = worker_of(process.pid)
        before = Threads.read(worker)
        result = run_wrk(url, threads=1, connections=connections, duration=duration, script=script)
        return Bare(label, result, Threads.read(worker).minus(before))
    finally:
        stop_process(process)


def bare_row(b: Bare, round_no: int) -> str:
    return (
        f"| {round_no} | {b.label} | {b.wrk.rps:,.0f} | {b.us_per_request():.0f} us | "
        f"{b.switches_per_request():.1f} | {b.wrk.non_ok} |"
    )


def row(m: Measured, round_no: int) -> str:
    return (
        f"| {round_no} | {m.load} | {m.side} | {m.wrk.rps:,.0f} | {m.wrk.p99_ms:.2f} ms | "
        f"{m.ms_per_request():.2f} ms | {m.ms_per_request('loop'):.2f} | "
        f"{m.ms_per_request('app'):.2f} | {m.ms_per_request('other'):.2f} | "
        f"{m.switches_per_request():.1f} | {m.wrk.non_ok} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=12)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--bare-only", action="store_true", help="only the servers with no app")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()

    started = datetime.now(UTC)
    load = load_average()
    rows: list[str] = []
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="linkgen-bench-front-") as tmp_name:
        tmp = Path(tmp_name)
        for round_no in range(1, 0 if args.bare_only else args.rounds + 1):
            order = SIDES if round_no % 2 else tuple(reversed(SIDES))
            for side in order:
                for m in measure(side, tmp, args.clicks, args.duration, args.connections):
                    results.append(m)
                    rows.append(row(m, round_no))
                    print(rows[-1], flush=True)
                    if m.wrk.non_ok or m.wrk.errors:
                        print(f"  non-2xx {m.wrk.non_ok}, {m.wrk.errors}")
        bare_rows: list[str] = []
        bare: list[Bare] = []
        for round_no in range(1, args.rounds + 1):
            for label, interface, target in BARE if round_no % 2 else BARE[::-1]:
                found = measure_bare(label, interface, target, tmp, args.duration, args.connections)
                bare.append(found)
                bare_rows.append(bare_row(found, round_no))
                print(bare_rows[-1], flush=True)
    load = max(load, load_average())
    for label, *_ in BARE:
        figures = [f"{b.us_per_request():.0f}" for b in bare if b.label == label]
        print(f"{label}: {', '.join(figures)} us of CPU per request, by round")
    if not args.no_write:
        write_results(
            BARE_SECTION,
            f"""### The front with no app work (`benchmarks/front_cost.py`, second part)

{started:%Y-%m-%d %H:%M} UTC, {args.rounds} rounds, the servers in turn (reversed every other
round), each answering a 57-byte POST with an 11-byte JSON body (benchmarks/front_cost_apps.py);
wrk -t1 -c{args.connections} -d{args.duration}s each; {cpu_count()} CPUs shared with other work
(load average up to {load:.1f}). CPU per request is the web process's, from /proc.

{BARE_HEADER}
{chr(10).join(bare_rows)}
""",
        )
    if args.bare_only:
        return 0
    for kind in ("launches", "link creations"):
        front = [m.ms_per_request() for m in results if m.load == kind and m.side == SIDES[0]]
        wsgi = [m.ms_per_request() for m in results if m.load == kind and m.side == SIDES[1]]
        print(
            f"{kind}: the front's CPU per request minus WSGI's, by round: "
            + ", ".join(f"{a - b:+.2f} ms" for a, b in zip(front, wsgi, strict=False))
        )
    if not args.no_write:
        write_results(
            SECTION,
            f"""## What the RSGI front costs a threaded request (`benchmarks/front_cost.py`)

{started:%Y-%m-%d %H:%M} UTC, {args.rounds} rounds, the sides alternating (first side of a
round first), each on a fresh SQLite database with {args.clicks:,} clicks; wrk -t1
-c{args.connections} -d{args.duration}s per load; Python {platform.python_version()},
{cpu_count()} CPUs shared with other work (load average up to {load:.1f}). CPU per request is
the web process's, from /proc, split by thread: the event loop (granian's main thread, where
the front runs these calls on SQLite), the threads that run the app (the front's pools, or
granian's WSGI blocking threads), the rest
(granian's runtime, the click writer). `granian WSGI` is the same app with no front, as
`linkgen serve` ran at f302c0c, for comparison only (it has no slow-client defence).

{HEADER}
{chr(10).join(rows)}
""",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
