"""A link's title, tags and notes in the browser, and a top bar that stays one row.

At desktop and phone width: build a link with a title, tags and notes, find it by its tag in
the list, change its notes on the link page; the top navigation is one row at 1280 px, the
account menu opens and fits the screen, no page scrolls sideways, no console error (the
`new_page` fixture), no serious accessibility violation (axe-core)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    Site,
    assert_accessible,
    assert_no_horizontal_scroll,
    log_in,
    open_account_menu,
)

pytestmark = pytest.mark.e2e

# The vertical centre (px) of everything in the top bar: the brand, each nav item, the account
# menu. One row: they are all the same.
ROW_CENTRES = """() => [...document.querySelectorAll(
  '.topbar-inner > *, .mainnav a, .account-menu > summary')]
  .map(el => { const r = el.getBoundingClientRect(); return r.top + r.height / 2; })"""


@pytest.mark.parametrize(("name", "size"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_build_find_by_tag_and_edit_the_notes(
    seeded: Site, new_page: Any, name: str, size: dict[str, int]
) -> None:
    tag = f"e2e-{name}"
    title = f"Spring newsletter ({name})"
    page = new_page(size)
    log_in(page)

    # The builder: the title near the top, tags and notes under "Tags and notes".
    page.goto("/links/new?channel=sms")
    page.get_by_label("Campaign", exact=True).fill("spring_sale")
    page.get_by_label("Title", exact=True).fill(title)
    expect(page.get_by_label("Tags", exact=True)).to_be_hidden()
    page.locator("summary", has_text="Tags and notes").click()
    page.get_by_label("Tags", exact=True).fill(f"Spring, {tag}")
    page.get_by_label("Notes", exact=True).fill("Footer button of the newsletter.")
    page.locator("#preview-body").wait_for(state="visible")
    assert_no_horizontal_scroll(page, f"builder at {name} width")
    assert_accessible(page, f"builder with tags and notes at {name} width")
    if name == "desktop":
        page.screenshot(path=str(SCREENSHOTS / "builder-details-desktop.png"), full_page=True)
    page.get_by_role("button", name="Create link").click()
    page.wait_for_url(re.compile(r".*/links/[0-9a-f]{32}\?created=1$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    link_id = page.url.split("/links/")[1].split("?")[0]

    # The list: found by its tag, shown by its title with its tags as chips.
    page.goto("/links")
    page.get_by_label("Tag", exact=True).fill(tag.upper())
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**/links?*tag={tag.upper()}*")
    rows = page.locator("table.links-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("a.link-title")).to_have_text(title)
    expect(rows.first.locator(".chip")).to_have_text(["spring", tag])
    assert_no_horizontal_scroll(page, f"links by tag at {name} width")
    assert_accessible(page, f"links by tag at {name} width")
    if name == "desktop":
        page.screenshot(path=str(SCREENSHOTS / "links-by-tag-desktop.png"))
    rows.first.locator("a.link-title").click()
    page.wait_for_url(f"**/links/{link_id}")

    # The link page: the notes change, nothing else does.
    notes = page.get_by_label("Notes", exact=True)
    expect(notes).to_have_value("Footer button of the newsletter.")
    notes.fill("Footer button; also in the April reminder.")
    page.get_by_role("button", name="Save title, tags and notes").click()
    page.wait_for_url(f"**/links/{link_id}?details=1*")
    expect(page.get_by_text("The title, tags and notes were saved.")).to_be_visible()
    expect(page.get_by_label("Notes", exact=True)).to_have_value(
        "Footer button; also in the April reminder."
    )
    expect(page.locator(".page-head .chip")).to_have_text(["spring", tag])
    assert_no_horizontal_scroll(page, f"link page at {name} width")
    assert_accessible(page, f"link page with details at {name} width")
    if name == "desktop":
        page.locator("#details-h").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "link-details-desktop.png"))


@pytest.mark.parametrize(("name", "size"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_top_bar_is_one_row_and_its_account_menuassert_no_horizontal_scroll(
    seeded: Site, new_page: Any, name: str, size: dict[str, int]
) -> None:
    page = new_page(size)
    log_in(page)  # the first user is an admin: the longest menu
    for path in ("/links", "/reports", "/team"):
        page.goto(path)
        centres = page.evaluate(ROW_CENTRES)
        assert len(centres) >= 10, centres
        if name == "desktop":
            assert max(centres) - min(centres) <= 2, f"{path}: the top bar wraps: {centres}"
        assert_no_horizontal_scroll(page, f"{path} at {name} width")
    panel = open_account_menu(page)
    for label in ("Team", "API keys", "Account"):
        expect(panel.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(panel.get_by_role("button", name="Log out")).to_be_visible()
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]
    assert_no_horizontal_scroll(page, f"account menu open at {name} width")
    assert_accessible(page, f"account menu open at {name} width")
    page.screenshot(path=str(SCREENSHOTS / f"account-menu-{name}.png"))
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    panel = open_account_menu(page)
    page.locator("main h1").click()  # a click elsewhere closes it too
    expect(panel).to_be_hidden()
