"""The OpenAPI document and the URL map agree, and the document is valid OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from markupsafe import escape
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule

from linkgen.web.openapi import build_document
from tests.integration.sqlite_only import make_sqlite_app

API_PREFIX = "/api/v1"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def sqlite_app(sqlite_template: Path, tmp_path: Path) -> Iterator[Flask]:
    """The URL map and the document do not depend on the database: SQLite is enough."""
    app = make_sqlite_app(sqlite_template, tmp_path)
    yield app
    app.extensions["linkgen"].close()


def _documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _sample_path(path: str) -> str:
    """A concrete URL for a templated document path ({x} -> a harmless sample value)."""
    return re.sub(r"\{[^}]+\}", "sample1", path)


def _api_rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if r.rule.startswith(API_PREFIX)]


def test_document_is_served_without_an_api_key(sqlite_app: Flask) -> None:
    resp = sqlite_app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.json == build_document()


def test_document_is_valid_openapi(sqlite_app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", sqlite_app)
    schema.validate()  # the OpenAPI 3.0 meta-schema
    assert len(list(schema.get_all_operations())) >= 25


def test_validation_would_catch_a_broken_document() -> None:
    broken = {**build_document(), "paths": {"/x": {"get": {"responses": "nope"}}}}
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_api_rule_is_documented(sqlite_app: Flask) -> None:
    adapter = sqlite_app.url_map.bind("localhost")
    covered: set[tuple[str, str]] = set()
    for path, method in _documented_operations(build_document()):
        try:
            rule, _ = adapter.match(_sample_path(path), method=method, return_rule=True)
        except (NotFound, MethodNotAllowed):
            continue
        covered.add((rule.rule, method))
    missing = sorted(
        (rule.rule, method)
        for rule in _api_rules(sqlite_app)
        for method in (rule.methods or set()) - IGNORED_METHODS
        if (rule.rule, method) not in covered
    )
    assert missing == [], f"routes missing from linkgen/web/openapi.py: {missing}"


def test_every_documented_operation_is_routed(sqlite_app: Flask) -> None:
    adapter = sqlite_app.url_map.bind("localhost")
    unrouted = []
    for path, method in sorted(_documented_operations(build_document())):
        try:
            rule, _ = adapter.match(_sample_path(path), method=method, return_rule=True)
        except (NotFound, MethodNotAllowed):
            unrouted.append((path, method))
            continue
        assert rule.rule.startswith(API_PREFIX), (path, rule.rule)
    assert unrouted == [], f"documented but not routed: {unrouted}"


def test_every_operation_documents_the_error_shape() -> None:
    doc = build_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS or op.get("security") == []:
                continue
            assert "401" in op["responses"], (method, path)
            assert "400" in op["responses"], (method, path)
    schemas = doc["components"]["schemas"]
    ref = schemas["Error"]["properties"]["error"]["$ref"]
    error = schemas[ref.rsplit("/", 1)[-1]]
    assert set(error["properties"]) == {"code", "message", "field"}


def test_document_links_the_integration_guide_and_the_sdk_contract(sqlite_app: Flask) -> None:
    doc = sqlite_app.test_client().get("/api/v1/openapi.json").get_json()
    assert "docs/integrate/README.md" in doc["info"]["description"]
    launch = doc["paths"]["/api/v1/sdk/{app_id}/launches"]["post"]
    event = doc["paths"]["/api/v1/sdk/{app_id}/events"]["post"]
    assert "install_referrer" in launch["description"]
    assert "event_id" in event["description"]


def test_sdk_request_examples_are_valid_requests(sqlite_app: Flask) -> None:
    """The examples in the served reference are accepted by the validators themselves."""
    from datetime import UTC, datetime

    from linkgen.domain.sdk_requests import parse_event, parse_launch

    doc = sqlite_app.test_client().get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    launch = paths["/api/v1/sdk/{app_id}/launches"]["post"]["requestBody"]["content"]
    event = paths["/api/v1/sdk/{app_id}/events"]["post"]["requestBody"]["content"]
    now = datetime(2026, 12, 2, 10, 1, tzinfo=UTC)
    parsed = parse_launch(
        launch["application/json"]["example"], request_ip=None, request_ua=None, now=now
    )
    assert parsed.first_launch is True
    assert parse_event(event["application/json"]["example"], now=now).event_name == "af_purchase"


def test_reference_page_shows_every_operation_and_field(sqlite_app: Flask) -> None:
    resp = sqlite_app.test_client().get("/api/v1/docs")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    doc = build_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                assert f"<code>{path}</code>" in html, (method, path)
                assert escape(op["summary"]) in html, (method, path)
    # A limit and a description from the models, as the document has them.
    assert "exactly 10 characters" in html  # team_id
    assert "Apple&#39;s team id" in html
    assert "≤ 730" in html  # reattribution_window_days
    assert 'href="/api/v1/openapi.json"' in html
    assert '<script src="http' not in html and "cdn" not in html.lower()


def test_document_is_openapi_3_1_from_the_models() -> None:
    doc = build_document()
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    team = next(
        s for s in schemas["AppCreate"]["properties"]["team_id"]["anyOf"] if "maxLength" in s
    )
    assert team["maxLength"] == 10
    days = schemas["AppCreate"]["properties"]["reattribution_window_days"]
    assert (days["minimum"], days["maximum"]) == (1, 730)
    scheme = next(
        s
        for s in schemas["TemplateCreate"]["properties"]["uri_scheme"]["anyOf"]
        if "maxLength" in s
    )
    assert scheme["maxLength"] == 64
    # Every request field says what it is; most carry an example.
    for name in ("AppCreate", "TemplateCreate", "LinkCreate", "LaunchRequest", "EventRequest"):
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description"), (name, field)


def test_no_pydantic_keyword_leaks_into_the_document() -> None:
    """A constraint pydantic cannot place (ge on a union) lands as `ge`: not a JSON Schema word."""
    leaked = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("ge", "le", "gt", "lt", "max_length", "min_length") and not isinstance(
                    value, dict
                ):
                    leaked.append(f"{where}.{key}")
                walk(value, f"{where}.{key}")
            kind = node.get("type")
            if kind == "array" and ("maxLength" in node or "minLength" in node):
                leaked.append(f"{where}: a length on an array (maxItems / minItems)")
            if kind in ("integer", "boolean", "array") and "pattern" in node:
                leaked.append(f"{where}: a pattern on a {kind}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(build_document()["components"]["schemas"], "schemas")
    assert leaked == []
