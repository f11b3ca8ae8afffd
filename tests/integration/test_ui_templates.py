"""The template page: its association files shown, explained and checked from the link domain."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import WSGIRequestHandler, make_server

from linkgen.services import catalog
from tests.integration.test_postback_worker import _ui_client


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def served(make_app: Callable[..., Flask]) -> Iterator[dict[str, Any]]:
    """linkgen on a real port whose own address is a link domain, with an iOS template."""
    holder: dict[str, Any] = {}

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        answer = holder["app"](environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            if hasattr(answer, "close"):
                answer.close()

    server = make_server("127.0.0.1", 0, dispatch, threaded=True, request_handler=_Quiet)
    domain = f"127.0.0.1:{server.server_port}"
    app = make_app(link_domains=(domain, "go.example.com"))
    holder["app"] = app
    with app.extensions["linkgen"].db.session() as db:
        catalog.create_app_record(
            db,
            {
                "app_id": "id123456789",
                "name": "Shop",
                "team_id": "ABCDE12345",
                "bundle_id": "com.example.shop",
            },
        )
        catalog.create_app_record(db, {"app_id": "com.example.shop", "name": "Shop Android"})
        catalog.create_template_record(
            db,
            {
                "template_id": "Assn",
                "domain": domain,
                "ios_app_id": "id123456789",
                "android_app_id": "com.example.shop",
                "universal_links": True,
                "app_links": True,
            },
            app.extensions["linkgen"].settings.link_domains,
        )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"app": app, "domain": domain, "server": server}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _csrf(client: FlaskClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match is not None
    return match.group(1)


def test_the_template_page_shows_and_explains_its_association_files(
    served: dict[str, Any],
) -> None:
    ui = _ui_client(served["app"])
    html = ui.get("/templates/Assn").get_data(as_text=True)
    domain = served["domain"]
    assert f"http://{domain}/.well-known/apple-app-site-association" in html
    assert f"http://{domain}/.well-known/assetlinks.json" in html
    assert "ABCDE12345.com.example.shop" in html  # what the file lists
    assert "applinks:127.0.0.1" in html  # what the app's entitlement must say
    # The Android app has no certificate fingerprint: App Links cannot work yet.
    assert "no SHA-256 certificate fingerprint" in html


def test_the_check_fetches_the_files_from_the_link_domain(served: dict[str, Any]) -> None:
    ui = _ui_client(served["app"])
    resp = ui.post("/templates/Assn/check", data={"csrf_token": _csrf(ui, "/templates/Assn")})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html.count('class="check-ok"') == 2, html[html.find("assoc-checks") :][:600]
    served["server"].shutdown()  # the domain no longer answers: the check says so
    served["server"].server_close()
    html = ui.post(
        "/templates/Assn/check", data={"csrf_token": _csrf(ui, "/templates/Assn")}
    ).get_data(as_text=True)
    assert html.count('class="check-bad"') == 2 and "could not be fetched" in html
