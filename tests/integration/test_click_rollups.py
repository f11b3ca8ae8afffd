"""The reports' click rollups (SQLite and PostgreSQL): exact against a GROUP BY over the clicks,
idempotent, safe with two workers at once and across a stop mid-way, UTC days, settled clicks
only, and countries from the embedded IP-to-country data."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, insert, select

from linkgen.services import rollups
from linkgen.services.rollups import (
    SETTLE,
    RollupSchedule,
    breakdowns,
    catch_up,
    country_of,
    os_label,
    referrer_label,
    roll_up_clicks,
)
from linkgen.storage.db import Database
from linkgen.storage.models import Click, ClickRollup, CounterRollup, Event, RollupWatermark
from linkgen.storage.types import utcnow
from tests.conftest import Api
from tests.integration.clicksetup import ANDROID, IPHONE, TEMPLATE, make_setup

# Real public addresses whose country the embedded data set has held for years.
KNOWN_COUNTRIES = [
    ("8.8.8.8", "US"),  # Google public DNS
    ("8.8.8.0", "US"),  # the same address truncated to its /24 (privacy setting)
    ("81.2.69.142", "GB"),
    ("81.2.69.0", "GB"),
    ("193.0.6.139", "NL"),  # RIPE NCC
    ("133.242.0.3", "JP"),
    ("2001:4860:4860::8888", "US"),
    ("2001:4860:4860::", "US"),  # truncated to its /48
    ("::ffff:8.8.8.8", "US"),  # an IPv4 client on a dual-stack socket
    ("10.1.2.3", ""),  # private: in no country
    ("203.0.113.9", ""),  # documentation range
    (None, ""),  # dropped by the privacy setting
]


@pytest.mark.parametrize(("ip", "country"), KNOWN_COUNTRIES)
def test_country_of_known_addresses(ip: str | None, country: str) -> None:
    assert country_of(ip) == country


@pytest.mark.parametrize(
    ("platform", "version", "label"),
    [
        ("ios", "17.4.1", "iOS 17"),
        ("android", "14", "Android 14"),
        ("ios", None, "iOS"),
        ("android", "beta", "Android"),
        ("desktop", "10.15", "Computer"),
        ("other", None, "Other"),
    ],
)
def test_os_label_is_platform_and_major_version(
    platform: str, version: str | None, label: str
) -> None:
    assert os_label(platform, version) == label


@pytest.mark.parametrize(
    ("referrer", "label"),
    [
        ("https://mail.google.com/mail/u/0/#inbox/abc", "mail.google.com"),
        ("HTTPS://Mail.Example.ORG:8443/x?y=1", "mail.example.org"),
        (None, "direct"),
        ("", "direct"),
        ("not a url", "direct"),
    ],
)
def test_referrer_label_is_its_host(referrer: str | None, label: str) -> None:
    assert referrer_label(referrer) == label


# ---- against the database ---------------------------------------------------------------------

OLD = utcnow().replace(microsecond=0) - timedelta(days=3)


def _db(app: Flask) -> Database:
    db: Database = app.extensions["linkgen"].db
    return db


def _row(ts: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "click_id": "ck" + secrets.token_hex(10),
        "ts": ts,
        "link_id": None,
        "template_id": TEMPLATE,
        "app_id": None,
        "media_source": "Email",
        "campaign": "spring_sale",
        "channel": "email",
        "params": {},
        "ip": "8.8.8.8",
        "user_agent": "test",
        "platform": "ios",
        "os_version": "17.4",
        "referrer": None,
        "is_bot": False,
    }
    row.update(values)
    return row


def _insert(app: Flask, rows: list[dict[str, Any]]) -> None:
    with _db(app).session() as session:
        session.execute(insert(Click), rows)


def _mixed_clicks(n: int, start: datetime = OLD) -> list[dict[str, Any]]:
    """`n` clicks over three days, with every dimension and scope varied."""
    ips = [ip for ip, _ in KNOWN_COUNTRIES]
    platforms = [("ios", "17.4"), ("ios", "16.1"), ("android", "14"), ("desktop", None)]
    referrers = [None, "https://mail.google.com/mail/u/0/", "https://t.co/abc", ""]
    return [
        _row(
            start + timedelta(hours=7 * i % 72, seconds=i),
            campaign=("spring_sale", "winback", None)[i % 3],
            channel=("email", "sms")[i % 2],
            media_source=("Email", "SMS", "Push")[i % 3],
            ip=ips[i % len(ips)],
            platform=platforms[i % 4][0],
            os_version=platforms[i % 4][1],
            referrer=referrers[i % 4],
            is_bot=i % 5 == 0,
        )
        for i in range(n)
    ]


def _expected(app: Flask) -> Counter[tuple[Any, ...]]:
    """The rollup computed straight from the clicks: a GROUP BY in the database per scope and
    stored column, the derived values (OS, country, referrer) mapped per group."""
    out: Counter[tuple[Any, ...]] = Counter()
    stored = (Click.platform, Click.os_version, Click.ip, Click.referrer, Click.is_bot)
    scopes: list[tuple[str, Any]] = [
        ("all", None),
        ("campaign", Click.campaign),
        ("channel", Click.channel),
        ("media_source", Click.media_source),
    ]
    with _db(app).session() as session:
        if _db(app).dialect == "postgresql":
            session.execute(select(func.set_config("timezone", "UTC", True)))
        for scope, column in scopes:
            keys = (*([column] if column is not None else []), func.date(Click.ts), *stored)
            for row in session.execute(select(*keys, func.count()).group_by(*keys)):
                *head, d, platform, version, ip, ref, bot, n = row
                value = (head[0] if head else "") or ""
                for dimension, v in (
                    ("platform", platform),
                    ("os", os_label(platform, version)),
                    ("country", country_of(ip)),
                    ("referrer", referrer_label(ref)),
                ):
                    out[(scope, value, dimension, str(d)[:10], v, bool(bot))] += n
    return out


def _rolled_up(app: Flask) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    with _db(app).session() as session:
        for r in session.scalars(select(ClickRollup)):
            base = (r.scope, r.scope_value, r.dimension, r.day.isoformat(), r.value)
            if r.human_clicks:
                out[(*base, False)] += r.human_clicks
            if r.bot_clicks:
                out[(*base, True)] += r.bot_clicks
    return out


def _watermark(app: Flask) -> int | None:
    with _db(app).session() as session:
        return session.scalar(select(RollupWatermark.last_id))


def test_rollup_equals_a_group_by_over_the_clicks(app: Flask) -> None:
    _insert(app, _mixed_clicks(240))
    assert catch_up(_db(app), batch=37) == 240
    expected = _expected(app)
    assert _rolled_up(app) == expected
    assert sum(n for k, n in expected.items() if k[0] == "all" and k[2] == "country") == 240
    with _db(app).session() as session:
        top = session.scalar(select(func.max(Click.id)))
    assert _watermark(app) == top


def test_running_twice_counts_nothing_twice(app: Flask) -> None:
    _insert(app, _mixed_clicks(60))
    assert catch_up(_db(app)) == 60
    before = _rolled_up(app)
    assert catch_up(_db(app)) == 0
    assert roll_up_clicks(_db(app)).clicks == 0
    assert _rolled_up(app) == before
    _insert(app, _mixed_clicks(25, OLD + timedelta(hours=1)))
    assert catch_up(_db(app)) == 25
    assert _rolled_up(app) == _expected(app)


def _twice_at_once(app: Flask, work: Any) -> list[Any]:
    """`work(db)` in two threads, each with its own engine, started together; their results."""
    url = app.extensions["linkgen"].settings.database_url
    dbs = [Database(url), Database(url)]
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(db: Database) -> None:
        try:
            start.wait(timeout=30)
            results.append(work(db))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for db in dbs:
        db.dispose()
    assert not errors
    assert len(results) == 2
    return results


def test_two_workers_at_once_count_each_click_once(app: Flask) -> None:
    _insert(app, _mixed_clicks(300))
    totals = _twice_at_once(app, lambda db: catch_up(db, batch=20))
    assert sum(totals) == 300
    assert _rolled_up(app) == _expected(app)


def test_a_step_stopped_mid_way_leaves_nothing_and_the_next_one_catches_up(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    _insert(app, _mixed_clicks(120))
    assert roll_up_clicks(_db(app), batch=50).clicks == 50
    real = rollups.upsert_adding

    def crash(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)  # the sums are written, then the process "dies" before COMMIT
        raise KeyboardInterrupt

    monkeypatch.setattr(rollups, "upsert_adding", crash)
    with pytest.raises(KeyboardInterrupt):
        roll_up_clicks(_db(app), batch=50)
    monkeypatch.setattr(rollups, "upsert_adding", real)
    assert catch_up(_db(app), batch=50) == 70
    assert _rolled_up(app) == _expected(app)


def test_days_are_utc_days_whatever_zone_the_time_came_in(app: Flask) -> None:
    base = datetime(2026, 11, 30, tzinfo=UTC)
    ist = timezone(timedelta(hours=5, minutes=30))
    _insert(
        app,
        [
            _row(base.replace(hour=23, minute=59, second=59)),  # 30 Nov
            _row(base + timedelta(days=1, seconds=1)),  # 1 Dec 00:00:01
            # 1 Dec 03:00 in India is 30 Nov 21:30 UTC
            _row(datetime(2026, 12, 1, 3, 0, tzinfo=ist), platform="android", os_version="14"),
            # 30 Nov 22:00 in New York is 1 Dec 03:00 UTC
            _row(datetime(2026, 11, 30, 22, 0, tzinfo=timezone(timedelta(hours=-5))), is_bot=True),
        ],
    )
    catch_up(_db(app))
    with _db(app).session() as session:
        nov = breakdowns(session, base.date(), base.date())
        dec = breakdowns(session, base.date() + timedelta(days=1), base.date() + timedelta(days=1))
    assert [(r.label, r.human_clicks, r.bot_clicks) for r in nov["platform"]] == [
        ("Android", 1, 0),
        ("iOS", 1, 0),
    ]
    assert [(r.label, r.human_clicks, r.bot_clicks) for r in dec["platform"]] == [("iOS", 1, 1)]
    assert _rolled_up(app) == _expected(app)


def test_only_settled_clicks_are_rolled_up(app: Flask) -> None:
    now = utcnow()
    _insert(
        app,
        [
            _row(now - SETTLE - timedelta(seconds=5)),
            _row(now - timedelta(seconds=10)),  # a scanner could still re-flag it
            _row(now - SETTLE - timedelta(seconds=30)),  # later id, older time: waits too
        ],
    )
    step = roll_up_clicks(_db(app), now=now)
    assert (step.clicks, step.behind) == (1, True)
    assert roll_up_clicks(_db(app), now=now).clicks == 0
    assert roll_up_clicks(_db(app), now=now + SETTLE).clicks == 2
    assert _rolled_up(app) == _expected(app)


def test_breakdowns_read_a_scope_and_sum_the_tail(app: Flask) -> None:
    rows = [
        _row(OLD, referrer=f"https://r{i}.example.com/", campaign="big" if i < 30 else "small")
        for i in range(30)
        for _ in range(i % 3 + 1)
    ]
    rows += [_row(OLD, referrer=None, campaign="small", is_bot=True) for _ in range(4)]
    _insert(app, rows)
    catch_up(_db(app))
    with _db(app).session() as session:
        every = breakdowns(session, OLD.date(), OLD.date(), top=5)
        small = breakdowns(session, None, None, scope="campaign", scope_value="small")
        none = breakdowns(session, None, None, scope="campaign", scope_value="nothing")
    referrers = every["referrer"]
    assert len(referrers) == 6 and referrers[-1].rest
    assert referrers[-1].label == "26 others"
    assert sum(r.clicks for r in referrers) == len(rows)
    assert [(r.label, r.human_clicks, r.bot_clicks) for r in small["referrer"]] == [
        ("direct", 0, 4)
    ]
    assert small["country"][0].label == "US"
    assert all(not v for v in none.values())


def test_schedule_steps_back_to_back_while_behind(app: Flask) -> None:
    _insert(app, _mixed_clicks(25))
    schedule = RollupSchedule(_db(app), every=3600, batch=10)
    assert schedule.step() and schedule.step() and schedule.step()
    assert schedule.rolled_up == 25
    assert not schedule.step()  # caught up: the next step waits `every`


def test_rollup_command_backfills(app: Flask, runner: Any) -> None:
    _insert(app, _mixed_clicks(45))
    result = runner.invoke(args=["rollup-clicks", "--batch", "100"])
    assert result.exit_code == 0, result.output
    assert "rolled up 45 click(s)" in result.output
    assert _rolled_up(app) == _expected(app)


def test_a_real_click_is_broken_down(app: Flask, client: FlaskClient, api: Api) -> None:
    s = make_setup(app, client, api)
    path, _ = s.short_path()
    s.click(path, IPHONE, ip="81.2.69.142", headers={"Referer": "https://mail.google.com/x"})
    s.click(path, ANDROID, ip="8.8.8.8")
    assert roll_up_clicks(_db(app), now=utcnow() + SETTLE + timedelta(seconds=1)).clicks == 2
    with _db(app).session() as session:
        got = breakdowns(session, None, None, scope="campaign", scope_value="spring")
    assert {r.label for r in got["os"]} == {"iOS 17", "Android 14"}
    assert {r.label for r in got["country"]} == {"GB", "US"}
    assert {r.label for r in got["referrer"]} == {"mail.google.com", "direct"}
    assert _rolled_up(app) == _expected(app)


def test_the_api_answers_the_breakdowns(app: Flask, api: Api) -> None:
    _insert(
        app,
        [
            _row(OLD, ip="8.8.8.8", campaign="spring_sale"),
            _row(OLD, ip="81.2.69.142", campaign="winback", is_bot=True),
            _row(OLD, ip=None, campaign="winback", referrer="https://t.co/x"),
        ],
    )
    catch_up(_db(app))
    day = OLD.date().isoformat()
    resp = api.get(f"/api/v1/stats/breakdowns?by=country&from={day}&to={day}")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {
        "items": [
            {"dimension": "country", "value": "US", "label": "US", "human_clicks": 1,
             "bot_clicks": 0, "clicks": 1},
            {"dimension": "country", "value": None, "label": "Unknown", "human_clicks": 1,
             "bot_clicks": 0, "clicks": 1},
            {"dimension": "country", "value": "GB", "label": "GB", "human_clicks": 0,
             "bot_clicks": 1, "clicks": 1},
        ],
        "next": None,
    }  # fmt: skip
    every = api.get("/api/v1/stats/breakdowns?campaign=winback").get_json()["items"]
    assert {i["dimension"] for i in every} == {"platform", "os", "country", "referrer"}
    assert sum(i["clicks"] for i in every if i["dimension"] == "referrer") == 2
    assert {i["value"] for i in every if i["dimension"] == "referrer"} == {"direct", "t.co"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("by=city", "by"),
        ("from=2026-13-01", "from"),
        ("campaign=a&channel=email", "channel"),
        ("campaign=" + "c" * 101, "campaign"),
    ],
)
def test_a_bad_breakdown_request_names_the_field(api: Api, query: str, field: str) -> None:
    resp = api.get(f"/api/v1/stats/breakdowns?{query}")
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == field


def test_the_worker_rolls_clicks_up_between_its_postback_iterations(app: Flask) -> None:
    import time

    from linkgen.delivery.worker import OutboxWorker, WorkerConfig

    _insert(app, _mixed_clicks(35))
    config = WorkerConfig(idle_poll=0.05, heartbeat_every=3600, rollup_batch=10)
    worker = OutboxWorker(_db(app), config=config)
    assert worker.rollups is not None
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while worker.rollups.rolled_up < 35 and time.monotonic() < deadline:
            time.sleep(0.05)  # polls for the condition; the assertion below does not race it
    finally:
        stop.set()
        thread.join(timeout=60)
        worker.close()
    assert worker.rollups.rolled_up == 35
    assert _rolled_up(app) == _expected(app)
    off = OutboxWorker(_db(app), config=WorkerConfig(rollup_every=0))
    assert off.rollups is None
    off.close()


# ---- the counters per day ---------------------------------------------------------------------


def _counters(app: Flask, rows: list[tuple[int, str, str, str, int, int, int]]) -> None:
    """(days back, link, campaign, channel, human clicks, bot clicks, installs) counter rows."""
    from linkgen.storage.counters import CounterKey, upsert_counters
    from linkgen.storage.rawsql import OnSession

    deltas: dict[CounterKey, dict[str, int]] = {}
    for back, link, campaign, channel, human, bots, installs in rows:
        key = CounterKey.of(
            utcnow() - timedelta(days=back),
            link_id=link,
            template_id=TEMPLATE,
            campaign=campaign,
            channel=channel,
            media_source=channel.title(),
        )
        deltas[key] = {
            "clicks": human + bots,
            "human_clicks": human,
            "bot_clicks": bots,
            "installs": installs,
            "revenue_micros": installs * 1_990_000,
        }
    with _db(app).session() as session:
        upsert_counters(OnSession(session), deltas)


COUNTER_ROWS = [
    (back, f"lk{i}", ("spring_sale", "winback", "")[i % 3], ("email", "sms")[i % 2], i + back, i % 2, i % 3)
    for back in (0, 1, 2, 3, 9, 20, 40)
    for i in range(6)
]  # fmt: skip


def _every_report(app: Flask) -> list[Any]:
    from linkgen.services.stats import daily_totals, summarise_counters

    today = utcnow().date()
    out: list[Any] = []
    with _db(app).session() as session:
        for first, last in (
            (None, None),
            (today - timedelta(days=30), today),
            (today - timedelta(days=5), today - timedelta(days=3)),
        ):
            for group in ("campaign", "channel", "media_source", "link"):
                out.append(summarise_counters(session, group, first, last))
            out.append(
                summarise_counters(session, "link", first, last, where=("campaign", "winback"))
            )
            for group, where in (
                ("channel", ("channel", "sms")),
                ("campaign", ("channel", "sms")),
                ("media_source", ("campaign", "winback")),
            ):
                out.append(summarise_counters(session, group, first, last, where=where))
        for where in (
            None,
            ("campaign", "spring_sale"),
            ("media_source", "Email"),
            ("channel", "sms"),
        ):
            out.append(daily_totals(session, today - timedelta(days=45), today, where=where))
    return out  # fmt: skip


def test_counter_rollups_answer_what_the_counters_do(app: Flask) -> None:
    from linkgen.services.rollups import roll_up_counters
    from linkgen.services.stats import counters_rolled_up_to

    _counters(app, COUNTER_ROWS)
    direct = _every_report(app)  # nothing built yet: the counters alone
    steps = 0
    while roll_up_counters(_db(app)).behind:
        steps += 1
    assert steps >= 5  # 40 days back, a week a step
    with _db(app).session() as session:
        assert counters_rolled_up_to(session) == utcnow().date() - timedelta(days=2)
        assert session.scalar(select(func.count()).select_from(CounterRollup)) > 0
    assert _every_report(app) == direct
    # Today's and yesterday's counters are read live, not from the rollups.
    _counters(app, [(0, "lk1", "winback", "sms", 5, 1, 1), (1, "lk9", "new_one", "email", 2, 0, 0)])
    assert _every_report(app) != direct
    with_live = _every_report(app)
    while roll_up_counters(_db(app)).behind:
        pass
    assert _every_report(app) == with_live


def test_a_late_event_rebuilds_its_day(app: Flask) -> None:
    from linkgen.services.rollups import roll_up_counters

    _counters(app, COUNTER_ROWS)
    while roll_up_counters(_db(app)).behind:
        pass
    # An app sends an event of 9 days ago: its counter and its row are one transaction.
    late = utcnow() - timedelta(days=9)
    _counters(app, [(9, "lk2", "winback", "email", 0, 0, 3)])
    with _db(app).session() as session:
        session.add(
            Event(
                app_id="com.example.shop",
                event_id="late-1",
                event_name="af_purchase",
                event_values={},
                ts=late,
                received_at=utcnow() - SETTLE - timedelta(seconds=1),
                response={},
            )
        )
    with _db(app).session() as session:
        stale = _every_report(app)
    step = roll_up_counters(_db(app))
    assert step.clicks == 1  # one day rebuilt
    fresh = _every_report(app)
    assert fresh != stale
    with _db(app).session() as session:
        session.execute(delete(CounterRollup))
        session.execute(delete(RollupWatermark).where(RollupWatermark.name == "counter_days"))
    assert _every_report(app) == fresh  # the same as the counters alone
    assert roll_up_counters(_db(app)).clicks > 0


def test_two_counter_builds_at_once_write_each_day_once(app: Flask) -> None:
    from linkgen.services.rollups import roll_up_counters

    _counters(app, COUNTER_ROWS)
    direct = _every_report(app)

    def build(db: Database) -> int:
        steps = 1
        while roll_up_counters(db).behind:
            steps += 1
        return steps

    _twice_at_once(app, build)
    assert _every_report(app) == direct
    with _db(app).session() as session:
        keys = session.execute(
            select(
                CounterRollup.day,
                CounterRollup.campaign,
                CounterRollup.channel,
                CounterRollup.media_source,
            )
        ).all()
    assert len(keys) == len(set(keys))
