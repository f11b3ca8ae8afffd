"""The team in a real browser, at desktop and phone width: an admin invites an editor and a
viewer, they accept and log in, the viewer cannot change things, an API key is made, used and
revoked, and the editor changes their password (their other session ends, this one stays).
Every page checked fits the width (no horizontal scroll) and has no serious axe violation."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    DESKTOP,
    IOS_APP,
    PHONE,
    SCREENSHOTS,
    Site,
    assert_accessible,
    log_in,
    open_account_menu,
)

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a brand new password"
INVITEE_PASSWORD = "invitee password 1"


def _check(page: Any, title: str) -> None:
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{title} overflows horizontally by {overflow}px"
    assert_accessible(page, title)


def _copied(page: Any, target: str) -> str:
    page.locator(f'[data-copy-target="{target}"]').click()
    page.wait_for_selector(f'[data-copy-target="{target}"].copied')
    text: str = page.evaluate("navigator.clipboard.readText()")
    return text


def _invite(page: Any, email: str, role: str) -> str:
    page.get_by_label("Their email", exact=True).fill(email)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_role("button", name="Make invitation link").click()
    link = page.locator("#invite-link")
    expect(link).to_contain_text("/invite/")
    copied = _copied(page, "invite-link")
    assert copied == link.inner_text().strip()
    return copied


def _accept(new_page: Any, size: dict[str, int], link: str, name: str) -> Any:
    page = new_page(size)
    page.goto(link)
    expect(page.get_by_role("heading", name="Join linkgen")).to_be_visible()
    _check(page, f"invitation at {name} width")
    page.get_by_label("Password", exact=True).fill(INVITEE_PASSWORD)
    page.get_by_label("Repeat the password", exact=True).fill(INVITEE_PASSWORD)
    page.get_by_role("button", name="Set password and log in").click()
    page.wait_for_url("**/links")
    return page


@pytest.mark.parametrize(("name", "size"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_admin_invites_editor_and_viewer_api_key_and_password_change(
    seeded: Site, new_page: Any, name: str, size: dict[str, int]
) -> None:
    editor_email = f"editor-{name}@example.com"
    viewer_email = f"viewer-{name}@example.com"

    # The admin invites an editor and a viewer, and revokes a third invitation.
    admin = new_page(size)
    log_in(admin)
    open_account_menu(admin).get_by_role("link", name="Team", exact=True).click()
    admin.wait_for_url("**/team")
    _check(admin, f"team at {name} width")
    editor_link = _invite(admin, editor_email, "editor")
    _check(admin, f"team with a new invitation at {name} width")
    admin.screenshot(path=str(SCREENSHOTS / f"team-{name}.png"), full_page=True)
    viewer_link = _invite(admin, viewer_email, "viewer")
    _invite(admin, f"never-{name}@example.com", "viewer")
    pending = admin.locator(f'tr[data-invitation="never-{name}@example.com"]')
    pending.get_by_role("button", name="Revoke").click()
    expect(admin.get_by_text("Invitation revoked")).to_be_visible()
    expect(pending).to_have_count(0)
    expect(admin.locator(f'tr[data-invitation="{editor_email}"]')).to_have_count(1)

    # The editor accepts, is logged in, and can log in again later.
    editor = _accept(new_page, size, editor_link, name)
    expect(editor.get_by_role("link", name="New link")).to_be_visible()
    menu = open_account_menu(editor)
    expect(menu.get_by_role("link", name="Account", exact=True)).to_be_visible()
    expect(menu.get_by_role("link", name="Team", exact=True)).to_have_count(0)
    expect(menu.get_by_role("link", name="API keys", exact=True)).to_have_count(0)
    menu.get_by_role("button", name="Log out").click()
    editor.wait_for_url("**/login")
    log_in(editor, editor_email, INVITEE_PASSWORD)
    expect(admin.locator(f'tr[data-invitation="{editor_email}"]')).to_have_count(1)  # stale page
    admin.reload()
    expect(admin.locator(f'tr[data-invitation="{editor_email}"]')).to_have_count(0)
    expect(admin.locator(f'tr[data-user="{editor_email}"]')).to_contain_text("Editor")
    # The link worked once (read without opening it: a 410 page is a console error).
    used = admin.request.get(editor_link)
    assert used.status == 410 and "already been used" in used.text()

    # The viewer sees the pages without the buttons that change things, and is refused
    # when it tries anyway.
    viewer = _accept(new_page, size, viewer_link, name)
    expect(viewer.get_by_role("link", name="New link")).to_have_count(0)
    expect(viewer.get_by_role("link", name="Import", exact=True)).to_have_count(0)
    viewer.goto(f"/apps/{IOS_APP}")
    expect(viewer.locator(".readonly-note")).to_be_visible()
    expect(viewer.get_by_role("button", name="Save")).to_have_count(0)
    _check(viewer, f"app page for a viewer at {name} width")
    viewer.goto("/apps")
    expect(viewer.get_by_role("button", name="Add app")).to_have_count(0)
    token = viewer.locator('meta[name="csrf-token"]').get_attribute("content")
    forged = viewer.request.post(
        "/apps", form={"csrf_token": token, "app_id": f"com.viewer.{name}", "name": "No"}
    )
    assert forged.status == 403
    assert "Not allowed" in forged.text()
    viewer.goto("/apps")
    expect(viewer.get_by_text(f"com.viewer.{name}")).to_have_count(0)

    # An API key: made, copied once, used, revoked.
    admin.goto("/links")
    open_account_menu(admin).get_by_role("link", name="API keys", exact=True).click()
    admin.wait_for_url("**/api-keys")
    admin.get_by_label("Name", exact=True).fill(f"e2e-{name}")
    admin.get_by_label("Scope", exact=True).select_option("read")
    admin.get_by_role("button", name="Make API key").click()
    key = _copied(admin, "api-key")
    assert key.startswith("lg_")
    _check(admin, f"API keys with a new key at {name} width")
    admin.screenshot(path=str(SCREENSHOTS / f"api-keys-{name}.png"), full_page=True)
    bearer = {"Authorization": f"Bearer {key}"}
    assert admin.request.get("/api/v1/apps", headers=bearer).status == 200
    row = admin.locator(f'tr[data-key="e2e-{name}"]')
    expect(row).to_contain_text(key[:7])
    admin.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(admin.get_by_text("API key revoked")).to_be_visible()
    expect(row).to_have_count(0)
    assert admin.request.get("/api/v1/apps", headers=bearer).status == 401

    # The editor changes their password: another session of theirs ends, this one stays.
    elsewhere = new_page(size)
    log_in(elsewhere, editor_email, INVITEE_PASSWORD)
    open_account_menu(editor).get_by_role("link", name="Account", exact=True).click()
    editor.wait_for_url("**/account")
    _check(editor, f"account at {name} width")
    editor.get_by_label("Current password", exact=True).fill(INVITEE_PASSWORD)
    editor.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    editor.get_by_label("Repeat the new password", exact=True).fill(NEW_PASSWORD)
    editor.get_by_role("button", name="Change password").click()
    expect(editor.get_by_text("Password changed")).to_be_visible()
    editor.goto("/links")
    assert editor.url.endswith("/links")
    elsewhere.goto("/links")
    assert "/login" in elsewhere.url
    log_in(elsewhere, editor_email, NEW_PASSWORD)
