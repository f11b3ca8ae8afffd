"""The web app's domains page (SQLite and PostgreSQL): add a branded domain with its DNS record
shown, pick it for a template, remove it; CSRF and bad input as on every form."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.integration.test_ui_security import _token, user_client  # noqa: F401 - a fixture


def test_add_pick_and_remove_a_domain(user_client: FlaskClient) -> None:  # noqa: F811
    client = user_client
    page = client.get("/domains")
    assert page.status_code == 200 and "No branded domains yet" in page.get_data(as_text=True)

    token = _token(client, "/domains")
    added = client.post(
        "/domains",
        data={"csrf_token": token, "domain": "Go.Brand.com"},
    )
    assert added.status_code == 302
    html = client.get("/domains?ok=added").get_data(as_text=True)
    assert "Domain added." in html and "go.brand.com CNAME localhost" in html
    assert "Waiting for DNS" in html

    # The templates form offers it at once.
    assert 'value="go.brand.com"' in client.get("/templates").get_data(as_text=True)

    removed = client.post("/domains/go.brand.com/delete", data={"csrf_token": token})
    assert removed.status_code == 302
    assert "No branded domains yet" in client.get("/domains").get_data(as_text=True)


def test_bad_domain_is_shown_next_to_the_field(user_client: FlaskClient) -> None:  # noqa: F811
    token = _token(user_client, "/domains")
    resp = user_client.post("/domains", data={"csrf_token": token, "domain": "https://x"})
    assert resp.status_code == 400
    assert "domain must be a host name" in resp.get_data(as_text=True)


def test_posting_without_csrf_is_refused(user_client: FlaskClient) -> None:  # noqa: F811
    resp = user_client.post("/domains", data={"domain": "go.brand.com"})
    assert resp.status_code in (400, 403)
    assert "<code>go.brand.com</code>" not in user_client.get("/domains").get_data(as_text=True)
