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
from pyzbar.pyzbar import decode

from linkgen.domain.postbacks import InstallOutcome
from linkgen.services.outbox import enqueue_postback, postback_linkgen_id
from linkgen.storage.counters import CounterKey, bump_counters
from linkgen.storage.models import Postback
from tests.e2e.conftest import (
    DESKTOP,
    IOS_APP,
    PHONE,
    QUIET_APP,
    SCREENSHOTS,
    Site,
    log_in,
)

pytestmark = pytest.mark.e2e

XSS = "<script>window.__pwned=1</script>"


def test_build_personalised_push_link_copy_payload_and_decode_qr(
    seeded: Site, new_page: Any, tmp_path: Any
) -> None:
    page = new_page()
    log_in(page)
    page.get_by_role("link", name="New link").click()
    page.wait_for_url("**/links/new")
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
    data = decoded[0].data.decode()
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
    page.screenshot(path=str(SCREENSHOTS / "import-result-desktop.png"))

    page.goto("/links?campaign=import_c")
    assert page.locator(".links-table tbody tr").count() == 1


def test_lowercase_region_shows_the_warning(seeded: Site, new_page: Any) -> None:
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
    page.get_by_label("Region", exact=True).fill("eu1")
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
    warnings = page.locator("#warnings")
    assert 'Region "eu1"' in warnings.inner_text()
    assert 'Did you mean "EU1"?' in warnings.inner_text()
    # The stored passcode is never sent back in full, only masked.
    assert "SECRET-passcode-123" not in page.content()
    assert (
        page.get_by_label("Account passcode", exact=True).get_attribute("placeholder") == "*****123"
    )
    assert page.locator("#mapping-rows [data-row]").count() == 1
    assert "region" in page.locator(".audit").inner_text()


def test_postback_log_explains_a_skipped_postback(seeded: Site, new_page: Any) -> None:
    rt = seeded.app.extensions["linkgen"]
    now = datetime.now(UTC)
    with rt.db.session() as db:
        enqueue_postback(
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
        bump_counters(db, deltas)


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
    }
    login_page = new_page(PHONE)
    login_page.goto("/login")
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
            page.screenshot(path=str(SCREENSHOTS / f"{title}-{name}.png"))
        if name == "desktop":
            detail = page.goto(f"/links/{link_id}")
            assert detail is not None and detail.ok
            assert page.locator('[data-stat="clicks"]').inner_text() == "94"
            assert page.locator('[data-stat="installs"]').inner_text() == "25"
            assert page.locator(".chart-wide svg polyline").count() == 2
