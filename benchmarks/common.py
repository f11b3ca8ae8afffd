"""Shared helpers for the benchmark scripts: ports, a `linkgen serve` subprocess, RESULTS.md.

Kept small and stable: other benchmarks import `free_port`, `Server`, `start_server`,
`stop_process` and `write_results`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
LINKGEN = str(Path(sys.executable).with_name("linkgen"))
API_KEY = "bench-api-key-0123456789abcdef"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `linkgen serve` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    instance: Path
    database_url: str
    api_key: str
    link_domain: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the JSON API with the bench key; returns the decoded body (or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.api_key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


def server_env(
    instance: Path,
    database_url: str | None = None,
    *,
    api_key: str = API_KEY,
    link_domains: str | None = None,
    port: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a linkgen subprocess (other LINKGEN_* variables removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKGEN_")}
    env["LINKGEN_INSTANCE_PATH"] = str(instance)
    env["LINKGEN_DATABASE_URL"] = database_url or f"sqlite:///{instance / 'linkgen.db'}"
    env["LINKGEN_INITIAL_API_KEY"] = api_key
    env["LINKGEN_LINK_DOMAINS"] = link_domains or f"127.0.0.1:{port or 8000},localhost"
    env["LINKGEN_WORKER"] = "false"
    env["LINKGEN_LOG_LEVEL"] = "WARNING"
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def start_server(
    instance: Path,
    *,
    database_url: str | None = None,
    port: int | None = None,
    workers: int = 1,
    api_key: str = API_KEY,
    link_domains: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 60.0,
) -> Server:
    """Start `linkgen serve --no-worker` on 127.0.0.1 and wait until /healthz answers 200."""
    instance.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = server_env(
        instance,
        database_url,
        api_key=api_key,
        link_domains=link_domains,
        port=port,
        extra=extra_env,
    )
    log_path = instance / f"server-{port}.log"
    log = log_path.open("ab")
    cmd = [LINKGEN, "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), *extra_args]
    process = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True
    )
    log.close()
    server = Server(
        process=process,
        port=port,
        instance=instance,
        database_url=env["LINKGEN_DATABASE_URL"],
        api_key=api_key,
        link_domain=f"127.0.0.1:{port}",
        log_path=log_path,
        env=env,
    )
    wait_healthy(server, timeout)
    return server


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    """Poll /healthz until 200; raise (after stopping the server) if it never comes up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(server.base_url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    stop_process(server.process)
    log = server.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"linkgen serve did not become healthy on {server.port}:\n{log}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop one process we started (SIGTERM, then SIGKILL), by its PID only."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def child_pids(pid: int) -> list[int]:
    """All descendants of `pid` (from /proc), e.g. granian's worker processes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 if it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def running_server(instance: Path, **kwargs: Any) -> Iterator[Server]:
    """`start_server` as a context manager that always stops the processes it started.

    With `--workers N`, a web process that granian's main process leaves behind when it stops
    (one still starting, or one it restarted) is killed too, by the PID it had under the server.
    """
    server = start_server(instance, **kwargs)
    try:
        yield server
    finally:
        children = child_pids(server.pid)
        stop_process(server.process)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                if _parent_of(pid) in (server.pid, 1):  # still ours, not a reused PID
                    os.kill(pid, signal.SIGKILL)


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def write_results(section: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace the text between `<!-- {section}:start -->` and `<!-- {section}:end -->`."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- measuring ----------------------------------------------------------------------------------


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of processes (from /proc), in seconds; unreadable ones count 0."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def load_average() -> float:
    """The 1-minute load average (other work on the machine skews wall-clock figures)."""
    return os.getloadavg()[0]


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


@dataclass
class WrkResult:
    """What one wrk run reported."""

    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_ok: int  # wrk's "Non-2xx or 3xx responses"
    errors: str

    @classmethod
    def parse(cls, out: str) -> WrkResult:
        """Read wrk's `--latency` output."""

        def latency(pct: str) -> float:
            m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
            if m is None:
                raise ValueError(f"no {pct}% latency in wrk output:\n{out}")
            value, unit = float(m.group(1)), m.group(2)
            return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

        requests = re.search(r"(\d+) requests in", out)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errors = re.search(r"Socket errors:.*", out)
        if requests is None or rps is None:
            raise ValueError(f"unexpected wrk output:\n{out}")
        return cls(
            requests=int(requests.group(1)),
            rps=float(rps.group(1)),
            p50_ms=latency("50"),
            p90_ms=latency("90"),
            p99_ms=latency("99"),
            non_ok=int(non.group(1)) if non else 0,
            errors=errors.group(0) if errors else "",
        )


def run_wrk(
    url: str,
    *,
    threads: int,
    connections: int,
    duration: int,
    headers: Mapping[str, str] | None = None,
    script: Path | None = None,
) -> WrkResult:
    """Run wrk once (bounded by the duration and a hard timeout)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    return WrkResult.parse(done.stdout)


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something listens on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")
