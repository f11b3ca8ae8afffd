"""How fast one Python worker could answer clicks at best: the two ceilings `redirects.py` prints.

1. The server alone: granian (WSGI, one worker, linkgen's thread count) answering a static 302
   from a WSGI function that does nothing else, under the same wrk load as the short link.
2. linkgen's own Python work per click, in-process with no server and no other thread: the
   click handler (look-ups, device detection, routing, the click row) with the recorder taken
   out, then the recorder storing those rows in batches of 32 (the batch size the group commit
   reaches under 32 connections). One core divided by their sum is what a worker could reach
   if the server, the threads and the GIL cost nothing.

    .venv/bin/python benchmarks/click_ceiling.py

Everything listens on 127.0.0.1; the one server started here is stopped by its PID.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import WrkResult, free_port, run_wrk, stop_process, wait_port

TRIVIAL_APP = """\
def app(environ, start_response):
    start_response("302 Found", [("Location", "https://apps.apple.com/app/id123456789"),
                                 ("Cache-Control", "no-store"), ("Content-Length", "0")])
    return [b""]
"""
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
BATCH = 32


@dataclass(frozen=True)
class PythonCost:
    """Microseconds of CPU per click, in-process."""

    handler_us: float
    store_us: float

    @property
    def total_us(self) -> float:
        return self.handler_us + self.store_us

    @property
    def clicks_per_core(self) -> float:
        return 1e6 / self.total_us


def trivial_server(
    *, threads: int, connections: int, duration: int, headers: dict[str, str]
) -> WrkResult:
    """wrk against granian serving a do-nothing WSGI 302 with linkgen's server settings."""
    from linkgen.web.front import THREADS as BLOCKING_THREADS

    with tempfile.TemporaryDirectory(prefix="linkgen-ceiling-") as tmp:
        Path(tmp, "trivial302.py").write_text(TRIVIAL_APP)
        port = free_port()
        cmd = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1"]
        cmd += ["--blocking-threads", str(BLOCKING_THREADS), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--log-level", "warning", "trivial302:app"]
        proc = subprocess.Popen(
            cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )  # fmt: skip
        try:
            wait_port(port)
            url = f"http://127.0.0.1:{port}/BnCh/x"
            run_wrk(url, threads=threads, connections=connections, duration=2, headers=headers)
            return run_wrk(
                url, threads=threads, connections=connections, duration=duration, headers=headers
            )
        finally:
            stop_process(proc)


def python_cost(clicks: int = 20_000) -> PythonCost:
    """CPU per click of the handler without recording, then of storing the rows it built."""
    with tempfile.TemporaryDirectory(prefix="linkgen-ceiling-") as tmp:
        return _python_cost(Path(tmp), clicks)


def in_process_app(tmp: Path, link_domain: str = "127.0.0.1:8000") -> tuple[Any, Any, Any]:
    """A migrated SQLite app in `tmp` with no worker: (app, its runtime, its settings)."""
    from linkgen.clicks.detect import warm_up
    from linkgen.config import Settings
    from linkgen.factory import create_app
    from linkgen.runtime import get_runtime
    from linkgen.storage.migrate import upgrade

    url = f"sqlite:///{tmp / 'linkgen.db'}"
    upgrade(url)
    settings = Settings.from_env(
        {
            "LINKGEN_DATABASE_URL": url,
            "LINKGEN_INSTANCE_PATH": str(tmp),
            "LINKGEN_LINK_DOMAINS": link_domain,
            "LINKGEN_WORKER": "false",
        }
    )
    app = create_app(settings)
    warm_up()
    return app, get_runtime(app), settings


def _python_cost(tmp: Path, clicks: int) -> PythonCost:
    from linkgen.clicks.recorder import _Item
    from linkgen.services.catalog import create_app_record, create_template_record
    from linkgen.services.links import create_link

    _app, runtime, settings = in_process_app(tmp)
    try:
        with runtime.db.session() as session:
            create_app_record(session, {"app_id": "id123456789", "name": "Bench iOS"})
            create_template_record(
                session,
                {
                    "template_id": "BnCh",
                    "ios_app_id": "id123456789",
                    "domain": "127.0.0.1:8000",
                    "web_fallback_url": "https://example.com/",
                    "redirect_allowlist": ["example.com"],
                },
                settings.link_domains,
            )
            link = create_link(
                session,
                {"template_id": "BnCh", "channel": "sms", "campaign": "bench", "short": True},
                scheme_for=settings.scheme_for,
            )
        handler = runtime.click_handler
        assert handler is not None
        recorder = runtime.click_recorder
        assert recorder is not None
        captured: list[tuple[Any, ...]] = []
        # The recorder is taken out (its rows kept). The click carries no recipient value, so
        # the scanner detector is not consulted (as for any such click).
        handler.recorder = _Capture(captured)  # type: ignore[assignment]
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"/BnCh/{link['shortlink_id']}",
            "QUERY_STRING": "",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": IPHONE_UA,
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
        }

        def start_response(*_args: Any) -> None:
            return None

        for _ in range(2_000):
            handler(dict(environ), start_response)
        captured.clear()
        started = time.process_time()
        for _ in range(clicks):
            handler(dict(environ), start_response)
        handler_s = time.process_time() - started
        items = [_Item(*args) for args in captured]
        started = time.process_time()
        for start in range(0, len(items), BATCH):
            recorder._store(items[start : start + BATCH])
        store_s = time.process_time() - started
        return PythonCost(handler_us=handler_s / clicks * 1e6, store_us=store_s / len(items) * 1e6)
    finally:
        runtime.close()


class _Capture:
    """Stands in for the recorder: keeps what was submitted, commits at once."""

    def __init__(self, into: list[tuple[Any, ...]]) -> None:
        self.into = into

    def submit(self, *args: Any, loop: Any = None) -> _Capture:
        self.into.append(args + (None,) * (5 - len(args)))
        return self

    def wait(self) -> None:
        return None


def main() -> int:
    headers = {"User-Agent": IPHONE_UA}
    server = trivial_server(threads=2, connections=32, duration=5, headers=headers)
    cost = python_cost()
    print(f"granian WSGI, static 302, no work: {server.rps:.0f} req/s, p99 {server.p99_ms:.2f} ms")
    print(
        f"linkgen Python per click, in-process: handler {cost.handler_us:.1f} us + storing "
        f"{cost.store_us:.1f} us = {cost.total_us:.1f} us -> at most "
        f"{cost.clicks_per_core:,.0f} clicks/s on one core"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
