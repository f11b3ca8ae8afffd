"""GET /metrics: Prometheus text format 0.0.4.

Two kinds of numbers:

* from the database, so they agree across processes: clicks (summed `stat_counters`), installs
  and re-engagements (the same counters), postbacks by status, the postback queue's depth and
  the age of its oldest entry. Three aggregate queries, cached for `DB_CACHE_SECONDS` so a
  scraper cannot turn /metrics into a load generator.
* process-local: redirects by outcome (the click handler's own `outcomes` dict, read here, so
  the click path does no extra work), the latency histogram of requests Flask dispatches (the
  link domain's redirects never reach Flask and are not in it), and process info. With several
  server processes each one reports its own, labelled with its `pid`.

Who may read it (the numbers name campaigns and volumes): with `LINKGEN_METRICS_TOKEN` set, only
a request with `Authorization: Bearer <token>` (compared in constant time; anything else is a
401); without it, only a client on this machine or a trusted proxy itself, as
`linkgen.web.proxy.is_local_client` resolves it (anyone else gets a 404). A public client coming
through a trusted proxy is that public client, so it is refused.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import resource
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from linkgen import __version__
from linkgen.domain.errors import NotFound, Unauthorized
from linkgen.runtime import Runtime, get_runtime
from linkgen.storage.models import Postback, StatCounter
from linkgen.storage.types import utcnow
from linkgen.web.proxy import request_is_local

bp = Blueprint("metrics", __name__)
log = logging.getLogger("linkgen.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DB_CACHE_SECONDS = 5.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUEUED_STATUSES = ("queued", "sending", "in_doubt")
POSTBACK_STATUSES = ("queued", "sending", "in_doubt", "sent", "failed", "skipped")
PROCESS_STARTED = time.time()
_EXTRAS_KEY = "metrics"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class LatencyHistogram:
    """Request durations by endpoint, method and status class; one lock, a few additions."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        # (endpoint, method, status class) -> [bucket counts..., +Inf count, sum]
        self._series: dict[tuple[str, str, str], list[float]] = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one request."""
        key = (endpoint, method, f"{status // 100}xx")
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0.0] * (len(self.buckets) + 2)
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    series[i] += 1
                    break
            else:
                series[len(self.buckets)] += 1
            series[-1] += seconds

    def lines(self, name: str) -> list[str]:
        """Exposition lines (cumulative buckets)."""
        with self._lock:
            snapshot = {key: list(values) for key, values in self._series.items()}
        out = [
            f"# HELP {name} Time Flask took to answer a request, by endpoint.",
            f"# TYPE {name} histogram",
        ]
        for (endpoint, method, status), values in sorted(snapshot.items()):
            labels = f'endpoint="{_esc(endpoint)}",method="{method}",status="{status}"'
            running = 0.0
            for bound, count in zip(self.buckets, values, strict=False):
                running += count
                out.append(f'{name}_bucket{{{labels},le="{_num(bound)}"}} {_num(running)}')
            running += values[len(self.buckets)]
            out.append(f'{name}_bucket{{{labels},le="+Inf"}} {_num(running)}')
            out.append(f"{name}_sum{{{labels}}} {values[-1]:.6f}")
            out.append(f"{name}_count{{{labels}}} {_num(running)}")
        return out


class MetricsState:
    """What one process keeps for /metrics."""

    def __init__(self) -> None:
        self.latency = LatencyHistogram()
        self._db_lines: list[str] = []
        self._db_at = -math.inf
        self._db_lock = threading.Lock()

    def db_lines(self, runtime: Runtime, max_age: float = DB_CACHE_SECONDS) -> list[str]:
        """The database-derived lines, recomputed at most every `max_age` seconds."""
        with self._db_lock:
            if time.monotonic() - self._db_at >= max_age:
                try:
                    lines = _database_lines(runtime)
                except SQLAlchemyError:
                    # Scrapes must still answer (and say so) while the database is away.
                    log.warning("metrics: the database did not answer", exc_info=True)
                    return _database_up(False)
                self._db_lines = [*_database_up(True), *lines]
                self._db_at = time.monotonic()
            return self._db_lines

    def invalidate(self) -> None:
        """Recompute the database lines on the next scrape."""
        with self._db_lock:
            self._db_at = -math.inf


def metrics_state(runtime: Runtime) -> MetricsState:
    """This process's metrics state."""
    state = runtime.extras.get(_EXTRAS_KEY)
    if state is None:
        state = runtime.extras.setdefault(_EXTRAS_KEY, MetricsState())
    assert isinstance(state, MetricsState)
    return state


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]
) -> list[str]:
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    out.extend(f"{name}{labels} {_num(value)}" for labels, value in samples)
    return out


def _database_up(up: bool) -> list[str]:
    return _family(
        "linkgen_database_up",
        "gauge",
        "1 when the database answered the last metrics query.",
        [("", 1 if up else 0)],
    )


def _database_lines(runtime: Runtime) -> list[str]:
    with runtime.db.session() as session:
        sums = session.execute(
            select(
                func.coalesce(func.sum(StatCounter.clicks), 0),
                func.coalesce(func.sum(StatCounter.human_clicks), 0),
                func.coalesce(func.sum(StatCounter.bot_clicks), 0),
                func.coalesce(func.sum(StatCounter.installs), 0),
                func.coalesce(func.sum(StatCounter.reengagements), 0),
                func.coalesce(func.sum(StatCounter.events), 0),
            )
        ).one()
        by_status = dict(
            session.execute(select(Postback.status, func.count()).group_by(Postback.status)).all()
        )
        oldest = session.scalar(
            select(func.min(Postback.created_at)).where(Postback.status.in_(QUEUED_STATUSES))
        )
    clicks, human, bot, installs, reengagements, events = (int(v) for v in sums)
    statuses = sorted(set(POSTBACK_STATUSES) | set(by_status))
    depth = sum(int(by_status.get(s, 0)) for s in QUEUED_STATUSES)
    age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    return [
        *_family(
            "linkgen_clicks_total",
            "counter",
            "Clicks recorded on the link domain (all processes), by kind.",
            [('{kind="all"}', clicks), ('{kind="human"}', human), ('{kind="bot"}', bot)],
        ),
        *_family(
            "linkgen_attribution_total",
            "counter",
            "Attributed launches: installs (reinstalls and re-attributions included) "
            "and re-engagements.",
            [('{type="install"}', installs), ('{type="reengagement"}', reengagements)],
        ),
        *_family(
            "linkgen_events_total",
            "counter",
            "In-app events received from app SDKs.",
            [("", events)],
        ),
        *_family(
            "linkgen_postbacks",
            "gauge",
            "Postbacks by status.",
            [(f'{{status="{_esc(s)}"}}', int(by_status.get(s, 0))) for s in statuses],
        ),
        *_family(
            "linkgen_postback_queue_depth",
            "gauge",
            "Postbacks not yet settled (queued, being sent, or in doubt awaiting a check).",
            [("", depth)],
        ),
        *_family(
            "linkgen_postback_queue_oldest_seconds",
            "gauge",
            "Age of the oldest waiting postback (0 when none waits).",
            [("", round(age, 3))],
        ),
    ]


def _click_outcomes(app: Flask) -> dict[str, int]:
    """The click handler's outcome counters, found by walking the WSGI middleware chain."""
    from linkgen.clicks.handler import ClickHandler

    layer: Any = app.wsgi_app
    for _ in range(10):
        if isinstance(layer, ClickHandler):
            return dict(layer.outcomes)
        layer = getattr(layer, "app", None)
        if layer is None:
            break
    return {}


def _process_lines() -> list[str]:
    pid = os.getpid()
    times = os.times()
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_bytes = rss if sys.platform == "darwin" else rss * 1024
    py = sys.version_info
    python = (
        f'{{implementation="{sys.implementation.name}",version="{py.major}.{py.minor}.{py.micro}"}}'
    )
    return [
        *_family(
            "linkgen_info",
            "gauge",
            "linkgen version and this process's id.",
            [(f'{{version="{__version__}",pid="{pid}"}}', 1)],
        ),
        *_family(
            "python_info",
            "gauge",
            "Python version.",
            [(python, 1)],
        ),
        *_family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch.",
            [("", round(PROCESS_STARTED, 3))],
        ),
        *_family(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent.",
            [("", round(times.user + times.system, 3))],
        ),
        *_family(
            "process_max_resident_memory_bytes",
            "gauge",
            "Peak resident memory of the process.",
            [("", rss_bytes)],
        ),
    ]


def render(app: Flask) -> str:
    """The whole exposition text."""
    runtime = get_runtime(app)
    state = metrics_state(runtime)
    pid = os.getpid()
    outcomes = _click_outcomes(app)
    lines = [
        *state.db_lines(runtime),
        *_family(
            "linkgen_redirects_total",
            "counter",
            "Click answers of this process by outcome (process-local).",
            [(f'{{outcome="{_esc(o)}",pid="{pid}"}}', n) for o, n in sorted(outcomes.items())],
        ),
        *state.latency.lines("linkgen_http_request_duration_seconds"),
        *_process_lines(),
    ]
    return "\n".join(lines) + "\n"


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus scrape endpoint."""
    _check_access()
    resp = Response(render(current_app), content_type=CONTENT_TYPE)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _check_access() -> None:
    """Raise unless this request may read the metrics (see the module's docstring)."""
    token = get_runtime().settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
        if not ok:
            raise Unauthorized("send the metrics token as 'Authorization: Bearer <token>'")
    elif not request_is_local(or_proxy=True):
        raise NotFound("Not found.")


def init_app(app: Flask) -> None:
    """Register /metrics and the request timer."""
    app.register_blueprint(bp)
    state = metrics_state(get_runtime(app))

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
            method = request.method if request.method in KNOWN_METHODS else "other"
            state.latency.observe(
                endpoint, method, response.status_code, time.perf_counter() - started
            )
        return response
