"""Reports at scale on PostgreSQL: every report query, the click log's page queries, the
reports pages themselves, and the click rollup's throughput.

Works in a database of its own (`--database`, `linkgen_bench_reports`, created on the server
named by `--url` / `LINKGEN_BENCH_PG_URL` and dropped at the end unless `--keep`; `--reuse`
measures again on a database kept by an earlier run, without filling it). Fills, server-side
with `generate_series`:

* `clicks`: up to `--clicks` (10,000,000) rows over `--days` days in arrival order (ids grow with
  time, as the recorder writes them), skewed over `--links` links (a tenth are template clicks
  without a link), 20 % bots with the detector's reasons; filled in chunks of 1,000,000 until
  the count or the `--fill-seconds` budget is reached (the figure says which);
* `stat_counters`: one row per day x link (x its campaign, channel, media source) on which the
  link had clicks, plus template rows, as the counters would hold for those clicks;
* `events`: `--revenue-events` events with revenue in EUR, USD and GBP;
* `counter_rollups`: by the worker's step (`rollups.roll_up_counters`), timed;
* `click_rollups`: by the rollup step itself (`services/rollups.catch_up`), timed: first
  `--steady-clicks` clicks in the worker's batches (`rollups.BATCH`), then the rest in
  `--rollup-batch` batches (`linkgen rollup-clicks --batch`), as a backfill would.

Clicks come from public and private IPv4 addresses all over the address space (about 5 % with
none, as the `none` privacy setting stores), iOS 15-18 / Android 10-14 / computers, and 30 %
with one of five referrers.

Only the indexes reads use are built (after the fill, which is much faster than keeping them):
the primary keys, `ix_clicks_ts`, `ix_clicks_link_ts`, `ix_clicks_campaign_ts`,
`uq_stat_counters_key`, `ix_stat_counters_link_day`, `ix_events_revenue_ts` (and
`uq_click_rollups_key`, which the rollup's upserts need). The filled tables are UNLOGGED to
bound the fill's time (reads are the same); `click_rollups` is logged, as in production. Each
query runs through the service function the page calls (SQLAlchemy included), and each page
through the whole app (a logged-in test client); the median of `--runs` runs after one warm-up
is recorded in benchmarks/RESULTS.md. Target: every report under 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import load_average, write_results
from linkgen.services import rollups
from linkgen.services.clicklog import ClickQuery, click_page
from linkgen.services.rollups import breakdowns
from linkgen.services.stats import (
    daily_totals,
    revenue_by_currency,
    summarise_counters,
)
from linkgen.storage.db import Database
from linkgen.storage.models import Base, Click, ClickRollup, CounterRollup, Event, StatCounter
from linkgen.web.ui.stats import totals_by_link

SECTION = "reports"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_DATABASE = "linkgen_bench_reports"
CHUNK = 1_000_000
TARGET_MS = 300.0

FILL_CLICKS = """
INSERT INTO clicks (click_id, ts, link_id, template_id, app_id, media_source, campaign, channel,
    params, ip, user_agent, platform, os_version, referrer, device_id, customer_user_id,
    is_retargeting, is_bot, bot_reason, is_qr, attributable, not_attributable_reason, outcome,
    consumed)
SELECT 'ck' || g, ts, CASE WHEN link >= 0 THEN 'lk' || link END, 'AbCd', 'com.bench.app',
    (ARRAY['Email', 'SMS', 'Push', 'QR'])[1 + abs(link) % 4],
    'camp' || (abs(link) % :campaigns),
    (ARRAY['email', 'sms', 'push', 'qr'])[1 + abs(link) % 4],
    '{}',
    CASE WHEN g % 20 <> 0 THEN (1 + (g::bigint * 7919) % 223) || '.'
        || ((g::bigint * 104729) % 256) || '.' || ((g::bigint * 31) % 256) || '.'
        || (1 + g % 250) END,
    'Mozilla/5.0 (bench)',
    (ARRAY['android', 'ios', 'desktop'])[1 + (g % 10) / 4],
    CASE (g % 10) / 4 WHEN 0 THEN (10 + g % 5)::text
        WHEN 1 THEN (15 + g % 4) || '.' || (g % 5) ELSE '10.15' END,
    CASE WHEN g % 10 < 3 THEN (ARRAY['https://mail.google.com/mail/u/0/',
        'https://outlook.live.com/mail/0/', 'https://t.co/x', 'https://l.facebook.com/l.php',
        'https://www.linkedin.com/'])[1 + (g / 10) % 5] END,
    NULL, NULL,
    g % 7 = 0, bot,
    CASE WHEN bot THEN (ARRAY['scanner:message', 'preview:slackbot', 'crawler',
        'scanner:microsoft_safelinks', 'automation:curl'])[1 + g % 5] END,
    abs(link) % 4 = 3, NOT bot, CASE WHEN bot THEN 'bot' END,
    (ARRAY['google_play', 'app_store', 'web_fallback'])[1 + (g % 10) / 4], g % 50 = 0
FROM (
    SELECT g,
        CAST(:start AS timestamptz) + g * CAST(:step AS interval) AS ts,
        CASE WHEN random() < 0.1 THEN -1 - (g % 7)
             ELSE floor(power(random(), 2) * :links)::int END AS link,
        random() < 0.2 AS bot
    FROM generate_series(:lo, :hi) AS g
) AS draw
"""

# The counters those clicks make: one row per day and link (a link has one campaign, channel
# and media source), installs and events in proportion.
FILL_COUNTERS = """
INSERT INTO stat_counters (day, link_id, template_id, campaign, channel, media_source, clicks,
    human_clicks, bot_clicks, installs, reengagements, events, revenue_micros)
SELECT (ts AT TIME ZONE 'UTC')::date, coalesce(link_id, ''), template_id, campaign, channel,
    media_source, count(*), count(*) FILTER (WHERE NOT is_bot), count(*) FILTER (WHERE is_bot),
    count(*) FILTER (WHERE consumed), count(*) FILTER (WHERE consumed AND is_retargeting),
    count(*) / 20, (count(*) / 100) * 9990000
FROM clicks GROUP BY 1, 2, 3, 4, 5, 6
"""

FILL_EVENTS = """
INSERT INTO events (app_id, event_id, device_id, customer_user_id, event_name, event_values,
    revenue_micros, currency, ts, received_at, media_source, campaign, channel, link_id,
    re_media_source, re_campaign, re_link_id, response)
SELECT 'com.bench.app', 'ev' || g, NULL, NULL, 'af_purchase', '{}', 9990000 + (g % 7) * 1000000,
    (ARRAY['EUR', 'USD', 'GBP'])[1 + g % 3], ts, ts, 'Email', 'camp' || (g % :campaigns),
    'email', 'lk' || floor(power(random(), 2) * :links)::int, NULL, NULL, NULL, '{}'
FROM (
    SELECT g, CAST(:start AS timestamptz) + g * CAST(:step AS interval) AS ts
    FROM generate_series(0, :hi) AS g
) AS draw
"""

# (table, index or constraint, kept for reads)
READ_INDEXES = {
    "ix_clicks_ts",
    "ix_clicks_link_ts",
    "ix_clicks_campaign_ts",
    "ix_stat_counters_link_day",
    "ix_events_revenue_ts",
}


TABLES: tuple[Table, ...] = tuple(
    Base.metadata.tables[n] for n in ("clicks", "stat_counters", "events")
)
ROLLUP_TABLES: tuple[Table, ...] = tuple(
    Base.metadata.tables[n] for n in ("click_rollups", "rollup_watermarks")
)


SCOPES = (("all", ""), ("campaign", "camp3"), ("channel", "email"), ("media_source", "Email"))


def _values(found: dict[str, list[Any]]) -> int:
    return sum(len(rows) for rows in found.values())


def _all_links(session: Session, day_from: date, day_to: date) -> dict[str, int]:
    return revenue_by_currency(session, day_from, day_to).get("", {})


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median and max of `runs` timings in ms (after one warm-up), and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), result


def prepare(engine: Any) -> None:
    """The tables from the models, UNLOGGED, without the indexes the fill would maintain (the
    rest of the schema as it is, for the pages)."""
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for name in ("clicks", "stat_counters", "events"):
            conn.execute(text(f"ALTER TABLE {name} SET UNLOGGED"))
            conn.execute(text(f"ALTER TABLE {name} SET (autovacuum_enabled = false)"))
        for table in TABLES:
            for index in table.indexes:
                conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
            for constraint in table.constraints:
                if isinstance(constraint.name, str) and not constraint.name.startswith("pk_"):
                    conn.execute(
                        text(
                            f"ALTER TABLE {table.name} "
                            f'DROP CONSTRAINT IF EXISTS "{constraint.name}"'
                        )
                    )


def fill(engine: Any, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    start = now - timedelta(days=args.days)
    step = timedelta(days=args.days) / args.clicks
    out: dict[str, Any] = {}
    began = time.perf_counter()
    done = 0
    while done < args.clicks and time.perf_counter() - began < args.fill_seconds:
        hi = min(args.clicks, done + CHUNK) - 1
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(
                text(FILL_CLICKS),
                {"start": start, "step": step, "lo": done, "hi": hi, "links": args.links,
                 "campaigns": args.campaigns},
            )  # fmt: skip
        done = hi + 1
        print(f"  clicks {done:,} ({time.perf_counter() - began:.0f} s)", flush=True)
    out["clicks"] = done
    out["clicks_s"] = time.perf_counter() - began
    # The clicks filled cover the first done/clicks of the days: counters span the same days.
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(FILL_COUNTERS))
        conn.execute(
            text(FILL_EVENTS),
            {"start": start, "step": timedelta(days=args.days) / args.revenue_events,
             "hi": args.revenue_events - 1, "links": args.links, "campaigns": args.campaigns},
        )  # fmt: skip
    out["counters_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        for table in TABLES:
            for index in table.indexes:
                if index.name in READ_INDEXES:
                    conn.execute(CreateIndex(index))
        conn.execute(
            text(
                "ALTER TABLE stat_counters ADD CONSTRAINT uq_stat_counters_key UNIQUE "
                "(day, link_id, template_id, campaign, channel, media_source)"
            )
        )
    out["index_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in ("clicks", "stat_counters", "events"):
            conn.execute(text(f"VACUUM ANALYZE {name}"))
    out["vacuum_s"] = time.perf_counter() - t
    with engine.connect() as conn:
        out["counter_rows"] = conn.execute(select(func.count()).select_from(StatCounter)).scalar()
        out["events"] = conn.execute(select(func.count()).select_from(Event)).scalar()
        out["max_id"] = conn.execute(select(func.max(Click.id))).scalar()
        out["last_day"] = conn.execute(select(func.max(StatCounter.day))).scalar()
        old = out["last_day"] - timedelta(days=args.days - 5)
        noon = datetime.combine(old, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
        out["old_day_id"] = conn.execute(
            select(Click.id).where(Click.ts >= noon).order_by(Click.ts).limit(1)
        ).scalar()
    return out


def roll_up(engine: Any, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Roll every settled click up with the rollup step itself, timed (the backfill)."""
    db = Database(url, pool_size=2)
    out: dict[str, Any] = {}
    try:
        done, steps, began = 0, 0, time.perf_counter()
        while done < args.steady_clicks:
            step = rollups.roll_up_clicks(db)
            done, steps = done + step.clicks, steps + 1
            if not step.behind:
                break
        out["steady_clicks"], out["steady_s"] = done, time.perf_counter() - began
        out["steady_steps"] = steps
        print(f"  rollup, {rollups.BATCH:,} a step: {done:,} clicks", flush=True)
        began = time.perf_counter()

        def _progress(step: rollups.StepResult) -> None:
            if step.last_id // 1_000_000 != (step.last_id - step.clicks) // 1_000_000:
                print(f"  rollup: click {step.last_id:,} ({time.perf_counter() - began:.0f} s)")

        out["backfill_clicks"] = rollups.catch_up(db, batch=args.rollup_batch, progress=_progress)
        out["backfill_s"] = time.perf_counter() - began
    finally:
        db.dispose()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE click_rollups"))
        out["rollup_rows"] = conn.execute(select(func.count()).select_from(ClickRollup)).scalar()
        out["rollup_mb"] = (
            conn.execute(text("SELECT pg_total_relation_size('click_rollups')")).scalar_one()
            / 1_048_576
        )
        out["rollup_rows_by_scope"] = dict(
            conn.execute(select(ClickRollup.scope, func.count()).group_by(ClickRollup.scope)).all()  # type: ignore[arg-type]
        )
    return out


def build_counter_rollups(engine: Any, url: str) -> dict[str, Any]:
    """Build `counter_rollups` from the counters with the worker's step, timed."""
    db = Database(url, pool_size=2)
    try:
        began, steps = time.perf_counter(), 0
        while rollups.roll_up_counters(db).behind:
            steps += 1
        out: dict[str, Any] = {"counter_build_s": time.perf_counter() - began}
        out["counter_build_steps"] = steps + 1
    finally:
        db.dispose()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE counter_rollups"))
        out["counter_rollup_rows"] = conn.execute(
            select(func.count()).select_from(CounterRollup)
        ).scalar()
    print(f"  counter rollups: {out['counter_build_s']:.0f} s", flush=True)
    return out


def save_facts(engine: Any, facts: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_facts (facts text)"))
        conn.execute(text("DELETE FROM bench_facts"))
        conn.execute(
            text("INSERT INTO bench_facts VALUES (:f)"), {"f": json.dumps(facts, default=str)}
        )


def load_facts(engine: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        facts: dict[str, Any] = json.loads(
            conn.execute(text("SELECT facts FROM bench_facts")).scalar_one()
        )
    facts["last_day"] = date.fromisoformat(facts["last_day"])
    return facts


def measure(
    engine: Any, args: argparse.Namespace, facts: dict[str, Any]
) -> list[tuple[str, str, float, float, str]]:
    """(kind, query, median ms, max ms, rows) for every report and click-log query."""
    last: date = facts["last_day"]
    busy_link = "lk0"  # the skew makes the first links the busiest
    quiet_link = f"lk{args.links - 7}"
    rows: list[tuple[str, str, float, float, str]] = []

    def run(kind: str, name: str, fn: Callable[[Session], Any], size: Callable[[Any], int]) -> None:
        with Session(engine) as session:
            median, worst, result = timed(lambda: fn(session), args.runs)
            session.rollback()
        rows.append((kind, name, median, worst, f"{size(result):,}"))
        print(
            f"  {kind:9} {name:58} {median:8.1f} ms (max {worst:.1f}), {size(result):,} rows",
            flush=True,
        )

    for days in (7, 30, 90):
        first = last - timedelta(days=days - 1)
        for group in ("campaign", "channel", "media_source", "link"):
            run(
                "report",
                f"summary by {group}, {days} days",
                partial(summarise_counters, group_by=group, day_from=first, day_to=last),
                len,
            )
        run(
            "report",
            f"daily chart, all links, {days} days",
            partial(daily_totals, day_from=first, day_to=last),
            len,
        )
        run(
            "report",
            f"daily chart of a busy link, {days} days",
            partial(daily_totals, day_from=first, day_to=last, link_id=busy_link),
            len,
        )
        run(
            "report",
            f"revenue per currency, {days} days",
            partial(_all_links, day_from=first, day_to=last),
            len,
        )
        run(
            "report",
            f"summary by link of one campaign, {days} days",
            partial(
                summarise_counters,
                group_by="link",
                day_from=first,
                day_to=last,
                where=("campaign", "camp3"),
            ),
            len,
        )
        for scope, value in SCOPES:
            run(
                "breakdown",
                f"platform, OS, country, referrer: {scope.replace('_', ' ')}, {days} days",
                partial(breakdowns, day_from=first, day_to=last, scope=scope, scope_value=value),
                _values,
            )
    run(
        "report",
        "summary by link, all days",
        lambda s: summarise_counters(s, "link", None, None),
        len,
    )
    run(
        "report",
        "link page: revenue per currency of a busy link, all days",
        lambda s: revenue_by_currency(s, link_ids=[busy_link]),
        len,
    )
    run(
        "breakdown",
        "platform, OS, country, referrer: all clicks, all days",
        lambda s: breakdowns(s, None, None),
        _values,
    )
    # A/B: PostgreSQL's JIT (on by default, above a plan cost of 100,000) on the largest sums.
    ninety = last - timedelta(days=89)
    jit_ab: list[tuple[str, Callable[[Session], Any]]] = [
        ("summary by link, 90 days", partial(summarise_counters, group_by="link", day_to=last)),
        ("daily chart, all links, 90 days", partial(daily_totals, day_to=last)),
    ]
    for label, fn in jit_ab:

        def without_jit(s: Session, fn: Callable[..., Any] = fn) -> Any:
            s.execute(text("SET LOCAL jit = off"))
            return fn(s, day_from=ninety)

        run("jit off", label, without_jit, len)
    ids = [f"lk{i}" for i in range(50)]
    run("report", "link list: totals of 50 links", lambda s: totals_by_link(s, ids), len)
    run(
        "report",
        "link list: revenue per currency of 50 links",
        lambda s: revenue_by_currency(s, link_ids=ids),
        len,
    )

    mid = facts["max_id"] // 2
    day = last - timedelta(days=1)
    old = last - timedelta(days=args.days - 5)
    pages: list[tuple[str, ClickQuery]] = [
        ("newest page, no filter", ClickQuery()),
        ("page in the middle (before = half the ids)", ClickQuery(before=mid)),
        ("bots only", ClickQuery(who="bots")),
        ("people only, middle", ClickQuery(who="people", before=mid)),
        ("busy link", ClickQuery(link_id=busy_link)),
        ("quiet link", ClickQuery(link_id=quiet_link)),
        ("quiet link, bots only", ClickQuery(link_id=quiet_link, who="bots")),
        ("link that has no clicks", ClickQuery(link_id="lk-none")),
        ("campaign", ClickQuery(campaign="camp3")),
        ("campaign, middle", ClickQuery(campaign="camp3", before=mid)),
        ("yesterday", ClickQuery(day_from=day, day_to=day)),
        (f"one old day ({args.days - 5} days ago)", ClickQuery(day_from=old, day_to=old)),
        (
            "last 90 days, people only",
            ClickQuery(day_from=last - timedelta(days=89), day_to=last, who="people"),
        ),
        (
            "30 days ending 60 days ago",
            ClickQuery(day_from=last - timedelta(days=89), day_to=last - timedelta(days=60)),
        ),
        (
            "one old day, second page",
            ClickQuery(day_from=old, day_to=old, before=facts["old_day_id"]),
        ),
        ("quiet link, one old day", ClickQuery(link_id=quiet_link, day_from=old, day_to=old)),
        ("campaign, one old day", ClickQuery(campaign="camp3", day_from=old, day_to=old)),
    ]
    for name, q in pages:
        run("click log", name, partial(click_page, q=q), lambda p: len(p.entries))
    return rows


PAGES = (
    "/reports?days=30",
    "/reports?days=90&group_by=link",
    "/reports?days=90&group_by=channel",
    "/reports?days=30&campaign=camp3&group_by=link",
    "/reports?days=90&channel=email",
    "/reports/breakdowns.csv?days=90",
    "/reports/clicks",
)


def measure_pages(url: str, runs: int) -> list[tuple[str, str, float, float, str]]:
    """The reports pages through the whole app (log-in session, Flask, templates)."""
    import re
    import tempfile

    from linkgen.config import Settings
    from linkgen.domain.errors import Conflict
    from linkgen.factory import create_app
    from linkgen.services.accounts import create_user

    rows: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            Settings(
                database_url=url,
                secret_key="bench-secret-key",  # noqa: S106 - a throwaway benchmark app
                link_domains=("go.bench.example",),
                instance_path=Path(tmp),
                testing=True,
                run_worker=False,
            )
        )
        try:
            try:
                with app.extensions["linkgen"].db.session() as session:
                    create_user(session, "bench@example.com", "a long enough password")
            except Conflict:  # a database kept by an earlier run (--reuse) has the user
                pass
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            resp = client.post(
                "/login",
                data={
                    "csrf_token": token.group(1),
                    "email": "bench@example.com",
                    "password": "a long enough password",
                },
            )
            assert resp.status_code == 302, resp.status_code
            for path in PAGES:

                def get(path: str = path) -> int:
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.status_code)
                    return len(answer.data)

                median, worst, size = timed(get, runs)
                rows.append(("page", f"GET {path}", median, worst, f"{size:,} bytes"))
                print(f"  page      {path:58} {median:8.1f} ms (max {worst:.1f})", flush=True)
        finally:
            app.extensions["linkgen"].close()
    return rows


def report(
    rows: list[tuple[str, str, float, float, str]],
    facts: dict[str, Any],
    args: argparse.Namespace,
    version: str,
    load: float,
) -> str:
    slow = [r for r in rows if r[2] >= TARGET_MS]
    lines = [
        "## Reports and the click log at scale (`benchmarks/reports.py`)",
        "",
        f"PostgreSQL {version} on 127.0.0.1; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; x86_64, "
        f"{os.cpu_count()} CPUs shared with other work (load average {load:.1f} at the end). "
        f"**{facts['clicks']:,} clicks** over {args.days} days"
        + (
            ""
            if facts["clicks"] >= args.clicks
            else f" (of {args.clicks:,} asked: the {args.fill_seconds:.0f} s fill budget ran out)"
        )
        + f", {args.links:,} links, {args.campaigns} campaigns, 20 % bots; "
        f"{facts['counter_rows']:,} counter rows (day x link x campaign x channel x source); "
        f"{facts['events']:,} revenue events in 3 currencies. "
        f"Fill: clicks {facts['clicks_s']:.0f} s, "
        f"counters and events {facts['counters_s']:.0f} s, indexes {facts['index_s']:.0f} s, "
        f"VACUUM ANALYZE {facts['vacuum_s']:.0f} s (UNLOGGED tables, only the indexes reads use). "
        f"Median of {args.runs} runs after a warm-up, through the service functions the pages "
        "call (SQLAlchemy included), and the pages through the app; the tables stay in the OS "
        "page cache.",
        "",
        f"Rollup (`services/rollups`, logged table): {facts['steady_clicks']:,} clicks in "
        f"{facts['steady_steps']:,} steps of {rollups.BATCH:,} (the worker's) in "
        f"{facts['steady_s']:.0f} s = **{facts['steady_clicks'] / facts['steady_s']:,.0f} "
        f"clicks/s**; the backfill of the other {facts['backfill_clicks']:,} in steps of "
        f"{args.rollup_batch:,} (`linkgen rollup-clicks --batch`) in {facts['backfill_s']:.0f} s "
        f"= **{facts['backfill_clicks'] / max(facts['backfill_s'], 1e-9):,.0f} clicks/s**. "
        f"`click_rollups`: {facts['rollup_rows']:,} rows, {facts['rollup_mb']:,.0f} MB ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(facts["rollup_rows_by_scope"].items()))
        + f"). `counter_rollups` built from the counters in {facts['counter_build_s']:.0f} s "
        f"({facts['counter_build_steps']} steps of a week, with the events' late-day check): "
        f"{facts['counter_rollup_rows']:,} rows.",
        "",
        "| kind | query | median | max | rows |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {k} | {n} | {m:.1f} ms | {w:.1f} ms | {c} |" for k, n, m, w, c in rows]
    lines.append("")
    if slow:
        lines.append(
            f"- target (every report under {TARGET_MS:.0f} ms) **NOT met** by: "
            + "; ".join(f"{n} ({m:.0f} ms)" for _, n, m, _, _ in slow)
        )
    else:
        lines.append(f"- target met: every query's median is under {TARGET_MS:.0f} ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("LINKGEN_BENCH_PG_URL", DEFAULT_URL))
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="created, then dropped")
    parser.add_argument("--keep", action="store_true", help="keep the database for --reuse")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--fill-seconds", type=float, default=300.0, help="stop filling after")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--links", type=int, default=4_000)
    parser.add_argument("--campaigns", type=int, default=400)
    parser.add_argument("--revenue-events", type=int, default=200_000)
    parser.add_argument("--steady-clicks", type=int, default=200_000)
    parser.add_argument("--rollup-batch", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000,000 clicks, 3 runs")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.clicks, args.revenue_events, args.runs = 1_000_000, 20_000, 3
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    url = make_url(args.url).set(database=args.database).render_as_string(hide_password=False)
    with admin.connect() as conn:
        version = str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0]
        if not args.reuse:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{args.database}"'))
            conn.execute(text(f'CREATE DATABASE "{args.database}"'))
    engine = create_engine(url)
    try:
        if args.reuse:
            facts = load_facts(engine)
            Base.metadata.create_all(engine)  # tables added since the database was filled
        else:
            prepare(engine)
            facts = fill(engine, args, datetime.now(UTC))
        if "counter_build_s" not in facts:  # before the clicks' backfill, which would do it
            facts.update(build_counter_rollups(engine, url))
        if not args.reuse:
            facts.update(roll_up(engine, url, args))
        save_facts(engine, facts)
        rows = measure(engine, args, facts)
        rows += measure_pages(url, args.runs)
    finally:
        engine.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{args.database}"'))
        admin.dispose()
    markdown = report(rows, facts, args, version, load_average())
    print(markdown)
    if not args.no_write:
        write_results(SECTION, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
