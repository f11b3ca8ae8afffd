"""GET /metrics: valid Prometheus text, numbers that match the database and the process."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.exc import OperationalError

from linkgen.storage.models import Postback, StatCounter
from linkgen.storage.types import utcnow
from linkgen.web import metrics
from linkgen.web.metrics import LatencyHistogram, metrics_state
from tests.conftest import Api

DESKTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
BOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"

SAMPLE_RE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)\})? (?P<value>[-+]?(?:\d+(?:\.\d+)?(?:e[-+]?\d+)?|\+Inf|NaN))$'
)

LABEL_RE = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"')


def series(name: str, **labels: str) -> str:
    """The key `parse_exposition` gives a series."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def parse_exposition(text: str) -> dict[str, float]:
    """Check the 0.0.4 text format strictly and return {'name{labels}': value}."""
    assert text.endswith("\n")
    typed: dict[str, str] = {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in typed, f"two TYPE lines for {name}"
            typed[name] = kind
            continue
        match = SAMPLE_RE.match(line)
        assert match, f"not a valid sample line: {line!r}"
        name = match["name"]
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert family in typed, f"{name} has no TYPE line before it"
        # Label order carries no meaning: the key lists them sorted.
        labels = ",".join(sorted(LABEL_RE.findall(match["labels"] or "")))
        key = f"{name}{{{labels}}}"
        assert key not in samples, f"duplicate series {key}"
        samples[key] = float(match["value"])
    return samples


def scrape(app: Flask, client: FlaskClient) -> dict[str, float]:
    metrics_state(app.extensions["linkgen"]).invalidate()  # the database lines are cached 5 s
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse_exposition(resp.get_data(as_text=True))


def test_metrics_are_valid_exposition_text_on_an_empty_database(
    app: Flask, client: FlaskClient
) -> None:
    samples = scrape(app, client)
    assert samples['linkgen_clicks_total{kind="all"}'] == 0
    assert samples["linkgen_postback_queue_depth{}"] == 0
    assert samples["linkgen_postback_queue_oldest_seconds{}"] == 0
    assert samples["linkgen_database_up{}"] == 1
    assert samples["process_start_time_seconds{}"] > 0
    assert any(k.startswith("linkgen_info{") for k in samples)


def test_clicks_and_redirect_outcomes(app: Flask, client: FlaskClient, api: Api) -> None:
    resp = api.post(
        "/api/v1/templates",
        json={
            "template_id": "Mtr1",
            "domain": "go.example.com",
            "web_fallback_url": "https://example.com/",
            "redirect_allowlist": ["example.com"],
        },
    )
    assert resp.status_code == 201, resp.json
    for ua in (DESKTOP_UA, DESKTOP_UA, BOT_UA):
        click = client.get(
            "/Mtr1?pid=Email&c=spring",
            base_url="https://go.example.com",
            headers={"User-Agent": ua},
        )
        assert click.status_code in (200, 302)
    samples = scrape(app, client)
    assert samples['linkgen_clicks_total{kind="all"}'] == 3
    assert samples['linkgen_clicks_total{kind="human"}'] == 2
    assert samples['linkgen_clicks_total{kind="bot"}'] == 1
    outcomes = {k: v for k, v in samples.items() if k.startswith("linkgen_redirects_total{")}
    assert sum(outcomes.values()) == 3
    assert any('outcome="web_fallback"' in k for k in outcomes), outcomes


def test_attribution_and_postback_numbers_come_from_the_database(
    app: Flask, client: FlaskClient
) -> None:
    now = utcnow()
    with app.extensions["linkgen"].db.session() as session:
        session.add(StatCounter(day=now.date(), campaign="a", installs=3, reengagements=2))
        session.add(StatCounter(day=now.date(), campaign="b", installs=1, events=4))
        for n, (status, age) in enumerate(
            [
                ("queued", 3600),
                ("queued", 10),
                ("sending", 5),
                ("in_doubt", 7200),
                ("sent", 0),
                ("skipped", 0),
            ]
        ):
            session.add(
                Postback(
                    linkgen_id=f"lg-{n}",
                    app_id="com.example.app",
                    kind="install",
                    source_id=f"launch-{n}",
                    status=status,
                    created_at=now - timedelta(seconds=age),
                )
            )
    samples = scrape(app, client)
    assert samples['linkgen_attribution_total{type="install"}'] == 4
    assert samples['linkgen_attribution_total{type="reengagement"}'] == 2
    assert samples["linkgen_events_total{}"] == 4
    assert samples['linkgen_postbacks{status="queued"}'] == 2
    assert samples['linkgen_postbacks{status="sending"}'] == 1
    assert samples['linkgen_postbacks{status="in_doubt"}'] == 1
    assert samples['linkgen_postbacks{status="sent"}'] == 1
    assert samples['linkgen_postbacks{status="failed"}'] == 0
    # A row in doubt is not settled yet: it counts in the depth and the age.
    assert samples["linkgen_postback_queue_depth{}"] == 4
    assert 7200 <= samples["linkgen_postback_queue_oldest_seconds{}"] < 7300


def test_request_latency_histogram(app: Flask, client: FlaskClient, api: Api) -> None:
    for _ in range(3):
        assert api.get("/api/v1/apps").status_code == 200
    assert client.get("/api/v1/apps").status_code == 401
    samples = scrape(app, client)
    ok = 'endpoint="api.list_apps",method="GET",status="2xx"'
    refused = 'endpoint="api.list_apps",method="GET",status="4xx"'
    assert samples[f"linkgen_http_request_duration_seconds_count{{{ok}}}"] == 3
    bucket = "linkgen_http_request_duration_seconds_bucket"
    assert (
        samples[series(bucket, endpoint="api.list_apps", method="GET", status="2xx", le="+Inf")]
        == 3
    )
    assert samples[f"linkgen_http_request_duration_seconds_count{{{refused}}}"] == 1
    assert samples[f"linkgen_http_request_duration_seconds_sum{{{ok}}}"] > 0
    buckets = [
        v
        for k, v in samples.items()
        if k.startswith(f"linkgen_http_request_duration_seconds_bucket{{{ok}")
    ]
    assert buckets == sorted(buckets)  # cumulative


def test_histogram_buckets_are_cumulative() -> None:
    registry = CollectorRegistry()
    hist = LatencyHistogram(registry, buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 0.5, 5.0):
        hist.observe("x", "GET", 200, seconds)
    samples = parse_exposition(generate_latest(registry).decode())
    name = "linkgen_http_request_duration_seconds"
    labels = 'endpoint="x",method="GET",status="2xx"'
    x = {"endpoint": "x", "method": "GET", "status": "2xx"}
    assert samples[series(f"{name}_bucket", **x, le="0.1")] == 1
    assert samples[series(f"{name}_bucket", **x, le="1.0")] == 3
    assert samples[series(f"{name}_bucket", **x, le="+Inf")] == 4
    assert samples[f"{name}_count{{{labels}}}"] == 4
    assert samples[f"{name}_sum{{{labels}}}"] == pytest.approx(6.05)


def test_metrics_answer_when_the_database_does_not(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(runtime: Any) -> list[Any]:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(metrics, "_database_families", unreachable)
    samples = scrape(app, client)
    assert samples["linkgen_database_up{}"] == 0
    assert "linkgen_clicks_total" not in "".join(samples)
