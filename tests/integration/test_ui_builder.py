"""The builder in the campaign manager's words: opening the app, a page for computers."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from linkgen.services import catalog
from linkgen.services.accounts import create_user
from linkgen.storage.models import Link
from tests.integration.test_ui_link_expiry import EMAIL, PASSWORD, token


@pytest.fixture
def ui(app: Flask, client: FlaskClient) -> FlaskClient:
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        create_user(db, EMAIL, PASSWORD)
        catalog.create_template_record(
            db,
            {
                "template_id": "AbCd",
                "domain": "go.example.com",
                "uri_scheme": "shop://",
                "redirect_allowlist": ["example.com"],
            },
            rt.settings.link_domains,
        )
    login = client.post(
        "/login",
        data={"csrf_token": token(client, "/login"), "email": EMAIL, "password": PASSWORD},
    )
    assert login.status_code == 302
    return client


def test_open_the_app_and_a_desktop_page_are_fields_of_the_builder(
    app: Flask, ui: FlaskClient
) -> None:
    page = ui.get("/links/new").get_data(as_text=True)
    assert "Open the app if it is installed" in page and "Page on a computer" in page
    assert "Sent as af_force_deeplink" in page and "The c parameter" not in page
    form = {
        "csrf_token": token(ui, "/links/new"),
        "template_id": "AbCd",
        "channel": "email",
        "campaign": "spring",
        "param_af_force_deeplink": "on",
        "param_af_dp": "shop://product/shoes",
        "param_af_web_dp": "https://www.example.com/spring",
    }
    resp = ui.post("/links/new", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    with app.extensions["linkgen"].db.session() as db:
        (link,) = db.query(Link).all()
        assert link.params["af_force_deeplink"] == "true"
        assert link.params["af_dp"] == "shop://product/shoes"
        assert link.params["af_web_dp"] == "https://www.example.com/spring"
        link_id = link.id
    edit = ui.get(f"/links/{link_id}/edit").get_data(as_text=True)
    assert 'name="param_af_force_deeplink" checked' in edit
    assert 'value="shop://product/shoes"' in edit


def test_a_desktop_page_off_the_allow_list_is_refused_naming_the_field(ui: FlaskClient) -> None:
    form = {
        "csrf_token": token(ui, "/links/new"),
        "template_id": "AbCd",
        "channel": "email",
        "param_af_web_dp": "https://evil.example.net/",
    }
    resp = ui.post("/links/new", data=form)
    assert resp.status_code == 400
    assert "af_web_dp" in resp.get_data(as_text=True)
