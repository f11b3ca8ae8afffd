"""The reports page and its CSV: by campaign, channel, media source or link, over a range of
days, read from the counters."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from linkgen.storage.counters import CounterKey, upsert_counters
from linkgen.storage.rawsql import OnSession
from linkgen.storage.types import utcnow
from tests.integration.clickfactory import insert_link
from tests.integration.test_postback_worker import _ui_client


@pytest.fixture
def ui(app: Flask) -> FlaskClient:
    now = utcnow()
    link_id = insert_link(app, shortlink_id="Sale1", campaign="spring_sale", channel="email")
    rows = [
        # days back, campaign, channel, link, human clicks, bot clicks, installs, revenue
        (0, "spring_sale", "email", link_id, 40, 3, 10, 99_900_000),
        (3, "spring_sale", "email", link_id, 20, 1, 5, 0),
        (1, "=HYPERLINK(1)", "sms", "", 10, 0, 1, 0),
        (60, "old_campaign", "push", "", 500, 0, 50, 0),  # outside the default 30 days
    ]
    deltas: dict[CounterKey, dict[str, int]] = {}
    for back, campaign, channel, link, human, bots, installs, revenue in rows:
        key = CounterKey.of(
            now - timedelta(days=back),
            link_id=link,
            template_id="AbCd",
            campaign=campaign,
            channel=channel,
            media_source="Email" if channel == "email" else "SMS",
        )
        deltas[key] = {
            "clicks": human + bots,
            "human_clicks": human,
            "bot_clicks": bots,
            "installs": installs,
            "revenue_micros": revenue,
        }
    with app.extensions["linkgen"].db.session() as session:
        upsert_counters(OnSession(session), deltas)
    client = _ui_client(app)
    client.link_id = link_id  # type: ignore[attr-defined]
    return client


def _cells(html: str, label: str) -> list[str]:
    """The cells of one column of the report table (not of the chart's table), as text (a
    campaign, channel or media source is a link that narrows the report to it)."""
    start = html.index('class="table report-table"')
    table = html[start : html.index("</table>", start)]
    cells = re.findall(rf'data-label="{label}"[^>]*>(.*?)</t[dh]>', table, re.S)
    return [re.sub(r"<[^>]+>", "", c) for c in cells]


def test_the_default_report_is_the_last_30_days_by_campaign(ui: FlaskClient) -> None:
    html = ui.get("/reports").get_data(as_text=True)
    assert "By campaign," in html
    assert _cells(html, "Campaign") == ["spring_sale", "=HYPERLINK(1)"]  # most clicks first
    assert _cells(html, "People's clicks") == ["60", "10", "70"]  # and the total
    assert _cells(html, "Installs") == ["15", "1", "16"]
    assert _cells(html, "Click to install") == ["25.0%", "10.0%", "22.9%"]
    assert _cells(html, "Revenue") == ["99.90", "0.00", "99.90"]
    assert "its currency cannot be shown" in html  # counters only: no events behind them
    assert "old_campaign" not in html


def test_a_report_by_link_names_the_link(ui: FlaskClient) -> None:
    html = ui.get("/reports?group_by=link&days=7").get_data(as_text=True)
    link_id = ui.link_id  # type: ignore[attr-defined]
    assert f'<a href="/links/{link_id}">spring_sale · email · Sale1</a>' in html
    assert "no link (template clicks)" in html


def test_a_date_range_is_kept(ui: FlaskClient) -> None:
    today = utcnow().date()
    start = today - timedelta(days=90)
    html = ui.get(f"/reports?group_by=channel&from={start}&to={today}").get_data(as_text=True)
    assert sorted(_cells(html, "Channel")) == ["email", "push", "sms"]
    one_day = ui.get(f"/reports?from={today}&to={today}").get_data(as_text=True)
    assert _cells(one_day, "Campaign") == ["spring_sale"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "from must be a date"),
        ("from=2026-11-02&to=2026-11-01", "from must not be after to"),
        ("group_by=country", "group_by must be one of"),
    ],
)
def test_a_bad_report_request_says_what_is_wrong(ui: FlaskClient, query: str, message: str) -> None:
    resp = ui.get(f"/reports?{query}")
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert ui.get(f"/reports.csv?{query}").status_code == 400


def test_the_csv_is_what_is_on_screen_with_formulas_neutralised(ui: FlaskClient) -> None:
    resp = ui.get("/reports.csv?group_by=campaign&days=30")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["campaign"] for r in rows] == ["spring_sale", "'=HYPERLINK(1)"]
    assert rows[0]["human_clicks"] == "60" and rows[0]["bot_clicks"] == "4"
    assert rows[0]["revenue"] == "99.9" and rows[0]["install_rate"] == "25.0%"
