"""The template rows each database keeps for link writes (linkgen/storage/template_rows.py): an
edit made in this process is seen by the next link creation, an uncommitted one only by its own
transaction, and two databases (two engines) share no rows. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from linkgen.config import Settings
from linkgen.services.link_templates import TemplateLookup
from linkgen.storage.db import Database
from linkgen.storage.models import Template
from linkgen.storage.template_rows import TemplateRows
from tests.conftest import Api

SPRING = {"af_r": "https://example.org/spring"}


@pytest.fixture
def template(api: Api) -> None:
    resp = api.post(
        "/api/v1/templates",
        {"template_id": "AbCd", "domain": "go.example.com", "redirect_allowlist": ["example.com"]},
    )
    assert resp.status_code == 201, resp.get_json()


@pytest.fixture
def other_db(settings: Settings) -> Iterator[Database]:
    """A second Database on the same data: another engine, as another process would have."""
    database = Database(settings.database_url)
    yield database
    database.dispose()


def _create(api: Api, **params: str) -> Any:
    return api.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms", "params": params})


def _allowlist(db: Database, scheme_for: Any) -> tuple[str, ...]:
    info = TemplateLookup(db.engine, scheme_for, db.template_rows).get("AbCd")
    assert info is not None
    return info.redirect_allowlist


def test_an_api_edit_is_seen_by_the_next_link_creation(
    app: Flask, api: Api, template: None
) -> None:
    db = app.extensions["linkgen"].db
    assert _create(api, **SPRING).status_code == 400  # example.org is off the list
    assert len(db.template_rows) == 1  # the row is kept...
    resp = api.patch("/api/v1/templates/AbCd", {"redirect_allowlist": ["example.org"]})
    assert resp.status_code == 200, resp.get_json()
    assert len(db.template_rows) == 0  # ...until the edit commits
    assert _create(api, **SPRING).status_code == 201


def test_an_orm_edit_is_seen_by_the_next_lookup(app: Flask, api: Api, template: None) -> None:
    rt = app.extensions["linkgen"]
    db: Database = rt.db
    assert _allowlist(db, rt.settings.scheme_for) == ("example.com",)
    with db.session() as session:
        row = session.scalars(select(Template).where(Template.template_id == "AbCd")).one()
        row.redirect_allowlist = ["example.org"]
    assert _allowlist(db, rt.settings.scheme_for) == ("example.org",)
    assert _create(api, **SPRING).status_code == 201


def test_an_uncommitted_edit_is_seen_only_by_its_own_transaction(
    app: Flask, template: None
) -> None:
    rt = app.extensions["linkgen"]
    db: Database = rt.db
    scheme_for = rt.settings.scheme_for
    assert _allowlist(db, scheme_for) == ("example.com",)
    with pytest.raises(RuntimeError), db.session() as session:
        row = session.scalars(select(Template).where(Template.template_id == "AbCd")).one()
        row.redirect_allowlist = ["example.org"]
        session.flush()
        assert TemplateRows.edited(session)
        info = TemplateLookup(session, scheme_for).get("AbCd")
        assert info is not None and info.redirect_allowlist == ("example.org",)
        assert len(db.template_rows) == 1  # others still get the committed row
        raise RuntimeError("roll back")
    assert _allowlist(db, scheme_for) == ("example.com",)
    with db.session() as session:
        assert not TemplateRows.edited(session)
        assert TemplateRows.of(session) is db.template_rows


def test_two_databases_share_no_rows(app: Flask, template: None, other_db: Database) -> None:
    rt = app.extensions["linkgen"]
    db: Database = rt.db
    scheme_for = rt.settings.scheme_for
    assert db.template_rows is not other_db.template_rows
    db.template_rows.ttl = 3600.0  # no expiry within the test, however slow the machine
    assert _allowlist(db, scheme_for) == ("example.com",)
    assert len(db.template_rows) == 1 and len(other_db.template_rows) == 0
    assert _allowlist(other_db, scheme_for) == ("example.com",)

    # An edit through the other database empties its rows, not these: here it is seen once
    # the kept row expires (TEMPLATE_CACHE_SECONDS), as an edit by another process would be.
    with other_db.session() as session:
        row = session.scalars(select(Template).where(Template.template_id == "AbCd")).one()
        row.redirect_allowlist = ["example.org"]
    assert _allowlist(other_db, scheme_for) == ("example.org",)
    assert _allowlist(db, scheme_for) == ("example.com",)
    db.template_rows.clear()
    assert _allowlist(db, scheme_for) == ("example.org",)


def test_a_core_edit_waits_for_the_row_to_expire(app: Flask, template: None) -> None:
    rt = app.extensions["linkgen"]
    db: Database = rt.db
    db.template_rows.ttl = 3600.0  # no expiry within the test, however slow the machine
    assert _allowlist(db, rt.settings.scheme_for) == ("example.com",)
    with db.engine.begin() as conn:  # past the ORM: nothing tells the rows
        conn.execute(
            update(Template).where(Template.template_id == "AbCd").values(redirect_allowlist=[])
        )
    assert _allowlist(db, rt.settings.scheme_for) == ("example.com",)
