"""The test-device view in a browser: from a device id to the plain-words reason a click was
passed over, at desktop and phone widths (screenshots in docs/screenshots/)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from linkgen.services.accounts import create_api_key
from tests.e2e.conftest import ANDROID_APP, DESKTOP, PHONE, SCREENSHOTS, Site, log_in

ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.113 Mobile Safari/537.36"
)


def _install_right_after_a_click(site: Site) -> tuple[str, str]:
    """A real click on the live server and a first launch at once: (device id, click id)."""
    with site.db().session() as db:
        _, api_key = create_api_key(db, f"e2e-device-{secrets.token_hex(3)}")
    with httpx.Client(base_url=site.base_url, timeout=10) as http:
        rotated = http.patch(
            f"/api/v1/apps/{ANDROID_APP}",
            json={"rotate_sdk_key": True},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert rotated.status_code == 200, rotated.text
        sdk_key = rotated.json()["sdk_key"]
        click = http.get(
            f"/{site.template_id}?pid=Email&c=device_view", headers={"User-Agent": ANDROID_UA}
        )
        assert click.status_code == 302, click.text
        referrer = parse_qs(urlsplit(click.headers["location"]).query)["referrer"][0]
        click_id = parse_qs(referrer)["af_tranid"][0]
        device = f"e2e-{secrets.token_hex(4)}"
        launch = http.post(
            f"/api/v1/sdk/{ANDROID_APP}/launches",
            json={"device_id": device, "first_launch": True, "install_referrer": referrer},
            headers={"X-SDK-Key": sdk_key},
        )
        assert launch.status_code == 200, launch.text
        assert launch.json()["attribution"]["is_organic"] is True
    return device, click_id


def test_device_id_to_the_reason_a_click_was_passed_over(seeded: Site, new_page: Any) -> None:
    device, click_id = _install_right_after_a_click(seeded)
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(size)
        log_in(page)
        page.goto(f"/apps/{ANDROID_APP}")
        page.get_by_role("link", name="Test device").click()
        page.wait_for_url(f"**/apps/{ANDROID_APP}/devices")
        page.get_by_label("Id", exact=True).fill(device)
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(f"**/apps/{ANDROID_APP}/devices?*")
        row = page.locator("table.passed-over tbody tr").first
        assert click_id in row.inner_text()
        assert "less than 10 seconds" in row.inner_text()
        assert "Organic: no click won this launch." in page.locator("#h-launches ~ ol").inner_text()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the test-device page overflows at {name} width by {overflow}px"
        page.screenshot(path=str(SCREENSHOTS / f"test-device-{name}.png"), full_page=True)
