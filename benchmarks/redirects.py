"""Redirect throughput: wrk against a short link (one linkgen worker) and against nginx's 302.

    .venv/bin/python benchmarks/redirects.py [--duration 10] [--connections 32] [--no-write]

Starts `linkgen serve --no-worker --workers 1` on a fresh SQLite database, creates an app, a
template and a short link through the API, runs `wrk -t2 -c32 -d10s --latency` with a mobile
user agent against the short link, then the same against nginx (one worker) answering a static
302. Prints requests/s, p50/p99 latency, the ratio to nginx, and clicks recorded (rows counted
after the server stopped) against redirects answered (wrk's completed requests), then the two
ceilings of `benchmarks/click_ceiling.py` (the server answering with no work; linkgen's Python
work per click with no server). Writes the figures into benchmarks/RESULTS.md, section
`redirects`. Everything listens on 127.0.0.1 and
only the processes started here are stopped, by PID.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.click_ceiling import python_cost, trivial_server
from benchmarks.common import (
    Server,
    WrkResult,
    cpu_count,
    free_port,
    run_wrk,
    start_server,
    stop_process,
    wait_port,
    write_results,
)

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
STORE_URL = "https://apps.apple.com/app/id123456789"
NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 302 {store}; }}
    }}
}}
"""


APP_BODY = {"app_id": "id123456789", "name": "Bench iOS"}
TEMPLATE_BODY = {
    "template_id": "BnCh",
    "ios_app_id": "id123456789",
    "web_fallback_url": "https://example.com/",
    "redirect_allowlist": ["example.com"],
}
LINK_BODY = {"template_id": "BnCh", "channel": "sms", "campaign": "bench", "short": True}


def setup_short_link(server: Server) -> str:
    """Create an app, a template on the server's host and a short SMS link; its path."""
    try:
        server.api("POST", "/api/v1/apps", APP_BODY)
        server.api("POST", "/api/v1/templates", {**TEMPLATE_BODY, "domain": server.link_domain})
        link = server.api("POST", "/api/v1/links", LINK_BODY)
    except urllib.error.HTTPError as exc:
        # The API must work; if it does not, say so and seed through the service layer so the
        # click path can still be measured.
        print(f"WARNING: the API refused the set-up ({exc.code}: {exc.read()[:200]!r});"
              " seeding through linkgen.services instead", file=sys.stderr)  # fmt: skip
        link = _seed_directly(server)
    return f"/BnCh/{link['shortlink_id']}"


def _seed_directly(server: Server) -> dict[str, object]:
    from linkgen.config import Settings
    from linkgen.services.catalog import create_app_record, create_template_record
    from linkgen.services.links import create_link
    from linkgen.storage.db import Database

    settings = Settings.from_env(server.env)
    db = Database(server.database_url)
    try:
        with db.session() as session:
            create_app_record(session, dict(APP_BODY))
            body = {**TEMPLATE_BODY, "domain": server.link_domain}
            create_template_record(session, body, settings.link_domains)
            return create_link(session, dict(LINK_BODY), scheme_for=settings.scheme_for)
    finally:
        db.dispose()


def count_clicks(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM clicks").fetchone()[0])


def run_nginx(args: argparse.Namespace, headers: dict[str, str]) -> WrkResult:
    """wrk against nginx (one worker) answering a static 302."""
    with tempfile.TemporaryDirectory(prefix="nginx-bench-") as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, store=STORE_URL))
        proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", tmp, "-e", f"{tmp}/nginx-error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            url = f"http://127.0.0.1:{port}/BnCh/x"
            run_wrk(url, threads=args.threads, connections=args.connections, duration=2,
                    headers=headers)  # fmt: skip
            return run_wrk(
                url,
                threads=args.threads,
                connections=args.connections,
                duration=args.duration,
                headers=headers,
            )
        finally:
            stop_process(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    headers = {"User-Agent": IPHONE_UA}

    with tempfile.TemporaryDirectory(prefix="linkgen-bench-") as tmp:
        instance = Path(tmp)
        server = start_server(instance)
        try:
            path = setup_short_link(server)
            url = server.base_url + path
            warm = 0
            if args.warmup:
                warm = run_wrk(
                    url,
                    threads=args.threads,
                    connections=args.connections,
                    duration=args.warmup,
                    headers=headers,
                ).requests
            before = count_clicks(instance / "linkgen.db")
            app = run_wrk(
                url,
                threads=args.threads,
                connections=args.connections,
                duration=args.duration,
                headers=headers,
            )
            load = os.getloadavg()[0]
        finally:
            stop_process(server.process)
        recorded = count_clicks(instance / "linkgen.db") - before
        del warm

    nginx = run_nginx(args, headers)
    ratio = app.rps / nginx.rps if nginx.rps else 0.0
    # The ceilings (benchmarks/click_ceiling.py): the server doing nothing, and linkgen's Python
    # work per click with no server at all.
    bare = trivial_server(
        threads=args.threads, connections=args.connections, duration=args.duration,
        headers=headers,
    )  # fmt: skip
    cost = python_cost()
    bare_ratio = bare.rps / nginx.rps if nginx.rps else 0.0
    cost_ratio = cost.clicks_per_core / nginx.rps if nginx.rps else 0.0
    both = 1.0 / (1.0 / bare.rps + cost.total_us / 1e6) if bare.rps else 0.0
    both_ratio = both / nginx.rps if nginx.rps else 0.0
    ceiling_rows = "\n".join(
        [
            "| granian (WSGI, one worker, linkgen's threads): a static 302, no work "
            f"| {bare.rps:.0f} | {bare_ratio:.3f} |",
            f"| linkgen's Python per click in-process, no server: handler {cost.handler_us:.1f}"
            f" us + storing {cost.store_us:.1f} us (batches of 32) "
            f"| {cost.clicks_per_core:.0f} | {cost_ratio:.3f} |",
            "| the two in series (one core, nothing lost to threads or the GIL) "
            f"| {both:.0f} | {both_ratio:.3f} |",
        ]
    )
    answered = app.requests - app.non_ok
    # wrk stops reading when its time is up: up to one request per connection may have been
    # answered (so recorded) by the server without wrk counting it.
    in_flight_ok = 0 <= recorded - app.requests <= args.connections
    lines = [
        f"linkgen  {app.rps:10.0f} req/s  p50 {app.p50_ms:6.2f} ms  p99 {app.p99_ms:6.2f} ms  "
        f"({app.requests} requests, {app.non_ok} non-3xx) {app.errors}",
        f"nginx    {nginx.rps:10.0f} req/s  p50 {nginx.p50_ms:6.2f} ms  p99 {nginx.p99_ms:6.2f} ms",
        f"ratio    {ratio:.3f} (target >= 0.25)   p99 target < 10 ms",
        f"clicks recorded {recorded} vs redirects answered {answered} "
        f"(+{recorded - app.requests} answered after wrk stopped reading)",
        f"ceiling: granian answering a static 302 with no work {bare.rps:.0f} req/s "
        f"(ratio {bare_ratio:.3f}); linkgen's Python per click in-process "
        f"{cost.handler_us:.1f} + {cost.store_us:.1f} us = {cost.clicks_per_core:,.0f}/s on one "
        f"core (ratio {cost_ratio:.3f}); both together {both:,.0f}/s (ratio {both_ratio:.3f})",
    ]
    print("\n".join(lines))
    met = ratio >= 0.25 and app.p99_ms < 10 and app.non_ok == 0 and in_flight_ok
    print("targets met" if met else "TARGETS NOT MET")
    if not args.no_write:
        write_results(
            "redirects",
            f"""## Redirects (short link, one worker) vs nginx static 302

`benchmarks/redirects.py`: wrk -t{args.threads} -c{args.connections} -d{args.duration}s
--latency, iPhone Safari user agent, fresh SQLite database, `linkgen serve --workers 1`;
{platform.machine()}, {cpu_count()} CPUs, Python {platform.python_version()};
{time.strftime("%Y-%m-%d")}; load average after the linkgen run {load:.1f} (wrk, nginx
and the server share these CPUs with whatever else runs: compare ratios, not rates).

| | requests/s | p50 | p99 |
|---|---:|---:|---:|
| linkgen short link | {app.rps:.0f} | {app.p50_ms:.2f} ms | {app.p99_ms:.2f} ms |
| nginx `return 302` | {nginx.rps:.0f} | {nginx.p50_ms:.2f} ms | {nginx.p99_ms:.2f} ms |

- ratio linkgen / nginx: **{ratio:.3f}** (target >= 0.25)
- p99: **{app.p99_ms:.2f} ms** (target < 10 ms)
- clicks recorded **{recorded}** vs redirects answered **{answered}** (wrk's completed
  requests; {app.non_ok} non-3xx; the {recorded - app.requests} extra rows are requests the
  server answered after wrk stopped reading at its deadline, at most one per connection)
- targets {"met" if met else "NOT met"}

The ceilings, measured in the same run (`benchmarks/click_ceiling.py`):

| | per second | ratio to nginx |
|---|---:|---:|
{ceiling_rows}

The ratio target (0.25) asks for {0.25 * nginx.rps:.0f} clicks/s, i.e. at most
{1e6 / (0.25 * nginx.rps) if nginx.rps else 0.0:.1f} us of CPU per click on one core, server
included; linkgen's Python work alone, with no server, costs {cost.total_us:.1f} us.
""",
        )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
