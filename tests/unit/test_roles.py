"""The role ladder and the web app's role table, without an app."""

from __future__ import annotations

import pytest

from linkgen.domain.roles import ROLE_LABELS, ROLES, is_role, role_allows
from linkgen.web.ui.roles import needed_role


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("admin", "admin", True),
        ("admin", "editor", True),
        ("admin", "viewer", True),
        ("editor", "admin", False),
        ("editor", "editor", True),
        ("editor", "viewer", True),
        ("viewer", "admin", False),
        ("viewer", "editor", False),
        ("viewer", "viewer", True),
        ("owner", "viewer", False),
        ("", "viewer", False),
        ("admin", "root", False),
    ],
)
def test_role_allows_what_the_roles_below_it_may(role: str, needed: str, allowed: bool) -> None:
    assert role_allows(role, needed) is allowed


def test_every_role_has_a_label() -> None:
    assert set(ROLE_LABELS) == set(ROLES)
    assert all(is_role(r) for r in ROLES) and not is_role("Admin")


@pytest.mark.parametrize(
    ("endpoint", "method", "needed"),
    [
        ("ui.links_list", "GET", None),
        ("ui.links_list", "HEAD", None),
        ("ui.team_page", "GET", "admin"),
        ("ui.api_keys_page", "HEAD", "admin"),
        ("ui.links_new", "GET", "editor"),
        ("ui.links_create", "POST", "editor"),
        ("ui.domains_add", "POST", "admin"),
        ("ui.clevertap_update", "POST", "admin"),
        ("ui.account_password", "POST", None),
        ("ui.logout", "POST", None),
        ("ui.a_route_nobody_listed", "POST", "admin"),
        ("ui.links_create", "PUT", "editor"),
        (None, "POST", "admin"),
    ],
)
def test_needed_role(endpoint: str | None, method: str, needed: str | None) -> None:
    assert needed_role(endpoint, method) == needed
