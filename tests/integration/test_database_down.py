"""With the database unreachable, API calls answer 503 (retry), never 500."""

from __future__ import annotations

from dataclasses import replace

from linkgen.config import Settings
from linkgen.factory import create_app


def test_api_answers_503_when_the_database_is_unreachable(settings: Settings) -> None:
    down = replace(settings, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(down)
    client = app.test_client()
    resp = client.get("/api/v1/apps", headers={"Authorization": "Bearer whatever-key-123"})
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "database_unavailable"
    assert resp.headers["Retry-After"] == "1"
    app.extensions["linkgen"].close()


def test_a_click_answers_503_not_500_when_its_link_cannot_be_looked_up(
    settings: Settings,
) -> None:
    down = replace(settings, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(down)
    client = app.test_client()
    # Nothing is cached, so the template must be read from the (unreachable) database.
    resp = client.get("/AbCd/abc123?pid=Email", base_url="http://go.example.com")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert "Location" not in resp.headers
    app.extensions["linkgen"].close()
