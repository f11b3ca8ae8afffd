"""The API reference at /api/v1/docs in a real browser: readable and accessible at desktop and
phone width, no console error (the `new_page` fixture fails on one), no horizontal overflow."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS, Site, assert_accessible

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("name", "size"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_api_reference_is_accessible_at_desktop_and_phone_width(
    seeded: Site, new_page: Any, name: str, size: dict[str, int]
) -> None:
    page = new_page(size)
    response = page.goto("/api/v1/docs")
    assert response is not None and response.ok
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text().startswith("linkgen API")
    # An operation, its request fields and an answer, from the generated document.
    create_app = page.locator("#post-api-v1-apps")
    assert "Register an app" in create_app.inner_text()
    assert "exactly 10 characters" in create_app.inner_text()  # team_id, from the domain
    assert page.locator("#schema-LaunchRequest").count() == 1
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the reference overflows horizontally at {name} width by {overflow}px"
    assert_accessible(page, f"API reference at {name} width")
    page.screenshot(path=str(SCREENSHOTS / f"api-docs-{name}.png"))
