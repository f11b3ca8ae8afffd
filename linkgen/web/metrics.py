"""GET /metrics: Prometheus text format 0.0.4, written by prometheus_client.

Three kinds of numbers:

* from the database, so they agree across processes: clicks (summed `stat_counters`), installs
  and re-engagements (the same counters), postbacks by status, the postback queue's depth and
  the age of its oldest entry. Three aggregate queries, cached for `DB_CACHE_SECONDS` so a
  scraper cannot turn /metrics into a load generator.
* counted where they happen: redirects by outcome (the click handler) and the latency histogram
  of the requests Flask or the edge answers (the link domain's redirects are not in it).
  Under `linkgen serve` (`PROMETHEUS_MULTIPROC_DIR` set, linkgen/web/metrics_dir.py) each
  process writes them to its own files in that directory and a scrape, whichever process
  answers it, adds up every process's files, those of processes that have gone included (a
  counter never goes back when granian replaces a process). Without it (tests, `flask run`,
  one process of another WSGI server) they live in this process.
* about the processes: `linkgen_info` (one series per live process, with its `pid`),
  prometheus_client's process and platform metrics. Under `linkgen serve` the answering process
  reads every live web process's /proc entry, so `process_*` carry a `pid` label there.

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
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
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
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DB_CACHE_SECONDS = 5.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUEUED_STATUSES = ("queued", "sending", "in_doubt")
POSTBACK_STATUSES = ("queued", "sending", "in_doubt", "sent", "failed", "skipped")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The file of `linkgen_info` (multiprocess mode "liveall") names each live process.
_LIVE_FILE_PREFIX = "gauge_liveall_"

# A `_created` series per counter and histogram: twice the text, and nothing here reads them
# (multiprocess mode has none, so both modes now say the same).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client


def multiprocess_dir() -> Path | None:
    """The directory this process shares its counts through, if any (None: single process)."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return None
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus_client picks its value class once, when first imported. `linkgen serve`
        # sets the directory after that (its app is built before the command runs) and forks
        # its web processes from there: pick again, before this process makes its metrics.
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # untyped upstream
    return Path(path)


class LatencyHistogram:
    """Request durations by endpoint, method and status class."""

    def __init__(
        self, registry: CollectorRegistry | None, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> None:
        self._histogram = Histogram(
            "linkgen_http_request_duration_seconds",
            "Time Flask (or the edge) took to answer a request, by endpoint.",
            ["endpoint", "method", "status"],
            buckets=buckets,
            registry=registry,
        )
        # labels() takes a lock and formats the values each time: keep the children.
        self._children: dict[tuple[str, str, int], Histogram] = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one request."""
        key = (endpoint, method, status // 100)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._histogram.labels(
                endpoint, method, f"{status // 100}xx"
            )
        child.observe(seconds)


class RedirectCounter:
    """Click answers by outcome (`linkgen_redirects_total`)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._counter = Counter(
            "linkgen_redirects_total",
            "Click answers by outcome (all processes).",
            ["outcome"],
            registry=registry,
        )
        self._children: dict[str, Counter] = {}

    def count(self, outcome: str) -> None:
        """Count one click answered with `outcome`."""
        child = self._children.get(outcome)
        if child is None:
            child = self._children[outcome] = self._counter.labels(outcome)
        child.inc()


class DatabaseCollector(Collector):
    """The database-derived families, recomputed at most every `max_age` seconds."""

    def __init__(self, runtime: Runtime, max_age: float = DB_CACHE_SECONDS) -> None:
        self.runtime = runtime
        self.max_age = max_age
        self._families: list[Metric] = []
        self._at = -math.inf
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        """Collect."""
        with self._lock:
            if time.monotonic() - self._at >= self.max_age:
                try:
                    families = _database_families(self.runtime)
                except SQLAlchemyError:
                    # Scrapes must still answer (and say so) while the database is away.
                    log.warning("metrics: the database did not answer", exc_info=True)
                    return [_database_up(False)]
                self._families = [_database_up(True), *families]
                self._at = time.monotonic()
            return list(self._families)

    def invalidate(self) -> None:
        """Recompute on the next scrape."""
        with self._lock:
            self._at = -math.inf


class LiveProcessesCollector(Collector):
    """`process_*` of every live process sharing `path`, each series labelled with its pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._collectors: dict[int, ProcessCollector] = {}

    def live_pids(self) -> list[int]:
        """The processes whose live gauges are in the directory (not yet marked dead)."""
        pids = []
        for file in self.path.glob(f"{_LIVE_FILE_PREFIX}*.db"):
            pid = file.name[len(_LIVE_FILE_PREFIX) : -len(".db")]
            if pid.isdigit():
                pids.append(int(pid))
        return sorted(pids)

    def collect(self) -> Iterator[Metric]:
        """Collect."""
        pids = self.live_pids()
        for gone in set(self._collectors) - set(pids):
            del self._collectors[gone]
        merged: dict[str, Metric] = {}
        for pid in pids:
            collector = self._collectors.get(pid)
            if collector is None:
                collector = self._collectors[pid] = ProcessCollector(
                    pid=_constant(pid), registry=None
                )
            # A process gone since the glob has no /proc entry: it yields nothing.
            for family in collector.collect():
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    into.samples.append(sample._replace(labels={**sample.labels, "pid": str(pid)}))
        yield from merged.values()


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


class MetricsState:
    """What one process keeps for /metrics: the counters, and the registry a scrape reads."""

    def __init__(self, runtime: Runtime) -> None:
        path = multiprocess_dir()
        self.multiprocess = path is not None
        self.registry = CollectorRegistry()
        # Multiprocess: the metrics below only write this process's files; the registry reads
        # every process's.
        own = None if path is not None else self.registry
        self.latency = LatencyHistogram(own)
        self.redirects = RedirectCounter(own)
        info = Gauge(
            "linkgen_info",
            "linkgen version and this process's id.",
            ["version"] if path is not None else ["version", "pid"],  # multiprocess adds pid
            registry=own,
            multiprocess_mode="liveall",
        )
        if path is not None:
            info.labels(__version__).set(1)
            MultiProcessCollector(self.registry, path=str(path))  # type: ignore[no-untyped-call]  # untyped upstream
            self.registry.register(LiveProcessesCollector(path))
        else:
            info.labels(__version__, str(os.getpid())).set(1)
            ProcessCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.database = DatabaseCollector(runtime)
        self.registry.register(self.database)

    def invalidate(self) -> None:
        """Recompute the database numbers on the next scrape."""
        self.database.invalidate()


def metrics_state(runtime: Runtime) -> MetricsState:
    """This process's metrics state (made on first use)."""
    if runtime.metrics is None:  # made during create_app, before any request thread runs
        runtime.metrics = MetricsState(runtime)
    return runtime.metrics


def _database_up(up: bool) -> Metric:
    family = GaugeMetricFamily(
        "linkgen_database_up", "1 when the database answered the last metrics query."
    )
    family.add_metric([], 1 if up else 0)
    return family


def _database_families(runtime: Runtime) -> list[Metric]:
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

    clicks_family = CounterMetricFamily(
        "linkgen_clicks_total",
        "Clicks recorded on the link domain (all processes), by kind.",
        labels=["kind"],
    )
    for kind, n in (("all", clicks), ("human", human), ("bot", bot)):
        clicks_family.add_metric([kind], n)
    attribution = CounterMetricFamily(
        "linkgen_attribution_total",
        "Attributed launches: installs (reinstalls and re-attributions included) "
        "and re-engagements.",
        labels=["type"],
    )
    attribution.add_metric(["install"], installs)
    attribution.add_metric(["reengagement"], reengagements)
    postbacks = GaugeMetricFamily("linkgen_postbacks", "Postbacks by status.", labels=["status"])
    for status in statuses:
        postbacks.add_metric([status], int(by_status.get(status, 0)))
    return [
        clicks_family,
        attribution,
        CounterMetricFamily(
            "linkgen_events_total", "In-app events received from app SDKs.", value=events
        ),
        postbacks,
        GaugeMetricFamily(
            "linkgen_postback_queue_depth",
            "Postbacks not yet settled (queued, being sent, or in doubt awaiting a check).",
            value=depth,
        ),
        GaugeMetricFamily(
            "linkgen_postback_queue_oldest_seconds",
            "Age of the oldest waiting postback (0 when none waits).",
            value=round(age, 3),
        ),
    ]


def render(app: Flask) -> str:
    """The whole exposition text."""
    return generate_latest(metrics_state(get_runtime(app)).registry).decode()


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
