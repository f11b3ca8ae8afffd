"""Who may do what in the web app: three roles, each allowed what the one below it may do.

viewer   looks at every page, changes nothing (except their own password)
editor   also links, imports, QR codes, templates, apps and postback retries
admin    also users and invitations, API keys, CleverTap credentials, branded domains
"""

from __future__ import annotations

ROLES = ("admin", "editor", "viewer")
_RANK = {"viewer": 0, "editor": 1, "admin": 2}

ROLE_LABELS = {
    "admin": "Admin: everything, including the team, API keys, CleverTap and domains",
    "editor": "Editor: links, imports, QR codes, templates and apps",
    "viewer": "Viewer: sees everything, changes nothing",
}


def is_role(value: str) -> bool:
    """True for one of the three role names."""
    return value in _RANK


def role_allows(role: str, needed: str) -> bool:
    """True when `role` may do what needs `needed` (an unknown role may do nothing)."""
    if role not in _RANK or needed not in _RANK:
        return False
    return _RANK[role] >= _RANK[needed]
