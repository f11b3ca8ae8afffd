"""The reports' daily chart, the click log and revenue with its currency (SQLite and
PostgreSQL): what a campaign manager sees on /reports, /reports/clicks and a link's page."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from linkgen.services.rollups import catch_up
from linkgen.services.stats import daily_totals
from linkgen.storage.counters import CounterKey, upsert_counters
from linkgen.storage.models import Click
from linkgen.storage.rawsql import OnSession
from linkgen.storage.types import utcnow
from tests.conftest import Api
from tests.integration.clickfactory import (
    Sdk,
    insert_click,
    insert_link,
    iso,
    make_sdk,
    new_device,
    utc_now,
)
from tests.integration.test_postback_worker import _ui_client


def _today() -> date:
    """Today (UTC), read when a test runs: a module-level date goes stale when a run crosses
    midnight between the import and the test."""
    return utcnow().date()


def _bump(app: Flask, rows: list[tuple[int, str, int, int, int, int]]) -> None:
    """(days back, link id, human clicks, bot clicks, installs, re-engagements) counters."""
    deltas: dict[CounterKey, dict[str, int]] = {}
    now = utcnow()
    for back, link, human, bots, installs, reengagements in rows:
        key = CounterKey.of(
            now - timedelta(days=back),
            link_id=link,
            template_id="AbCd",
            campaign="spring_sale" if link else "template_only",
            channel="email",
            media_source="Email",
        )
        deltas[key] = {
            "clicks": human + bots,
            "human_clicks": human,
            "bot_clicks": bots,
            "installs": installs,
            "reengagements": reengagements,
        }
    with app.extensions["linkgen"].db.session() as session:
        upsert_counters(OnSession(session), deltas)


def _chart_rows(html: str, cid: str) -> dict[str, list[str]]:
    """The chart's table alternative: day -> [people, bots, installs, re-engagements]."""
    start = html.index(f'id="{cid}"')
    table = html[start : html.index("</details>", start)]
    rows = re.findall(r'<tr><th scope="row" data-label="Day">([^<]+)</th>(.*?)</tr>', table)
    return {day: re.findall(r">(\d+)</td>", cells) for day, cells in rows}


@pytest.fixture
def sdk(app: Flask, client: FlaskClient, api: Api) -> Sdk:
    return make_sdk(app, client, api)


@pytest.fixture
def ui(app: Flask) -> FlaskClient:
    return _ui_client(app)


# ---- the daily chart -----------------------------------------------------------------------


def test_daily_totals_fill_every_day_of_the_range_and_can_follow_one_link(app: Flask) -> None:
    link = insert_link(app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    _bump(app, [(0, link, 40, 3, 10, 2), (2, link, 20, 1, 5, 0), (1, "", 7, 0, 1, 0)])
    today = _today()
    with app.extensions["linkgen"].db.session() as session:
        days = daily_totals(session, today - timedelta(days=6), today)
        one = daily_totals(session, today - timedelta(days=2), today, link_id=link)
    assert [d.day for d in days] == [today - timedelta(days=6 - k) for k in range(7)]
    assert [(d.human_clicks, d.bot_clicks, d.installs, d.reengagements) for d in days[-3:]] == [
        (20, 1, 5, 0),
        (7, 0, 1, 0),
        (40, 3, 10, 2),
    ]
    assert sum(d.human_clicks for d in days[:4]) == 0
    assert [d.human_clicks for d in one] == [20, 0, 40]


def test_the_report_draws_the_range_by_day_with_a_table_alternative(
    app: Flask, ui: FlaskClient
) -> None:
    link = insert_link(app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    _bump(app, [(0, link, 40, 3, 10, 2), (2, link, 20, 1, 5, 0), (20, link, 9, 9, 9, 9)])
    today = _today()
    html = ui.get("/reports?days=7").get_data(as_text=True)
    svg = html[html.index('<svg class="chart-wide"') : html.index("</svg>")]
    assert svg.count("<polyline") == 4
    assert "<title id=" in svg and "60 people&#39;s clicks, 4 bot clicks, 15 installs" in svg
    rows = _chart_rows(html, "report-chart")
    assert len(rows) == 7  # every day of the range, zeros included
    assert rows[str(today)] == ["40", "3", "10", "2"]
    assert rows[str(today - timedelta(days=1))] == ["0", "0", "0", "0"]
    # A custom range reaches the older day; the chart follows it.
    start = today - timedelta(days=29)
    wide = ui.get(f"/reports?from={start}&to={today}").get_data(as_text=True)
    rows = _chart_rows(wide, "report-chart")
    assert len(rows) == 30 and rows[str(today - timedelta(days=20))] == ["9", "9", "9", "9"]


def test_a_long_range_charts_its_last_400_days_and_says_so(ui: FlaskClient) -> None:
    today = _today()
    start = today - timedelta(days=1000)
    html = ui.get(f"/reports?from={start}&to={today}").get_data(as_text=True)
    assert "shows the range's last 400 days" in html
    assert len(_chart_rows(html, "report-chart")) == 400


def test_the_link_page_chart_follows_the_range_asked_for(
    app: Flask, sdk: Sdk, ui: FlaskClient
) -> None:
    link = insert_link(app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    other = insert_link(app, shortlink_id="Other", campaign="spring_sale", channel="email")
    _bump(app, [(0, link, 4, 1, 2, 1), (60, link, 30, 0, 3, 0), (0, other, 99, 0, 0, 0)])
    today = _today()
    default = _chart_rows(ui.get(f"/links/{link}").get_data(as_text=True), "link-chart")
    assert len(default) == 7  # a new link: its first week
    assert default[str(today)] == ["4", "1", "2", "1"]  # this link only
    page = ui.get(f"/links/{link}?days=90").get_data(as_text=True)
    rows = _chart_rows(page, "link-chart")
    assert len(rows) == 90 and rows[str(today - timedelta(days=60))] == ["30", "0", "3", "0"]
    assert f'href="/reports/clicks?link={link}&amp;from=' in page
    day = today - timedelta(days=60)
    one = _chart_rows(
        ui.get(f"/links/{link}?from={day}&to={day}").get_data(as_text=True), "link-chart"
    )
    assert one == {str(day): ["30", "0", "3", "0"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [("days=8", "days"), ("from=2026-02-30", "from"), ("to=tomorrow", "to"),
     ("from=2026-11-02&to=2026-11-01", "from")],
)  # fmt: skip
def test_a_bad_chart_range_is_a_400_naming_the_field(
    app: Flask, sdk: Sdk, ui: FlaskClient, query: str, field: str
) -> None:
    link = insert_link(app, shortlink_id="Sale1")
    for path in (f"/links/{link}?{query}", f"/reports?{query}"):
        resp = ui.get(path)
        assert resp.status_code == 400, path
        assert field in resp.get_data(as_text=True)


# ---- the click log -------------------------------------------------------------------------


@pytest.fixture
def clicks(app: Flask) -> dict[str, Any]:
    """Six clicks over three days on two links and a template link, people and bots."""
    sale = insert_link(app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    push = insert_link(app, shortlink_id="Push1", campaign="winback", channel="push")
    now = _clear_of_midnight(utc_now())
    spec: list[tuple[timedelta, str | None, str, bool, str | None, dict[str, str]]] = [
        (timedelta(days=2), sale, "spring_sale", False, None, {}),
        (timedelta(days=2), sale, "spring_sale", True, "scanner:message", {}),
        (timedelta(days=1), push, "winback", True, "preview:slackbot", {}),
        (timedelta(days=1), None, '=HYPERLINK("x")', False, None, {}),
        (timedelta(hours=1), sale, "spring_sale", True, "scanner:microsoft_safelinks", {}),
        (timedelta(minutes=5), sale, "spring_sale", False, None, {}),
    ]
    ids = []
    for back, link, campaign, bot, reason, extra in spec:
        ids.append(
            insert_click(
                app,
                ts=now - back,
                link_id=link,
                params={"c": campaign, **extra},
                is_bot=bot,
                bot_reason=reason,
                os_version="14",
            )
        )
    return {"sale": sale, "push": push, "ids": ids, "now": now}


def _clear_of_midnight(now: datetime) -> datetime:
    """`now`, or 22:00 UTC of the day before in the first two hours of a day: the hour-old and
    five-minute-old clicks must fall on `now`'s date and the day-old ones on the date before
    (at 00:18 the hour-old click fell on yesterday, beside the day-old ones)."""
    if now.hour < 2:
        return now.replace(hour=0, minute=0, second=0) - timedelta(hours=2)
    return now


def _log_rows(html: str) -> list[str]:
    return re.findall(r'<tr id="click-(\d+)" data-bot="(?:yes|no)">', html)


def test_the_click_log_lists_clicks_newest_first_with_bot_reasons_in_words(
    ui: FlaskClient, clicks: dict[str, Any]
) -> None:
    resp = ui.get("/reports/clicks")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    numbers = [int(n) for n in _log_rows(html)]
    assert len(numbers) == 6 and numbers == sorted(numbers, reverse=True)
    assert "the same client opened several links of one message within seconds" in html
    assert "Link-preview crawler (Slackbot)" in html
    assert "Email security scanner (Microsoft Safe Links)" in html
    assert "spring_sale · email · Sale1" in html and "Android 14" in html
    assert html.count('<span class="tag tag-person">') == 3


@pytest.mark.parametrize(
    ("query", "count"),
    [("who=bots", 3), ("who=people", 3), ("campaign=winback", 1), ("who=people&campaign=spring_sale", 2)],
)  # fmt: skip
def test_the_click_log_filters_by_who_and_campaign(
    ui: FlaskClient, clicks: dict[str, Any], query: str, count: int
) -> None:
    html = ui.get(f"/reports/clicks?{query}").get_data(as_text=True)
    assert len(_log_rows(html)) == count
    if "bots" in query:
        assert 'data-bot="no"' not in html
    if "people" in query:
        assert 'data-bot="yes"' not in html


def test_the_click_log_filters_by_link_and_by_days(ui: FlaskClient, clicks: dict[str, Any]) -> None:
    sale = clicks["sale"]
    assert len(_log_rows(ui.get(f"/reports/clicks?link={sale}").get_data(as_text=True))) == 4
    day = (clicks["now"] - timedelta(days=1)).date()
    html = ui.get(f"/reports/clicks?from={day}&to={day}").get_data(as_text=True)
    assert len(_log_rows(html)) == 2
    older = (clicks["now"] - timedelta(days=2)).date()
    html = ui.get(f"/reports/clicks?link={sale}&to={older}").get_data(as_text=True)
    assert len(_log_rows(html)) == 2


def test_the_click_log_pages_by_click_number(ui: FlaskClient, clicks: dict[str, Any]) -> None:
    seen: list[str] = []
    url = "/reports/clicks?limit=4"
    while url:
        html = ui.get(url).get_data(as_text=True)
        page = _log_rows(html)
        assert 0 < len(page) <= 4
        seen += page
        found = re.search(r'id="clicks-older" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
        if seen[4:]:
            assert 'id="clicks-newest"' in html
    assert len(seen) == 6 == len(set(seen))
    assert [int(n) for n in seen] == sorted((int(n) for n in seen), reverse=True)


def test_the_click_log_csv_is_the_page_on_screen_with_formulas_neutralised(
    ui: FlaskClient, clicks: dict[str, Any]
) -> None:
    html = ui.get("/reports/clicks?limit=3").get_data(as_text=True)
    href = re.search(r'id="clicks-csv" href="([^"]+)"', html)
    assert href is not None and "limit=3" in href.group(1)
    resp = ui.get(href.group(1).replace("&amp;", "&"))
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["click_number"] for r in rows] == _log_rows(html)
    second = ui.get("/reports/clicks.csv?limit=10&who=bots").get_data(as_text=True)
    bots = list(csv.DictReader(io.StringIO(second)))
    assert {r["bot_reason"] for r in bots} == {
        "scanner:message",
        "preview:slackbot",
        "scanner:microsoft_safelinks",
    }
    assert all(r["bot"] == "yes" and r["bot_reason_text"] for r in bots)
    people = ui.get("/reports/clicks.csv?who=people").get_data(as_text=True)
    campaigns = [r["campaign"] for r in csv.DictReader(io.StringIO(people))]
    assert '\'=HYPERLINK("x")' in campaigns


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("who=robots", "who"),
        ("before=abc", "before"),
        ("before=0", "before"),
        ("before=999999", "before"),  # no such click (retention deleted it, say)
        (f"before={2**64}", "before"),
        ("limit=1000", "limit"),
        ("limit=-1", "limit"),
        ("from=2026-13-01", "from"),
        ("from=2026-11-02&to=2026-11-01", "from"),
        ("link=" + "x" * 33, "link"),
        ("campaign=" + "c" * 101, "campaign"),
    ],
)
def test_a_bad_click_log_request_is_a_400_naming_the_field(
    ui: FlaskClient, query: str, field: str
) -> None:
    resp = ui.get(f"/reports/clicks?{query}")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert f'data-field="{field}"' in html and field in html.split("data-field=")[1]
    csv_resp = ui.get(f"/reports/clicks.csv?{query}")
    assert csv_resp.status_code == 400 and f"field: {field}" in csv_resp.get_data(as_text=True)


def test_report_rows_link_to_their_clicks(app: Flask, ui: FlaskClient) -> None:
    link = insert_link(app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    _bump(app, [(0, link, 4, 1, 2, 1)])
    by_link = ui.get("/reports?group_by=link&days=7").get_data(as_text=True)
    assert f'href="/reports/clicks?link={link}&amp;from=' in by_link
    by_campaign = ui.get("/reports?days=7").get_data(as_text=True)
    assert 'href="/reports/clicks?campaign=spring_sale&amp;from=' in by_campaign


# ---- revenue with its currency -------------------------------------------------------------


def _purchase(sdk: Sdk, link_id: str, revenue: str, currency: str | None) -> None:
    device = new_device()
    at = utc_now() - timedelta(hours=3)
    insert_click(
        sdk.app, ts=at - timedelta(hours=1), params={"gaid": "g-" + device}, link_id=link_id
    )
    resp = sdk.launch(device, gaid="g-" + device, ts=iso(at))
    assert resp.get_json()["attribution"]["link_id"] == link_id, resp.get_json()
    values: dict[str, str] = {"af_revenue": revenue}
    if currency is not None:
        values["af_currency"] = currency
    resp = sdk.event(device_id=device, event_name="af_purchase", event_values=values, ts=iso(at))
    assert resp.status_code == 201, resp.get_json()


def test_revenue_is_shown_in_the_currency_it_is_sent_as(sdk: Sdk, ui: FlaskClient) -> None:
    link = insert_link(sdk.app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    _purchase(sdk, link, "49.90", "EUR")
    report = ui.get("/reports?days=7").get_data(as_text=True)
    assert "49.90 EUR" in report and "Revenue is in EUR" in report
    csv_body = ui.get("/reports.csv?days=7").get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(csv_body))
    assert row["revenue_currency"] == "EUR"
    page = ui.get(f"/links/{link}").get_data(as_text=True)
    assert 'data-stat="revenue">49.90 EUR<' in page and "Revenue is in EUR" in page
    assert "49.90 EUR" in ui.get("/links").get_data(as_text=True)


def test_revenue_without_a_currency_is_usd_and_mixed_currencies_are_broken_down(
    sdk: Sdk, ui: FlaskClient
) -> None:
    link = insert_link(sdk.app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    other = insert_link(sdk.app, shortlink_id="Sale2", campaign="spring_sale", channel="email")
    _purchase(sdk, link, "10", None)
    assert "10.00 USD" in ui.get(f"/links/{link}").get_data(as_text=True)
    _purchase(sdk, other, "49.90", "EUR")
    report = ui.get("/reports?days=7").get_data(as_text=True)
    assert "59.90 (mixed currencies)" in report
    assert '<span data-currency="EUR">49.90 EUR</span>' in report
    assert '<span data-currency="USD">10.00 USD</span>' in report
    # Each link still has one currency of its own.
    assert 'data-stat="revenue">49.90 EUR<' in ui.get(f"/links/{other}").get_data(as_text=True)
    listing = ui.get("/links").get_data(as_text=True)
    assert "49.90 EUR" in listing and "10.00 USD" in listing


def test_revenue_outside_the_range_does_not_name_a_currency(sdk: Sdk, ui: FlaskClient) -> None:
    link = insert_link(sdk.app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    _purchase(sdk, link, "49.90", "EUR")
    old = _today() - timedelta(days=40)
    html = ui.get(f"/reports?from={old}&to={old}").get_data(as_text=True)
    assert "EUR" not in html


@pytest.mark.parametrize("path", ["/reports/clicks", "/reports/clicks.csv"])
def test_the_click_log_needs_a_login(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


# ---- breakdowns by platform, OS, country and referrer --------------------------------------


def _broken_down(app: Flask) -> None:
    """Clicks of two campaigns from three countries, rolled up, with their counters."""
    at = utcnow() - timedelta(hours=2)
    rows = [
        ("spring_sale", "ios", "17.4", "8.8.8.8", "https://mail.google.com/mail/u/0/", False),
        ("spring_sale", "ios", "17.1", "81.2.69.142", None, False),
        ("spring_sale", "android", "14", "81.2.69.0", None, True),
        ("winback", "android", "13", None, "https://t.co/x", False),
    ]
    db = app.extensions["linkgen"].db
    for campaign, platform, version, ip, referrer, bot in rows:
        insert_click(
            app,
            ts=at,
            params={"c": campaign},
            platform=platform,
            os_version=version,
            ip=ip,
            is_bot=bot,
        )
        if referrer:
            with db.session() as session:
                session.execute(
                    update(Click)
                    .where(Click.id == select(func.max(Click.id)).scalar_subquery())
                    .values(referrer=referrer)
                )
    catch_up(db)


def _breakdown(html: str, dimension: str) -> list[list[str]]:
    """A breakdown table's rows: [label, people, bots, share]."""
    start = html.index(f'id="breakdown-{dimension}"')
    table = html[start : html.index("</section>", start)]
    out = []
    for row in re.findall(r"<tr(?: class=\"[^\"]*\")?>(.*?)</tr>", table, re.S)[1:]:
        label = re.search(r'class="breakdown-label">([^<]*)<', row)
        nums = re.findall(r'class="num">([^<]*)</td>', row)
        assert label is not None
        out.append([label.group(1), *nums])
    return out


def test_the_report_breaks_clicks_down_by_platform_os_country_and_referrer(
    app: Flask, ui: FlaskClient
) -> None:
    _broken_down(app)
    html = ui.get("/reports?days=7").get_data(as_text=True)
    assert _breakdown(html, "platform") == [["iOS", "2", "0", "50%"], ["Android", "1", "1", "50%"]]
    assert _breakdown(html, "os") == [
        ["iOS 17", "2", "0", "50%"],
        ["Android 13", "1", "0", "25%"],
        ["Android 14", "0", "1", "25%"],
    ]
    assert _breakdown(html, "country") == [
        ["GB", "1", "1", "50%"],
        ["US", "1", "0", "25%"],
        ["Unknown", "1", "0", "25%"],
    ]
    assert _breakdown(html, "referrer") == [
        ["direct", "1", "1", "50%"],
        ["mail.google.com", "1", "0", "25%"],
        ["t.co", "1", "0", "25%"],
    ]


def test_a_campaign_row_narrows_the_report_and_its_breakdowns(app: Flask, ui: FlaskClient) -> None:
    _broken_down(app)
    _bump(app, [(0, "", 3, 1, 0, 0)])  # counters of campaign template_only
    html = ui.get("/reports?days=7").get_data(as_text=True)
    assert (
        'class="row-scope" href="/reports?group_by=link&amp;campaign=template_only&amp;from='
        in html
    )
    narrowed = ui.get("/reports?days=7&campaign=winback").get_data(as_text=True)
    assert 'id="report-scope"' in narrowed and "<strong>winback</strong>" in narrowed
    assert _breakdown(narrowed, "platform") == [["Android", "1", "0", "100%"]]
    assert _breakdown(narrowed, "referrer") == [["t.co", "1", "0", "100%"]]
    assert 'name="campaign" value="winback"' in narrowed  # the form keeps the filter
    two = ui.get("/reports?days=7&campaign=winback&channel=email")
    assert two.status_code == 400 and "narrow a report to one of" in two.get_data(as_text=True)


def test_the_breakdowns_csv_is_what_the_page_shows(app: Flask, ui: FlaskClient) -> None:
    _broken_down(app)
    resp = ui.get("/reports/breakdowns.csv?days=7&campaign=spring_sale")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert 'filename="breakdowns-campaign-' in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0] == ["breakdown", "value", "people_clicks", "bot_clicks", "share"]
    assert ["country", "GB", "1", "1", "67%"] in rows
    assert ["os", "iOS 17", "2", "0", "67%"] in rows
    assert {r[0] for r in rows[1:]} == {"platform", "os", "country", "referrer"}
    page = ui.get("/reports?days=7&campaign=spring_sale").get_data(as_text=True)
    shown = sum(len(_breakdown(page, d)) for d in ("platform", "os", "country", "referrer"))
    assert len(rows) - 1 == shown


def test_a_report_of_many_links_shows_the_busiest_and_totals_all(
    app: Flask, ui: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkgen.web.ui import reports

    monkeypatch.setattr(reports, "MAX_ROWS_SHOWN", 2)
    _bump(app, [(0, f"lk{i}", i + 1, 0, 0, 0) for i in range(5)])
    html = ui.get("/reports?days=7&group_by=link").get_data(as_text=True)
    assert "The 2 links with the most people's clicks are shown; 3 more" in html
    assert html.count('data-label="People\'s clicks" class="num">') == 3  # 2 rows and the total
    assert 'data-label="People\'s clicks" class="num">15</td>' in html
    csv_rows = ui.get("/reports.csv?days=7&group_by=link").get_data(as_text=True).splitlines()
    assert len(csv_rows) == 6
