"""Scale-out on PostgreSQL: 2 web processes + 2 workers under mixed load, then with chaos.

    .venv/bin/python -m benchmarks.scale [--duration 20] [--chaos | --no-chaos] [--no-write]

Each phase uses a fresh database `linkgen_scale` (dropped and recreated), `linkgen db upgrade`,
two `linkgen serve --no-worker --workers 1` processes, two `linkgen worker` processes and the
fake CleverTap (subprocess, from `benchmarks/postbacks.py`). It sets up an app, its CleverTap
integration (EU1, all_sources, af_purchase -> Charged with revenue), a template and a short
link, then runs mixed load from Python threads (httpx, 127.0.0.1 only) for `--duration`
seconds: clicks on the short link alternating between both ports (each with a unique
`af_sub1` marker), link creation, SDK first launches and events. The chaos phase also SIGKILLs
one web process and one worker (and restarts them) and restarts PostgreSQL once, while the
clients keep going and count errors. Afterwards: wait for the postback queue to drain, stop
everything started here (by PID), check markers vs `clicks`, `stat_counters` vs row counts,
postbacks vs what the fake received, and write RESULTS.md section `scale`.

By default the plain phase runs, then the chaos phase; `--chaos` runs only the chaos phase,
`--no-chaos` only the plain one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.common import (
    LINKGEN,
    ROOT,
    Server,
    child_pids,
    free_port,
    server_env,
    start_server,
    stop_process,
)
from benchmarks.common import write_results as write_section
from benchmarks.postbacks import ACCOUNT, PASSCODE, WORKER_ARGS, start_fake, start_worker

DB_NAME = "linkgen_scale"
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DB_DSN = f"host=127.0.0.1 port=5432 user=postgres dbname={DB_NAME}"
DB_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
APP_ID = "id123456789"
TEMPLATE = "ScLe"
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
KINDS = ("click", "link", "launch", "event")
DRAIN_LIMIT = 120.0


def pg_cluster_cmd(action: str) -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]


def ensure_postgres_running() -> None:
    ready = subprocess.run(["pg_isready", "-h", "127.0.0.1"], capture_output=True, timeout=30)
    if ready.returncode != 0:
        subprocess.run(pg_cluster_cmd("start"), check=False, timeout=120)


def recreate_database() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def query(sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(DB_DSN, connect_timeout=10) as conn:
        return list(conn.execute(sql).fetchall())


def _unsettled(statuses: dict[str, int]) -> int:
    """Postbacks still on their way: queued, being sent, or in doubt awaiting a check."""
    return sum(statuses.get(s, 0) for s in ("queued", "sending", "in_doubt"))


def postback_statuses() -> dict[str, int]:
    return {str(s): int(n) for s, n in query("SELECT status, count(*) FROM postbacks GROUP BY 1")}


# --- processes -------------------------------------------------------------------------------


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process we started and its descendants (granian's workers), by PID."""
    for pid in [*child_pids(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    children = child_pids(process.pid)
    stop_process(process)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class Cluster:
    workdir: Path
    env: dict[str, str]
    ports: list[int]
    link_domains: str
    webs: list[Server] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    retired: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_web(self, port: int) -> Server:
        return start_server(
            self.workdir / "instance",
            database_url=DB_URL,
            port=port,
            link_domains=self.link_domains,
            extra_env={"LINKGEN_CLEVERTAP_API_BASE": self.env["LINKGEN_CLEVERTAP_API_BASE"]},
            extra_args=("--no-migrate",),
        )

    def start_worker(self) -> subprocess.Popen[bytes]:
        return start_worker(self.env, self.workdir / "worker.log")

    def stop_all(self) -> None:
        for web in self.webs:
            stop_tree(web.process)
        for worker in self.workers:
            stop_process(worker)
        for process in self.retired:
            if process.poll() is None:
                kill_tree(process)


# --- load ------------------------------------------------------------------------------------


@dataclass
class Stats:
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    error_times: list[tuple[float, str]] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def good(self, kind: str) -> None:
        with self.lock:
            self.ok[kind] += 1

    def bad(self, kind: str, what: str, t: float) -> None:
        with self.lock:
            self.errors[kind] += 1
            self.error_kinds[f"{kind}: {what}"] += 1
            self.error_times.append((t, kind))


class Load:
    def __init__(self, ports: list[int], api_key: str, sdk_key: str, shortlink: str) -> None:
        self.ports = ports
        self.api_key = api_key
        self.sdk_key = sdk_key
        self.shortlink = shortlink
        self.stats = Stats()
        self.stop = threading.Event()
        self.began = 0.0

    def _call(self, kind: str, fn: Any, expect: tuple[int, ...]) -> httpx.Response | None:
        t = time.monotonic() - self.began
        try:
            resp: httpx.Response = fn()
        except httpx.HTTPError as exc:
            self.stats.bad(kind, type(exc).__name__, t)
            time.sleep(0.05)  # no hot spin while a process is down
            return None
        if resp.status_code not in expect:
            self.stats.bad(kind, f"HTTP {resp.status_code}", t)
            time.sleep(0.05)
            return None
        self.stats.good(kind)
        return resp

    def clicks(self, n: int) -> None:
        with httpx.Client(timeout=10, headers={"User-Agent": IPHONE_UA}) as client:
            i = 0
            while not self.stop.is_set():
                port = self.ports[i % len(self.ports)]
                marker = f"m{n}-{i}"
                url = f"http://127.0.0.1:{port}/{TEMPLATE}/{self.shortlink}?af_sub1={marker}"
                if self._call("click", lambda u=url: client.get(u), (302,)):
                    with self.stats.lock:
                        self.stats.markers.append(marker)
                i += 1

    def links(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(timeout=10, headers=headers) as client:
            i = 0
            while not self.stop.is_set():
                url = f"http://127.0.0.1:{self.ports[i % len(self.ports)]}/api/v1/links"
                body = {
                    "template_id": TEMPLATE,
                    "channel": "email",
                    "campaign": f"scale_{i % 10}",
                    "params": {"af_sub2": f"l{i}"},
                }
                self._call("link", lambda u=url, b=body: client.post(u, json=b), (201,))
                i += 1

    def sdk(self, n: int) -> None:
        with httpx.Client(timeout=10, headers={"X-SDK-Key": self.sdk_key}) as client:
            i = 0
            while not self.stop.is_set():
                base = f"http://127.0.0.1:{self.ports[i % len(self.ports)]}/api/v1/sdk/{APP_ID}"
                device = f"dev-{n}-{i}-{uuid.uuid4().hex[:8]}"
                cuid = f"cu-{n}-{i}"
                launch = {
                    "device_id": device,
                    "customer_user_id": cuid,
                    "first_launch": True,
                    "user_agent": IPHONE_UA,
                }
                ok = self._call(
                    "launch",
                    lambda u=base, b=launch: client.post(f"{u}/launches", json=b),
                    (200, 201),
                )
                if ok is not None:
                    for k in range(2):
                        event = {
                            "event_id": f"ev-{n}-{i}-{k}-{uuid.uuid4().hex[:6]}",
                            "device_id": device,
                            "customer_user_id": cuid,
                            "event_name": "af_purchase",
                            "event_values": {"af_revenue": "9.99", "af_currency": "EUR"},
                        }
                        self._call(
                            "event",
                            lambda u=base, b=event: client.post(f"{u}/events", json=b),
                            (200, 201),
                        )
                i += 1


# --- chaos -----------------------------------------------------------------------------------


@dataclass
class ChaosLog:
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, began: float, text: str) -> None:
        self.actions.append(f"t={time.monotonic() - began:5.1f}s {text}")
        print(self.actions[-1], flush=True)


def chaos(cluster: Cluster, load: Load, duration: float, log: ChaosLog) -> None:
    began = load.began

    def at(fraction: float) -> bool:
        wait = began + duration * fraction - time.monotonic()
        return not load.stop.wait(max(0.0, wait))

    if not at(0.25):
        return
    web = cluster.webs[1]
    log.note(began, f"SIGKILL web :{web.port} (pid {web.pid}) and worker pid "
             f"{cluster.workers[0].pid}")  # fmt: skip
    kill_tree(web.process)
    cluster.retired.append(web.process)
    old_worker = cluster.workers[0]
    kill_tree(old_worker)
    cluster.retired.append(old_worker)
    cluster.workers[0] = cluster.start_worker()
    try:
        cluster.webs[1] = cluster.start_web(web.port)
        log.note(began, f"web :{web.port} back (pid {cluster.webs[1].pid}); worker restarted "
                 f"(pid {cluster.workers[0].pid})")  # fmt: skip
    except RuntimeError as exc:
        log.problems.append(f"web :{web.port} did not restart: {exc}")
        log.note(began, "web restart FAILED")
    if not at(0.5):
        return
    log.note(began, "restarting PostgreSQL")
    done = subprocess.run(pg_cluster_cmd("restart"), capture_output=True, text=True, timeout=120)
    log.note(began, f"PostgreSQL restart exit {done.returncode} {done.stderr.strip()[:200]}")


# --- one phase -------------------------------------------------------------------------------


def setup(web: Server, api_base: str) -> tuple[str, str]:
    app = web.api("POST", "/api/v1/apps", {"app_id": APP_ID, "name": "Scale iOS"})
    integration = {
        "active": True,
        "account_id": ACCOUNT,
        "account_passcode": PASSCODE,
        "region": "EU1",
        "default_postbacks": "all_sources",
        "in_app_events": {
            "enabled": True,
            "mappings": [
                {
                    "sdk_event": "af_purchase",
                    "partner_event": "Charged",
                    "sending_option": "all_sources",
                    "send_revenue": "values_and_revenue",
                }
            ],
        },
    }
    web.api("PUT", f"/api/v1/apps/{APP_ID}/integrations/clevertap", integration)
    template = {
        "template_id": TEMPLATE,
        "domain": web.link_domain,
        "ios_app_id": APP_ID,
        "web_fallback_url": "https://example.com/",
        "redirect_allowlist": ["example.com"],
    }
    web.api("POST", "/api/v1/templates", template)
    link = web.api(
        "POST",
        "/api/v1/links",
        {"template_id": TEMPLATE, "channel": "sms", "campaign": "scale", "short": True},
    )
    del api_base
    return str(app["sdk_key"]), str(link["shortlink_id"])


def run_phase(duration: float, with_chaos: bool) -> dict[str, Any]:
    name = "chaos" if with_chaos else "plain"
    print(f"=== phase {name}: {duration:.0f} s", flush=True)
    ensure_postgres_running()
    recreate_database()
    with tempfile.TemporaryDirectory(prefix="lg-bench-scale-") as tmp:
        workdir = Path(tmp)
        fake = start_fake(workdir, 0.0)
        ports = [free_port(), free_port()]
        domains = ",".join(f"127.0.0.1:{p}" for p in ports)
        env = server_env(
            workdir / "instance",
            DB_URL,
            link_domains=domains,
            extra={"LINKGEN_CLEVERTAP_API_BASE": fake.api_base},
        )
        (workdir / "instance").mkdir(parents=True, exist_ok=True)
        subprocess.run([LINKGEN, "db", "upgrade"], env=env, cwd=str(ROOT), check=True,
                       timeout=120, capture_output=True)  # fmt: skip
        cluster = Cluster(workdir, env, ports, domains)
        log = ChaosLog()
        result: dict[str, Any] = {"phase": name, "duration": duration}
        try:
            cluster.webs = [cluster.start_web(p) for p in ports]
            cluster.workers = [cluster.start_worker(), cluster.start_worker()]
            sdk_key, shortlink = setup(cluster.webs[0], fake.api_base)
            load = Load(ports, cluster.webs[0].api_key, sdk_key, shortlink)
            threads = [threading.Thread(target=load.clicks, args=(n,)) for n in range(3)]
            threads.append(threading.Thread(target=load.links))
            threads += [threading.Thread(target=load.sdk, args=(n,)) for n in range(2)]
            load.began = time.monotonic()
            for t in threads:
                t.start()
            chaos_thread = None
            if with_chaos:
                chaos_thread = threading.Thread(target=chaos, args=(cluster, load, duration, log))
                chaos_thread.start()
            load.stop.wait(duration)
            load.stop.set()
            for t in threads:
                t.join(timeout=60)
            elapsed = time.monotonic() - load.began
            if chaos_thread is not None:
                chaos_thread.join(timeout=180)
            result.update(after_load(cluster, load, elapsed, log))
        finally:
            cluster.stop_all()
            ensure_postgres_running()
            data = fake.finish()
        result.update(check(data, load.stats.markers))
        result["chaos_actions"] = log.actions
        result["problems"] = log.problems + result.get("problems", [])
        result["worker_log_tail"] = tail(workdir / "worker.log")
        result["web_log_tail"] = {
            str(p): tail(workdir / "instance" / f"server-{p}.log") for p in ports
        }
        return result


def tail(path: Path, n: int = 15) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    interesting = [ln for ln in lines if "rror" in ln or "Traceback" in ln or "FATAL" in ln]
    return interesting[-n:]


def after_load(cluster: Cluster, load: Load, elapsed: float, log: ChaosLog) -> dict[str, Any]:
    stats = load.stats
    late = max(0.0, elapsed - 4.0)
    late_errors = Counter(kind for t, kind in stats.error_times if t >= late)
    health = {}
    for web in cluster.webs:
        try:
            resp = httpx.get(web.base_url + "/healthz", timeout=5)
            health[str(web.port)] = f"{resp.status_code} {resp.text.strip()[:120]}"
        except httpx.HTTPError as exc:
            health[str(web.port)] = f"unreachable: {type(exc).__name__}"
    alive = {
        "webs": [w.process.poll() is None for w in cluster.webs],
        "workers": [w.poll() is None for w in cluster.workers],
    }
    problems = []
    for i, w in enumerate(cluster.workers):
        if w.poll() is not None:
            problems.append(f"worker {i} (pid {w.pid}) exited with {w.returncode} during the run")
    for web in cluster.webs:
        if web.process.poll() is not None:
            problems.append(f"web :{web.port} exited with {web.process.returncode}")
    began = time.monotonic()
    statuses = postback_statuses()
    while _unsettled(statuses) and (time.monotonic() - began < DRAIN_LIMIT):
        time.sleep(0.5)
        statuses = postback_statuses()
    drained = time.monotonic() - began
    if _unsettled(statuses):
        problems.append(f"postback queue not drained after {DRAIN_LIMIT:.0f} s: {statuses}")
    return {
        "elapsed": elapsed,
        "ok": dict(stats.ok),
        "errors": dict(stats.errors),
        "error_kinds": dict(stats.error_kinds.most_common(12)),
        "errors_last_4s": dict(late_errors),
        "error_timeline": {
            f"{s}s": n for s, n in sorted(Counter(int(t) for t, _ in stats.error_times).items())
        },
        "health_after": health,
        "alive_after": alive,
        "drain_seconds": drained,
        "postbacks": statuses,
        "problems": problems,
    }


def check(fake_data: dict[str, Any], markers: list[str]) -> dict[str, Any]:
    stored = {str(m) for (m,) in query("SELECT params->>'af_sub1' FROM clicks")}
    missing = [m for m in markers if m not in stored]
    clicks_rows = query("SELECT count(*) FROM clicks")[0][0]
    installs_rows = query("SELECT count(*) FROM installs")[0][0]
    events_rows = query("SELECT count(*) FROM events")[0][0]
    sums = query(
        "SELECT coalesce(sum(clicks),0), coalesce(sum(installs),0), coalesce(sum(events),0)"
        " FROM stat_counters"
    )[0]
    postbacks = query("SELECT linkgen_id, status, kind FROM postbacks")
    received: dict[str, int] = fake_data["received"]
    sent_ids = [lid for lid, status, _ in postbacks if status == "sent"]
    kinds = Counter(f"{kind}:{status}" for _, status, kind in postbacks)
    dup_ids = {k: n for k, n in received.items() if n > 1}
    return {
        "clicks_answered": len(markers),
        "clicks_missing": len(missing),
        "clicks_missing_sample": missing[:5],
        "rows": {"clicks": clicks_rows, "installs": installs_rows, "events": events_rows},
        "stat_sums": {"clicks": int(sums[0]), "installs": int(sums[1]), "events": int(sums[2])},
        "postback_kinds": dict(kinds),
        "postback_rows": len(postbacks),
        "postbacks_not_sent": len(postbacks) - len(sent_ids),
        "sent_received_once": sum(1 for k in sent_ids if received.get(k) == 1),
        "sent_never_received": sum(1 for k in sent_ids if k not in received),
        "duplicate_ids": len(dup_ids),
        "duplicate_deliveries": sum(n - 1 for n in dup_ids.values()),
        "received_unknown": len(set(received) - {lid for lid, _, _ in postbacks}),
        "fake_statuses": fake_data["statuses"],
    }


# --- report ----------------------------------------------------------------------------------


def section(r: dict[str, Any]) -> str:
    el = r["elapsed"]
    rows = "\n".join(
        f"| {k} | {r['ok'].get(k, 0):,} | {r['ok'].get(k, 0) / el:,.0f} | {r['errors'].get(k, 0)} |"
        for k in KINDS
    )
    stat_ok = all(r["rows"][k] == r["stat_sums"][k] for k in ("clicks", "installs", "events"))
    once = r["postbacks_not_sent"] == 0 and r["sent_never_received"] == 0
    once = once and r["duplicate_deliveries"] == 0
    text = f"""### Phase `{r["phase"]}` ({el:.1f} s of load)

| request | succeeded | per second | failed |
|---|---|---|---|
{rows}

- clicks answered 302 / marker rows missing in `clicks`: {r["clicks_answered"]:,} / \
**{r["clicks_missing"]}**
- rows vs `stat_counters` sums: clicks {r["rows"]["clicks"]:,} vs {r["stat_sums"]["clicks"]:,}, \
installs {r["rows"]["installs"]:,} vs {r["stat_sums"]["installs"]:,}, events \
{r["rows"]["events"]:,} vs {r["stat_sums"]["events"]:,}: **{"equal" if stat_ok else "DIFFER"}**
- postbacks: {r["postback_rows"]:,} rows {json.dumps(r["postback_kinds"])}; queue drained in \
{r["drain_seconds"]:.1f} s; not `sent`: {r["postbacks_not_sent"]}; sent and received exactly \
once: {r["sent_received_once"]:,}; sent but never received: {r["sent_never_received"]}; \
duplicate deliveries: {r["duplicate_deliveries"]} ({r["duplicate_ids"]} ids): \
**{"exactly once" if once else "NOT exactly once"}**
- errors by cause: {json.dumps(r["error_kinds"]) if r["error_kinds"] else "none"}
- failed requests per second of load (second: count): {json.dumps(r["error_timeline"])}
- errors in the last 4 s of load: {json.dumps(r["errors_last_4s"]) or "none"}; /healthz \
after the load: {json.dumps(r["health_after"])}
"""
    if r["chaos_actions"]:
        text += "- chaos: " + "; ".join(r["chaos_actions"]) + "\n"
    if r["problems"]:
        text += "- **problems**: " + "; ".join(r["problems"]) + "\n"
    return text


def report(results: list[dict[str, Any]]) -> str:
    head = f"""## Scale-out on PostgreSQL (`benchmarks/scale.py`)

Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()};
PostgreSQL on 127.0.0.1 (fresh database per phase); 2 x `linkgen serve --no-worker --workers 1`,
2 x `linkgen worker {" ".join(WORKER_ARGS)}`, fake CleverTap in its own process. Load: 3 click
threads (iPhone UA, short link, alternating ports, unique `af_sub1`), 1 link-creation thread,
2 SDK threads (first launch with customer_user_id, then 2 `af_purchase` events), all httpx
with one connection per thread. Chaos phase: at 25 % of the run SIGKILL of one web process
(with its granian worker) and one `linkgen worker`, both restarted; at 50 % a PostgreSQL
restart (`pg_ctlcluster ... restart`).
"""
    return head + "\n" + "\n".join(section(r) for r in results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=20.0)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--chaos", action="store_true", help="run only the chaos phase")
    group.add_argument("--no-chaos", action="store_true", help="run only the plain phase")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    duration = max(5.0, min(args.duration, 120.0))
    phases = [True] if args.chaos else [False] if args.no_chaos else [False, True]
    results = []
    try:
        for with_chaos in phases:
            result = run_phase(duration, with_chaos)
            print(json.dumps(result, indent=2, default=str), flush=True)
            results.append(result)
    finally:
        ensure_postgres_running()
    text = report(results)
    print(text)
    if not args.no_write:
        write_section("scale", text)


if __name__ == "__main__":
    main()
