"""The builder in CleverTap's words: pick the channel, see only what that channel needs."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE, Site, assert_accessible, log_in

pytestmark = pytest.mark.e2e

# What each channel shows in the preview (the rest of the formats stay under "Other formats").
SHOWN = {
    "email": {"pv-url", "pv-email"},
    "sms": {"pv-url", "pv-sms"},
    "push": {"pv-url", "pv-push"},
    "qr": {"pv-qr"},
    "custom": {"pv-url", "pv-email", "pv-sms", "pv-push", "pv-qr"},
}
ALL = {"pv-url", "pv-email", "pv-sms", "pv-push", "pv-qr"}


def _visible(page: Any) -> set[str]:
    shown = page.evaluate(
        "ids => ids.filter(id => document.getElementById(id).closest('[data-channels]')"
        ".hidden === false)",
        sorted(ALL),
    )
    return set(shown)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_each_channel_shows_what_it_needs(seeded: Site, new_page: Any, size: Any) -> None:
    page = new_page(size)
    log_in(page)
    page.goto("/links/new")
    page.get_by_label("Template", exact=True).select_option(seeded.template_id)
    page.get_by_label("Campaign", exact=True).fill("channel_first")
    note = page.locator("#pv-channel-note")
    for channel, wanted in SHOWN.items():
        if channel == "custom":  # a custom channel names its media source
            page.get_by_label("Media source", exact=True).fill("partner_x")
        page.get_by_label("Channel", exact=True).select_option(channel)
        # The preview has caught up with the channel (SMS and QR links are short by default:
        # the long URL, folded away, still names the channel).
        expect(page.locator("#pv-long")).to_contain_text(f"af_channel={channel}")
        assert _visible(page) == wanted, channel
        assert note.inner_text().strip() != ""
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{channel} preview overflows by {overflow}px"
    # The other formats are one click away, for every channel.
    page.get_by_text("Other formats").click()
    expect(page.locator("#pv-long")).to_be_visible()
    assert_accessible(page, "builder, custom channel")


def test_the_email_snippet_carries_the_link_text(seeded: Site, new_page: Any) -> None:
    page = new_page()
    log_in(page)
    page.goto("/links/new?channel=email")
    page.get_by_label("Template", exact=True).select_option(seeded.template_id)
    page.get_by_label("Campaign", exact=True).fill("snippet_text")
    snippet = page.locator("#pv-email")
    expect(snippet).to_contain_text("snippet_text")
    assert snippet.inner_text().endswith("</a>")
    page.get_by_label("Link text", exact=True).fill("Shop the <sale> & more")
    expect(snippet).to_contain_text(">Shop the &lt;sale&gt; &amp; more</a>")
    assert page.locator("#pv-email").is_visible() and not page.locator("#pv-sms").is_visible()
    assert_accessible(page, "builder, email channel")
