"""A link's title, tags and notes in the web app: the builder, the list (title, chips, tag
filter), the link page's details form for editors and read-only details for viewers. SQLite and
PostgreSQL (see conftest)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from linkgen.services import catalog
from linkgen.services.accounts import create_user
from linkgen.services.link_queries import get_link_dict
from linkgen.services.links import create_link
from linkgen.storage.models import Template
from tests.integration.test_ui_link_expiry import PASSWORD, token

EDITOR = "editor@example.com"
VIEWER = "viewer@example.com"


def log_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post(
        "/login",
        data={"csrf_token": token(client, "/login"), "email": email, "password": PASSWORD},
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


@pytest.fixture
def editor(app: Flask) -> FlaskClient:
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        create_user(db, EDITOR, PASSWORD, role="editor")
        create_user(db, VIEWER, PASSWORD, role="viewer")
        catalog.create_template_record(
            db, {"template_id": "AbCd", "domain": "go.example.com"}, rt.settings.link_domains
        )
    return log_in(app, EDITOR)


def make_link(app: Flask, **body: Any) -> dict[str, Any]:
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        out: dict[str, Any] = create_link(
            db,
            {"template_id": "AbCd", "channel": "sms", **body},
            scheme_for=rt.settings.scheme_for,
        )
    return out


def stored(app: Flask, link_id: str) -> dict[str, Any]:
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        out: dict[str, Any] = get_link_dict(db, link_id, scheme_for=rt.settings.scheme_for)
    return out


def test_the_builder_creates_a_link_with_title_tags_and_notes(
    app: Flask, editor: FlaskClient
) -> None:
    page = editor.get("/links/new").get_data(as_text=True)
    assert 'name="title"' in page and 'name="tags"' in page and 'name="notes"' in page
    assert "<summary>Tags and notes</summary>" in page
    form = {
        "csrf_token": token(editor, "/links/new"),
        "template_id": "AbCd",
        "channel": "email",
        "campaign": "spring",
        "title": " Spring newsletter ",
        "tags": "Spring, shoes, ,spring",
        "notes": "Footer button.\r\nSecond line.",
    }
    resp = editor.post("/links/new", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    link_id = resp.headers["Location"].split("/links/")[1].split("?")[0]
    link = stored(app, link_id)
    assert (link["title"], link["tags"], link["notes"]) == (
        "Spring newsletter",
        ["spring", "shoes"],
        "Footer button.\r\nSecond line.",
    )
    # Editing in the builder shows them again; emptying them there removes them.
    edit = editor.get(f"/links/{link_id}/edit").get_data(as_text=True)
    assert 'value="Spring newsletter"' in edit and 'value="spring, shoes"' in edit
    assert "Second line.</textarea>" in edit
    form = {
        "csrf_token": token(editor, f"/links/{link_id}/edit"),
        "channel": "email",
        "campaign": "spring",
        "title": "",
        "tags": "",
        "notes": "",
    }
    assert editor.post(f"/links/{link_id}/edit", data=form).status_code == 302
    link = stored(app, link_id)
    assert (link["title"], link["tags"], link["notes"]) == (None, [], None)


def test_a_bad_tag_in_the_builder_is_shown_at_the_tags_field(editor: FlaskClient) -> None:
    form = {
        "csrf_token": token(editor, "/links/new"),
        "template_id": "AbCd",
        "channel": "email",
        "tags": "spring, summer sale",
    }
    resp = editor.post("/links/new", data=form)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert re.search(r'data-error-for="tags" >tags\[1\] may only hold letters', page), page
    # The preview names the same field, so its script can show the error beside the input.
    preview = editor.post("/links/preview", data=form).get_json()
    assert preview["ok"] is False and preview["error"]["field"] == "tags"


def test_the_list_shows_titles_and_chips_and_filters_by_tag(
    app: Flask, editor: FlaskClient
) -> None:
    titled = make_link(app, campaign="spring", title="Spring SMS", tags=["spring", "shoes"])
    plain = make_link(app, campaign="autumn")
    page = editor.get("/links").get_data(as_text=True)
    assert ">Spring SMS</a>" in page and ">autumn</a>" in page
    assert 'href="/links?tag=shoes"' in page and '<option value="shoes">' in page
    tagged = editor.get("/links?tag=Shoes").get_data(as_text=True)
    assert titled["id"] in tagged and plain["id"] not in tagged
    assert 'id="f-tag" name="tag" list="tag-list" value="shoes"' in tagged
    none = editor.get("/links?tag=winter").get_data(as_text=True)
    assert "No links match these filters" in none


def test_an_editor_changes_the_details_on_the_link_page(app: Flask, editor: FlaskClient) -> None:
    link = make_link(app, campaign="spring", title="Old", tags=["spring"], params={"af_sub1": "x"})
    page = editor.get(f"/links/{link['id']}").get_data(as_text=True)
    assert 'id="details-form"' in page and "<h1>Old " in page
    data = {
        "csrf_token": token(editor, f"/links/{link['id']}"),
        "title": "New title",
        "tags": "spring, print",
        "notes": "On the Paris poster.",
    }
    resp = editor.post(f"/links/{link['id']}/details", data=data)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/links/{link['id']}?details=1#details-h")
    after = stored(app, link["id"])
    assert (after["title"], after["tags"], after["notes"]) == (
        "New title",
        ["spring", "print"],
        "On the Paris poster.",
    )
    # Only the details change: the URLs, params and expiry stay.
    for name in ("short_url", "long_url", "params", "expires_at", "campaign"):
        assert after[name] == link[name], name
    bad = editor.post(
        f"/links/{link['id']}/details", data={**data, "notes": "x" * 2001, "title": "Kept"}
    )
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "notes is longer than 2000 characters" in html and 'value="Kept"' in html
    assert stored(app, link["id"])["title"] == "New title"


def test_a_viewer_reads_the_details_and_cannot_change_them(app: Flask, editor: FlaskClient) -> None:
    link = make_link(app, campaign="spring", title="Poster", tags=["print"], notes="A\nB")
    viewer = log_in(app, VIEWER)
    page = viewer.get(f"/links/{link['id']}").get_data(as_text=True)
    assert 'id="details-form"' not in page
    assert "<dd>print</dd>" in page and '<dd class="notes">A\nB</dd>' in page
    resp = viewer.post(
        f"/links/{link['id']}/details",
        data={"csrf_token": token(viewer, "/links"), "title": "Mine now"},
    )
    assert resp.status_code == 403
    assert stored(app, link["id"])["title"] == "Poster"


def test_a_refusal_of_another_field_is_said_above_the_details_form(
    app: Flask, editor: FlaskClient
) -> None:
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        template = db.scalars(select(Template).where(Template.template_id == "AbCd")).one()
        template.redirect_allowlist = ["example.com"]
    link = make_link(app, campaign="spring", params={"af_r": "https://example.com/spring"})
    with rt.db.session() as db:
        template = db.scalars(select(Template).where(Template.template_id == "AbCd")).one()
        template.redirect_allowlist = ["example.org"]  # the link's af_r is off the list now
    data = {"csrf_token": token(editor, f"/links/{link['id']}"), "title": "Still mine"}
    resp = editor.post(f"/links/{link['id']}/details", data=data)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert re.search(r'class="field-error form-error" role="alert" >af_r host', html), html
    assert 'value="Still mine"' in html
    assert stored(app, link["id"])["title"] is None
