"""The builder and the link page say when a link expires, and warn before an expiring link's QR
code is downloaded for print (SQLite and PostgreSQL, through the Flask test client)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from linkgen.domain.links import link_ref
from linkgen.services import catalog
from linkgen.services.accounts import create_user
from linkgen.services.links import create_link

EMAIL = "manager@example.com"
PASSWORD = "a long enough password"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def token(client: FlaskClient, path: str) -> str:
    match = TOKEN_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def ui(app: Flask, client: FlaskClient) -> FlaskClient:
    """A logged-in client, with template AbCd."""
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        create_user(db, EMAIL, PASSWORD)
        catalog.create_template_record(
            db, {"template_id": "AbCd", "domain": "go.example.com"}, rt.settings.link_domains
        )
    login = client.post(
        "/login",
        data={"csrf_token": token(client, "/login"), "email": EMAIL, "password": PASSWORD},
    )
    assert login.status_code == 302
    return client


def new_link(app: Flask, **body: Any) -> dict[str, Any]:
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        return create_link(
            db,
            {"template_id": "AbCd", "campaign": "poster", **body},
            scheme_for=rt.settings.scheme_for,
        )


def preview(ui: FlaskClient, **form: str) -> dict[str, Any]:
    resp = ui.post(
        "/links/preview",
        data={"template_id": "AbCd", "campaign": "poster", **form},
        headers={"X-CSRFToken": token(ui, "/links/new")},
    )
    assert resp.status_code == 200
    body: dict[str, Any] = resp.get_json()
    assert body["ok"], body
    return body


def qr_card(page: str) -> str:
    start = page.index('id="qr-h"')
    return page[start : page.index("</section>", start)]


def test_the_builder_says_qr_links_never_expire(ui: FlaskClient) -> None:
    page = ui.get("/links/new").get_data(as_text=True)
    assert "QR links never expire" in page
    body = preview(ui, channel="qr")
    assert body["expiry_note"] == "This link never expires: its QR code can be printed."
    assert body["qr_expires"] is False


def test_the_builder_warns_when_a_qr_code_would_expire(ui: FlaskClient) -> None:
    for form in ({"channel": "qr", "ttl": "14d"}, {"channel": "sms"}):
        body = preview(ui, **form)
        assert body["qr_expires"] is True, form
        assert "a printed QR code of it stops working" in body["expiry_note"]
    assert "expires 14d after its last click" in preview(ui, channel="qr", ttl="14d")["expiry_note"]
    long_link = preview(ui, channel="email")
    assert (long_link["qr_expires"], long_link["expiry_note"]) == (
        False,
        "A long link never expires.",
    )


def test_the_preview_marks_the_link_id_a_new_link_gets_on_save(app: Flask, ui: FlaskClient) -> None:
    body = preview(ui, channel="email")
    assert body["pending_link_ref"] is True
    assert "&lg_link=XXXXXXXXXXXXXXXXXXXXXX" in body["long_url"]
    link = new_link(app, channel="email")
    edit = preview(ui, channel="email", link_id=link["id"])
    assert edit["pending_link_ref"] is False
    assert edit["long_url"] == link["long_url"]
    assert f"&lg_link={link_ref(link['id'])}" in edit["long_url"]


def test_the_link_page_of_a_permanent_qr_link_says_so(app: Flask, ui: FlaskClient) -> None:
    link = new_link(app, channel="qr")
    page = ui.get(f"/links/{link['id']}").get_data(as_text=True)
    assert "Short · never expires" in page
    card = qr_card(page)
    assert "This link never expires: its QR code can be printed." in card
    assert "notice-warn" not in card and "data-confirm" not in card


def test_the_link_page_warns_before_an_expiring_qr_code_is_downloaded(
    app: Flask, ui: FlaskClient
) -> None:
    link = new_link(app, channel="qr", ttl="14d")
    page = ui.get(f"/links/{link['id']}").get_data(as_text=True)
    assert "time to live 14d" in page
    card = qr_card(page)
    assert 'class="notice notice-warn" id="qr-expiry"' in card
    assert "a printed QR code of it stops working" in card and "Next expiry:" in card
    for button in ("qr-png", "qr-svg"):
        tag = re.search(rf'<(?:a|button) [^>]*id="{button}"[^>]*>', card)  # a button of the QR form
        assert tag is not None and "data-confirm=" in tag.group(0), button


def test_emptying_the_ttl_of_a_qr_link_in_the_editor_makes_it_permanent(
    app: Flask, ui: FlaskClient
) -> None:
    link = new_link(app, channel="qr", ttl="31d")  # as QR links were made before
    form = {
        "csrf_token": token(ui, f"/links/{link['id']}/edit"),
        "channel": "qr",
        "campaign": "poster",
        "ttl": "",
    }
    resp = ui.post(f"/links/{link['id']}/edit", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = ui.get(f"/links/{link['id']}").get_data(as_text=True)
    assert "Short · never expires" in page
    # An SMS link keeps its time to live when the field is left empty.
    sms = new_link(app, channel="sms", ttl="2h")
    form = {**form, "csrf_token": token(ui, f"/links/{sms['id']}/edit"), "channel": "sms"}
    assert ui.post(f"/links/{sms['id']}/edit", data=form).status_code == 302
    assert "time to live 2h" in ui.get(f"/links/{sms['id']}").get_data(as_text=True)
