"""The campaign manager's flows in a real browser (Chromium via Playwright).

Each test logs in through the login form. Screenshots of the main pages, at desktop and phone
width, are written to docs/screenshots/ (README links them).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from linkgen.domain.postbacks import InstallOutcome
from linkgen.services.outbox import postback_linkgen_id, queue_postback
from linkgen.storage.counters import CounterKey, upsert_counters
from linkgen.storage.models import Click, Postback
from linkgen.storage.rawsql import OnSession
from tests.e2e.conftest import (
    ANDROID_APP,
    DESKTOP,
    IOS_APP,
    PHONE,
    QUIET_APP,
    SCREENSHOTS,
    Site,
    assert_accessible,
    log_in,
)
from tests.qr_decode import decode

pytestmark = pytest.mark.e2e

XSS = "<script>window.__pwned=1</script>"


def test_build_personalised_push_link_copy_payload_and_decode_qr(
    seeded: Site, new_page: Any, tmp_path: Any
) -> None:
    page = new_page()
    log_in(page)
    page.get_by_role("link", name="New link").click()
    page.wait_for_url("**/links/new")
    # Other browser tests add templates of their own, in whatever order they run.
    page.get_by_label("Template", exact=True).select_option(seeded.template_id)
    page.get_by_label("Channel", exact=True).select_option("push")
    page.get_by_label("Campaign", exact=True).fill("winback_push")
    page.get_by_label("Deep link value", exact=True).fill("cart")
    page.get_by_label("deep_link_sub1", exact=True).fill(XSS)
    # Personalisation: the CleverTap ID into af_sub5.
    page.get_by_label("Placeholder", exact=True).select_option("{{Profile.objectId}}")
    page.get_by_label("Into parameter", exact=True).select_option("af_sub5")
    page.get_by_role("button", name="Insert").click()
    preview = page.locator("#pv-url")
    pytest_expect_text(preview, "af_sub5={{Profile.objectId}}")
    assert "pid=Push" in preview.inner_text()
    assert "is_retargeting=true" in preview.inner_text()

    # A field error shows next to its field, live, and clears when fixed.
    page.get_by_label("Time to live (short links)", exact=True).fill("400d")
    error = page.locator("#f-ttl-err")
    error.wait_for(state="visible")
    assert "365 days" in error.inner_text()
    page.get_by_label("Time to live (short links)", exact=True).fill("14d")
    error.wait_for(state="hidden")

    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "builder-push-desktop.png"))
    page.get_by_role("button", name="Create link").click()
    page.wait_for_url("**/links/*?created=1")

    # The copied push payload is the CleverTap payload with the placeholder kept raw.
    page.locator('[data-copy-target="cp-push"]').click()
    page.wait_for_selector('[data-copy-target="cp-push"].copied')
    payload = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert set(payload) == {"wzrk_dl"}
    deep_link = payload["wzrk_dl"]
    assert "af_sub5={{Profile.objectId}}" in deep_link
    assert "c=winback_push" in deep_link and "af_channel=push" in deep_link

    # The <script> value is shown as text, never run.
    assert page.evaluate("window.__pwned") is None
    assert XSS in page.locator("dl.params").inner_text()

    # Download the QR code and decode it.
    with page.expect_download() as info:
        page.locator("#qr-png").click()
    path = tmp_path / "qr.png"
    info.value.save_as(path)
    decoded = decode(Image.open(path))
    assert len(decoded) == 1
    data = decoded[0]
    assert data.startswith(seeded.base_url + "/" + seeded.template_id + "?")
    assert "af_qr=true" in data and "c=winback_push" in data
    assert "af_sub5={{Profile.objectId}}" in data
    with page.expect_download() as svg_info:
        page.locator("#qr-svg").click()
    svg_path = tmp_path / "qr.svg"
    svg_info.value.save_as(svg_path)
    assert svg_path.read_text().lstrip().startswith("<?xml")


def pytest_expect_text(locator: Any, text: str) -> None:
    """Wait until the locator's text contains `text` (the preview is fetched as you type)."""
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text)


def test_qr_expiry_is_said_in_the_builder_and_asked_before_download(
    seeded: Site, new_page: Any
) -> None:
    from linkgen.services.links import create_link

    page = new_page()
    log_in(page)
    page.goto("/links/new")
    page.get_by_label("Channel", exact=True).select_option("qr")
    page.get_by_label("Campaign", exact=True).fill("poster_e2e")
    expiry = page.locator("#pv-expiry")
    pytest_expect_text(expiry, "never expires")
    page.get_by_label("Time to live (short links)", exact=True).fill("14d")
    pytest_expect_text(expiry, "a printed QR code of it stops working")
    assert "notice-warn" in (expiry.get_attribute("class") or "")

    rt = seeded.app.extensions["linkgen"]
    with rt.db.session() as db:
        link = create_link(
            db,
            {"template_id": seeded.template_id, "channel": "qr", "ttl": "14d"},
            scheme_for=rt.settings.scheme_for,
        )
    page.goto(f"/links/{link['id']}")
    assert "stops working" in page.locator("#qr-expiry").inner_text()
    questions: list[str] = []

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    with page.expect_download() as info:
        page.locator("#qr-png").click()
    assert info.value.suggested_filename.endswith(".png")
    assert len(questions) == 1 and "will stop working" in questions[0]


def test_import_csv_reports_the_bad_row(seeded: Site, new_page: Any) -> None:
    page = new_page()
    log_in(page)
    page.goto("/import")
    t = seeded.template_id
    csv_text = (
        "template_id,channel,campaign,media_source,params.deep_link_value\n"
        f"{t},email,import_a,,shoes\n"
        f"{t},fax,import_b,,bags\n"
        f"{t},sms,import_c,,hats\n"
    )
    page.get_by_label("CSV file", exact=True).set_input_files(
        files=[{"name": "links.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}]
    )
    page.get_by_role("button", name="Import").click()
    page.locator("#import-result").wait_for(state="visible")
    assert page.locator("#import-bar").evaluate("el => el.value") == 100
    assert "2 links created, 1 row with errors." in page.locator("#import-summary").inner_text()
    rows = page.locator("#import-errors tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0] == "3" and cells[1] == "channel"
    assert "channel must be one of" in cells[2]
    created = page.locator("#import-created tbody tr")
    assert created.count() == 2  # listed with their copy buttons
    assert created.first.locator("td").first.inner_text() == "2"
    assert created.nth(1).locator("a").inner_text() == "import_c"
    sms_url = created.nth(1).locator("code").inner_text()
    assert sms_url.startswith(f"{seeded.base_url}/{t}/")  # SMS links are short
    created.nth(1).get_by_role("button", name="Copy").click()
    page.wait_for_selector("#import-created button.copied")
    assert page.evaluate("navigator.clipboard.readText()") == sms_url
    page.screenshot(path=str(SCREENSHOTS / "import-result-desktop.png"))

    page.goto("/links?campaign=import_c")
    assert page.locator(".links-table tbody tr").count() == 1


def test_clevertap_settings_pick_a_region_from_the_list_and_mask_the_passcode(
    seeded: Site, new_page: Any
) -> None:
    page = new_page()
    log_in(page)
    page.goto(f"/apps/{IOS_APP}/clevertap")
    page.get_by_label("Activate partner", exact=True).check()
    page.get_by_label("Account ID", exact=True).fill("W6K-556-4K6Z")
    passcode = page.get_by_label("Account passcode", exact=True)
    assert passcode.get_attribute("type") == "password"
    passcode.fill("SECRET-passcode-123")
    reveal = page.locator('[data-reveal="f-account_passcode"]')
    reveal.click()
    assert passcode.get_attribute("type") == "text"
    reveal.click()
    assert passcode.get_attribute("type") == "password"
    region = page.get_by_label("Region", exact=True)
    assert region.evaluate("e => e.tagName") == "SELECT"  # no free text: no mistyped region
    region.select_option("IN1")
    page.get_by_label("Send install and re-engagement postbacks for", exact=True).select_option(
        "this_partner"
    )
    page.get_by_role("button", name="+ Add event").click()
    row = page.locator("#mapping-rows [data-row]").last
    row.get_by_label("SDK event", exact=True).fill("af_purchase")
    row.get_by_label("CleverTap event", exact=True).fill("Charged")
    row.get_by_label("Send revenue", exact=True).select_option("values_and_revenue")
    page.get_by_label("In-app event postbacks", exact=True).check()
    page.get_by_role("button", name="Save integration").click()
    page.wait_for_url("**/clevertap?saved=1")
    assert "in1.api.clevertap.com" in page.locator(".page-head").inner_text()
    assert page.get_by_label("Region", exact=True).input_value() == "IN1"
    # The stored passcode is never sent back in full, only masked.
    assert "SECRET-passcode-123" not in page.content()
    assert (
        page.get_by_label("Account passcode", exact=True).get_attribute("placeholder") == "*****123"
    )
    assert page.locator("#mapping-rows [data-row]").count() == 1
    assert "Region: (none) → IN1" in page.locator(".audit").inner_text()


def test_postback_log_explains_a_skipped_postback(seeded: Site, new_page: Any) -> None:
    rt = seeded.app.extensions["linkgen"]
    now = datetime.now(UTC)
    with rt.db.session() as db:
        queue_postback(
            db,
            app_id=QUIET_APP,
            outcome=InstallOutcome(
                kind="install",
                linkgen_id=postback_linkgen_id("install", QUIET_APP, "launch-e2e-1"),
                customer_user_id="__u1",
                ts=now,
                is_organic=False,
                media_source="Email",
                campaign="spring_sale",
            ),
        )
        db.add(
            Postback(
                linkgen_id="event-e2e-failed",
                app_id=IOS_APP,
                kind="event",
                source_id="evt-1",
                status="failed",
                record={"type": "event", "evtName": "Charged", "identity": "__u1"},
                attempts=3,
                last_status=401,
                last_error="CleverTap refused the credentials (401)",
                response={"status": "fail", "error": "Invalid Credentials", "code": 401},
                endpoint="https://eu1.api.clevertap.com/1/upload",
                created_at=now,
            )
        )
    page = new_page()
    log_in(page)
    page.get_by_role("link", name="Postbacks").click()
    page.get_by_label("Status", exact=True).select_option("skipped")
    page.get_by_label("Kind", exact=True).select_option("install")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/postbacks?status=skipped&kind=install*")
    reason = page.locator('[data-reason="partner_inactive"]')
    assert "The CleverTap integration is not active for this app" in reason.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "postbacks-skipped-desktop.png"))

    page.goto("/postbacks?status=failed")
    failed = page.locator(".postback.status-failed").first
    assert "Invalid Credentials" in failed.inner_text()
    failed.get_by_role("button", name="Retry").click()
    page.wait_for_url("**/postbacks?status=failed&retried=*")
    assert "queued to be sent again" in page.locator(".notice-ok").inner_text()


def _seed_stats(site: Site) -> None:
    rt = site.app.extensions["linkgen"]
    link_id = site.extra["link_id"]
    today = datetime.now(UTC)
    deltas: dict[CounterKey, dict[str, int]] = {}
    for back, (clicks, installs) in enumerate([(12, 3), (30, 7), (18, 4), (25, 9), (9, 2)]):
        key = CounterKey.of(
            today - timedelta(days=back),
            link_id=link_id,
            template_id=site.template_id,
            campaign="spring_sale",
            channel="email",
            media_source="Email",
        )
        deltas[key] = {
            "clicks": clicks,
            "human_clicks": clicks - 1,
            "bot_clicks": 1,
            "installs": installs,
            "events": installs,
            "revenue_micros": installs * 9_990_000,
        }
    with rt.db.session() as db:
        upsert_counters(OnSession(db), deltas)


def test_screenshots_of_main_pages_fit_desktop_and_phone(seeded: Site, new_page: Any) -> None:
    _seed_stats(seeded)
    link_id = seeded.extra["link_id"]
    pages = {
        "links": "/links",
        "builder": "/links/new?channel=email&campaign=spring_sale",
        "link-detail": f"/links/{link_id}",
        "import": "/import",
        "apps": "/apps",
        "templates": "/templates",
        "clevertap": f"/apps/{IOS_APP}/clevertap",
        "postbacks": "/postbacks",
        "reports": "/reports?group_by=campaign&days=30",
    }
    login_page = new_page(PHONE)
    login_page.goto("/login")
    assert_accessible(login_page, "login at phone width")
    login_page.screenshot(path=str(SCREENSHOTS / "login-phone.png"))
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(size)
        if name == "desktop":
            page.goto("/login")
            page.screenshot(path=str(SCREENSHOTS / "login-desktop.png"))
        log_in(page)
        for title, path in pages.items():
            page.goto(path)
            page.wait_for_load_state("networkidle")
            if title == "builder":
                page.locator("#preview-body").wait_for(state="visible")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{title} overflows horizontally at {name} width by {overflow}px"
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") != (
                "rgba(0, 0, 0, 0)"
            ), f"{title} is unstyled"
            assert_accessible(page, f"{title} at {name} width")
            page.screenshot(path=str(SCREENSHOTS / f"{title}-{name}.png"))
        if name == "desktop":
            detail = page.goto(f"/links/{link_id}")
            assert detail is not None and detail.ok
            assert page.locator('[data-stat="clicks"]').inner_text() == "94"
            assert page.locator('[data-stat="installs"]').inner_text() == "25"
            assert page.locator("svg.chart-wide polyline").count() == 4


ANDROID_BROWSER = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Mobile Safari/537.36"
)


def test_test_device_view_explains_a_passed_over_click(seeded: Site, new_page: Any) -> None:
    device, gaid = "e2e-install-1", "e2e-gaid-1"
    tapper = new_page(PHONE, user_agent=ANDROID_BROWSER)
    tap = tapper.context.request.get(
        f"/{seeded.template_id}?pid=Email&c=e2e_device&af_channel=email&gaid={gaid}",
        max_redirects=0,
    )
    assert tap.status == 302 and "play.google.com" in tap.headers["location"]
    with seeded.db().session() as db:
        click = db.scalars(select(Click).where(Click.device_id == gaid)).one()
        click_id, clicked_at = click.click_id, click.ts
    # The app's first launch 2 s after the tap: too soon for a person (click injection).
    launch = seeded.app.test_client().post(
        f"/api/v1/sdk/{ANDROID_APP}/launches",
        json={
            "device_id": device,
            "first_launch": True,
            "gaid": gaid,
            "ts": (clicked_at + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        headers={"X-SDK-Key": seeded.extra["android_sdk_key"]},
    )
    assert launch.status_code == 200 and launch.get_json()["attribution"]["is_organic"]

    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(size)
        log_in(page)
        page.get_by_role("link", name="Test device").click()
        page.get_by_label("App", exact=True).select_option(ANDROID_APP)
        page.get_by_label("Device id or CleverTap ID").fill(device)
        page.get_by_role("button", name="Show").click()
        page.wait_for_url("**/devices?*")
        reason = page.locator('.passed-over li[data-reason="click_injection"]')
        pytest_expect_text(reason, click_id)
        pytest_expect_text(reason, "too soon for a person")
        pytest_expect_text(page.locator(".launch-match"), "counts as organic")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the test-device page overflows at {name} width by {overflow}px"
        assert_accessible(page, f"test device at {name} width")
        page.screenshot(path=str(SCREENSHOTS / f"test-device-{name}.png"), full_page=True)
