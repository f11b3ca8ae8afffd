"""The reports in a real browser: a range chosen in the form, the daily chart and its table,
the click log filtered to bots with their reasons in words, its pages and its CSV, at desktop
and phone width, without console errors, horizontal scroll or serious axe findings."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from linkgen.services.rollups import SETTLE, catch_up
from linkgen.storage.types import utcnow
from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS, Site, assert_accessible, log_in

pytestmark = pytest.mark.e2e

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
CURL = "curl/8.5.0"
CAMPAIGN = "e2e_reports"


def _fits(page: Any, name: str) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} overflows horizontally by {overflow}px"
    assert_accessible(page, name)


def _tap(site: Site, new_page: Any, campaign: str) -> None:
    """Three people and two bots open a template link of the campaign (the real click path)."""
    path = f"/{site.template_id}?pid=Email&c={campaign}&af_channel=email"
    for ua in (IPHONE, IPHONE, IPHONE, SLACKBOT, CURL):
        tapper = new_page(DESKTOP, user_agent=ua)
        answer = tapper.context.request.get(path, max_redirects=0)
        assert answer.status in (200, 302), (ua, answer.status)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_reports_range_chart_and_click_log(
    seeded: Site, new_page: Any, size: dict[str, int]
) -> None:
    name = "desktop" if size == DESKTOP else "phone"
    campaign = f"{CAMPAIGN}_{name}"
    _tap(seeded, new_page, campaign)
    page = new_page(size)
    log_in(page)
    today = datetime.now(UTC).date()
    page.goto("/reports")
    page.get_by_label("From", exact=True).fill(str(today - timedelta(days=6)))
    page.get_by_label("To", exact=True).fill(str(today))
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/reports?*from={today - timedelta(days=6)}*")
    drawn = page.locator("svg.chart-wide" if name == "desktop" else "svg.chart-narrow")
    assert drawn.is_visible() and drawn.locator("polyline").count() == 4
    assert page.locator("#report-chart svg:visible").count() == 1  # one drawing per width
    page.get_by_text("The chart as a table").click()
    day_row = page.locator(".chart-table tbody tr").filter(has_text=str(today))
    assert day_row.is_visible()
    people = int(day_row.locator("td").nth(0).inner_text())
    bots = int(day_row.locator("td").nth(1).inner_text())
    assert people >= 3 and bots >= 2
    _fits(page, f"reports with a range at {name} width")
    page.screenshot(path=str(SCREENSHOTS / f"reports-chart-{name}.png"), full_page=True)

    # The breakdowns, once the worker's rollup has counted the clicks (settled a minute on).
    catch_up(seeded.db(), now=utcnow() + SETTLE + timedelta(seconds=1))
    page.goto(f"/reports?campaign={campaign}&from={today - timedelta(days=6)}&to={today}")
    page.locator("#report-scope").wait_for()
    for dimension in ("platform", "os", "country", "referrer"):
        assert page.locator(f"#breakdown-{dimension} table").is_visible(), dimension
    os_row = page.locator("#breakdown-os tbody tr").filter(has_text="iOS 17")
    assert os_row.locator("td").nth(1).inner_text() == "3"  # three people on iPhones
    direct = page.locator("#breakdown-referrer tbody tr").filter(has_text="direct")
    assert direct.locator("td").nth(1).inner_text() == "3"
    assert direct.locator("td").nth(2).inner_text() == "2"  # and the two bots
    assert page.locator("#breakdown-country tbody tr").filter(has_text="Unknown").count() == 1
    _fits(page, f"reports' breakdowns at {name} width")
    page.locator("#breakdowns").screenshot(path=str(SCREENSHOTS / f"reports-breakdowns-{name}.png"))
    if name == "desktop":
        with page.expect_download() as info:
            page.locator("#breakdowns-csv").click()
        body = Path(info.value.path()).read_text()
        got = {(r["breakdown"], r["value"]): r for r in csv.DictReader(io.StringIO(body))}
        assert got[("os", "iOS 17")]["people_clicks"] == "3"
        assert got[("referrer", "direct")]["bot_clicks"] == "2"

    page.locator("#report-clicks").click()
    page.wait_for_url("**/reports/clicks?*")
    page.get_by_label("Campaign").fill(campaign)
    page.get_by_label("Who clicked").select_option("bots")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**who=bots*")
    rows = page.locator(".click-table tbody tr")
    assert rows.count() == 2
    text = page.locator(".click-table").inner_text()
    assert "Link-preview crawler (Slackbot)" in text
    assert "Automated tool (Curl)" in text
    _fits(page, f"click log of bots at {name} width")
    page.screenshot(path=str(SCREENSHOTS / f"click-log-{name}.png"), full_page=True)

    # Two a page: the Older link walks on by click number, the Newest link comes back.
    page.goto(f"/reports/clicks?campaign={campaign}&limit=2")
    first = page.locator(".click-table tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    page.locator("#clicks-older").click()
    page.wait_for_url("**before=*")
    second = page.locator(".click-table tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    assert len(first) == 2 and len(second) == 2 and not set(first) & set(second)
    assert page.locator("#clicks-newest").is_visible()
    _fits(page, f"click log, second page, at {name} width")
    if name == "desktop":
        with page.expect_download() as info:
            page.locator("#clicks-csv").click()
        body = Path(info.value.path()).read_text()
        shown = [f"click-{r['click_number']}" for r in csv.DictReader(io.StringIO(body))]
        assert shown == second


def test_a_bad_click_log_filter_says_which_field(seeded: Site, new_page: Any) -> None:
    page = new_page(PHONE)
    log_in(page)
    # Through the page's own session, not as a navigation: a 400 document is a console error.
    answer = page.context.request.get("/reports/clicks?who=robots")
    assert answer.status == 400
    assert 'data-field="who"' in answer.text() and "who must be one of" in answer.text()
