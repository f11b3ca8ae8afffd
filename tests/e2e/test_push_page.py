"""The iOS try-the-app page in a real browser: its script runs under its own CSP, tries the
app's scheme and, with no app to open it, goes on to the App Store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import PHONE, Site

pytestmark = pytest.mark.e2e

PUSH_APP = "id987654321"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)


def test_the_try_the_app_page_falls_back_to_the_app_store(live_server: Site, browser: Any) -> None:
    from linkgen.services import catalog

    host = live_server.base_url.removeprefix("http://")
    with live_server.app.extensions["linkgen"].db.session() as db:
        catalog.create_app_record(db, {"app_id": PUSH_APP, "name": "Push test app"})
        catalog.create_template_record(
            db,
            {
                "template_id": "Psh1",
                "domain": host,
                "ios_app_id": PUSH_APP,
                "uri_scheme": "linkgenpushtest://",
                "redirect_allowlist": ["example.com"],
            },
            live_server.app.extensions["linkgen"].settings.link_domains,
        )
    context = browser.new_context(user_agent=IPHONE, viewport=PHONE)
    context.set_default_timeout(15_000)
    store_hits: list[str] = []

    def store(route: Any) -> None:
        store_hits.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>App Store</p>")

    context.route("https://apps.apple.com/**", store)
    try:
        page = context.new_page()
        blocked: list[str] = []
        page.on(
            "console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None
        )
        response = page.goto(
            live_server.base_url + "/Psh1?pid=Push&c=winback&af_channel=push&deep_link_value=cart"
        )
        assert response is not None and response.status == 200
        assert "script-src 'sha256-" in response.headers["content-security-policy"]
        # No app handles the scheme here: after the timeout the page replaces itself.
        page.wait_for_url(f"https://apps.apple.com/app/{PUSH_APP}")
        assert store_hits == [f"https://apps.apple.com/app/{PUSH_APP}"]
        assert blocked == []  # the CSP let the page's own script run
    finally:
        context.close()
