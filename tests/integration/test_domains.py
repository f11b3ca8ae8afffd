"""Branded domains as data (SQLite and PostgreSQL): added through the API, usable by templates at
once in every process (two apps on one database stand for two processes), refused when bad or
duplicate, not deleted under a template, and answered by the TLS `ask` endpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from tests.conftest import Api
from tests.integration.test_api_integration import _api_for

BRAND = "go.brand.com"


def _template(api: Api, domain: str, template_id: str = "Brnd") -> object:
    return api.post(
        "/api/v1/templates",
        {"template_id": template_id, "domain": domain, "web_fallback_url": "https://brand.com/"},
    )


@pytest.fixture
def two(make_app: Callable[..., Flask]) -> tuple[Api, Api]:
    """Two processes' APIs on one database."""
    return _api_for(make_app()), _api_for(make_app())


def test_added_domain_is_usable_by_templates_in_every_process(two: tuple[Api, Api]) -> None:
    a, b = two
    refused = _template(b, BRAND)
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "domain"

    resp = a.post(
        "/api/v1/domains", {"domain": "Go.Brand.com"}, headers={"Host": "links.example.net"}
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["domain"] == BRAND and body["status"] == "pending_dns"
    assert body["dns"]["type"] == "CNAME" and body["dns"]["name"] == BRAND
    assert body["dns"]["value"] == "links.example.net" and body["created_at"].endswith("Z")

    # The other process, without a restart: its very next request sees the domain.
    created = _template(b, BRAND)
    assert created.status_code == 201, created.get_json()
    click = b.client.get("/Brnd?pid=Email&c=x", headers={"Host": BRAND, "User-Agent": "curl/8"})
    assert click.status_code == 302 and click.headers["Location"] == "https://brand.com/"


def test_delete_is_refused_under_a_template_and_followed_everywhere(two: tuple[Api, Api]) -> None:
    a, b = two
    assert a.post("/api/v1/domains", {"domain": BRAND}).status_code == 201
    assert a.post("/api/v1/domains", {"domain": "spare.brand.com"}).status_code == 201
    assert _template(b, BRAND).status_code == 201
    resp = a.delete(f"/api/v1/domains/{BRAND}")
    assert resp.status_code == 409 and "Brnd" in resp.get_json()["error"]["message"]
    assert b.get(f"/api/v1/domains/{BRAND}").status_code == 200  # nothing lost

    assert a.delete("/api/v1/domains/spare.brand.com").status_code == 204
    assert b.get("/api/v1/domains/spare.brand.com").status_code == 404
    refused = _template(b, "spare.brand.com", "Spre")
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "domain"
    assert [d["domain"] for d in b.get("/api/v1/domains").get_json()["items"]] == [BRAND]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"domain": "go.example.com"}, 409, "domain"),  # already in LINKGEN_LINK_DOMAINS
        ({"domain": "https://go.brand.com"}, 400, "domain"),
        ({"domain": "-bad-.brand.com"}, 400, "domain"),
        ({"domain": "go..brand.com"}, 400, "domain"),
        ({"domain": 7}, 400, "domain"),
        ({}, 400, "domain"),
        ({"domain": BRAND, "tls": True}, 400, "tls"),
    ],
)
def test_bad_or_duplicate_domains_are_refused(
    api: Api, body: object, status: int, field: str
) -> None:
    resp = api.post("/api/v1/domains", body)
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["error"]["field"] == field


def test_adding_twice_is_a_conflict(api: Api) -> None:
    assert api.post("/api/v1/domains", {"domain": BRAND}).status_code == 201
    again = api.post("/api/v1/domains", {"domain": BRAND.upper()})
    assert again.status_code == 409 and again.get_json()["error"]["field"] == "domain"


def test_list_pages(api: Api) -> None:
    for n in range(3):
        assert api.post("/api/v1/domains", {"domain": f"go{n}.brand.com"}).status_code == 201
    first = api.get("/api/v1/domains?limit=2").get_json()
    assert [d["domain"] for d in first["items"]] == ["go0.brand.com", "go1.brand.com"]
    rest = api.get(f"/api/v1/domains?limit=2&cursor={first['next']}").get_json()
    assert [d["domain"] for d in rest["items"]] == ["go2.brand.com"] and rest["next"] is None


def test_tls_ask_answers_only_for_link_domains(api: Api) -> None:
    client = api.client
    assert client.get(f"/_linkgen/tls-ask?domain={BRAND}").status_code == 404
    assert client.get("/_linkgen/tls-ask?domain=go.example.com").status_code == 200  # settings
    assert client.get("/_linkgen/tls-ask").status_code == 404
    assert api.post("/api/v1/domains", {"domain": BRAND}).status_code == 201
    assert client.get(f"/_linkgen/tls-ask?domain={BRAND.upper()}").status_code == 200
    assert api.get(f"/api/v1/domains/{BRAND}").get_json()["status"] == "active"
    assert client.get("/_linkgen/tls-ask?domain=evil.brand.com").status_code == 404


def test_read_keys_may_list_but_not_add(app: Flask, api: Api) -> None:
    from linkgen.services.accounts import create_api_key

    with app.extensions["linkgen"].db.session() as session:
        _, raw = create_api_key(session, "reader", scope="read")
    reader = Api(app.test_client(), raw)
    assert reader.post("/api/v1/domains", {"domain": BRAND}).status_code == 403
    assert reader.get("/api/v1/domains").status_code == 200
