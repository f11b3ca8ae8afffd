"""What each role may do in the web app, decided on the server for every request.

Reading pages is open to every logged-in user, except the admin pages below and the pages
that are only a form to change something. A request that changes something (any method but
GET/HEAD/OPTIONS) needs the role listed for its endpoint here; an endpoint not listed needs
admin, so a new form is closed to editors and viewers until someone decides otherwise.
Templates ask `may(endpoint)` to hide what the user cannot do, from the same table.
"""

from __future__ import annotations

from flask import g, request

from linkgen.domain.errors import Forbidden
from linkgen.domain.roles import role_allows

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Any logged-in user (or anyone, for the public ones) may post these: they act on one's own
# session or account, not on shared data.
SELF_SERVICE = frozenset(
    {"ui.login", "ui.logout", "ui.setup", "ui.invite_accept", "ui.account_password"}
)

EDITOR_CHANGES = frozenset(
    {
        "ui.links_create",
        "ui.links_preview",
        "ui.link_update",
        "ui.link_details_update",
        "ui.link_delete",
        "ui.import_form",
        "ui.import_parse",
        "ui.import_chunk",
        "ui.apps_create",
        "ui.app_update",
        "ui.templates_create",
        "ui.template_update",
        "ui.template_check",
        "ui.postback_retry",
        # Styled QR codes: a POST only because it may carry a logo; nothing is stored.
        "ui.link_qr",
        "ui.links_qr_zip",
    }
)

# Pages that show who can log in and the keys to the API: admins only, even to look.
ADMIN_PAGES = frozenset({"ui.team_page", "ui.api_keys_page"})
# Pages that are nothing but a form to change something: a viewer has no use for them.
EDITOR_PAGES = frozenset({"ui.links_new", "ui.link_edit", "ui.import_page"})


def needed_role(endpoint: str | None, method: str) -> str | None:
    """The least role a request needs (None: any logged-in user, or the public pages)."""
    if method in READ_METHODS:
        if endpoint in ADMIN_PAGES:
            return "admin"
        if endpoint in EDITOR_PAGES:
            return "editor"
        return None
    if endpoint in SELF_SERVICE:
        return None
    if endpoint in EDITOR_CHANGES:
        return "editor"
    return "admin"


def may(endpoint: str, method: str = "POST") -> bool:
    """True when the logged-in user may call this endpoint (for templates)."""
    user = g.get("user")
    needed = needed_role(endpoint, method)
    if needed is None:
        return True
    return user is not None and role_allows(user.role, needed)


def enforce_role() -> None:
    """Refuse (403) a request the logged-in user's role does not allow."""
    user = g.get("user")
    needed = needed_role(request.endpoint, request.method)
    if user is None or needed is None or role_allows(user.role, needed):
        return
    if needed == "admin":
        what = "This needs an admin"
    else:
        what = "Your role lets you look at everything here but not change it"
    raise Forbidden(f"{what} (you are {user.email}, {user.role}). Ask an admin if you need more.")
