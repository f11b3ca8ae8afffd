"""Single link creations that arrive together share a transaction (services/links.py,
`_GroupWriter`): each still gets its own outcome, and none answers before its row is committed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from linkgen.domain.errors import Conflict
from linkgen.domain.links import parse_link_request
from linkgen.services import link_templates, link_views
from linkgen.services import links as service
from linkgen.storage.epochs import read_epoch
from linkgen.storage.models import Link
from linkgen.storage.types import utcnow
from tests.conftest import Api


@pytest.fixture
def template(api: Api) -> dict[str, Any]:
    resp = api.post("/api/v1/templates", {"template_id": "GrpC", "domain": "go.example.com"})
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def _row(app: Flask, template_id: str, **body: Any) -> Any:
    db = app.extensions["linkgen"].db
    info = link_templates.TemplateLookup(
        db.engine, app.extensions["linkgen"].settings.scheme_for, db.template_rows
    ).get(template_id)
    assert info is not None
    spec = parse_link_request({"channel": "sms", **body}, info)
    return service._NewRow(spec, info, service.row_values(spec, info, utcnow(), "test"))


def _stored(app: Flask) -> set[str]:
    with app.extensions["linkgen"].db.session() as session:
        return set(session.scalars(select(Link.shortlink_id)))


def test_rows_written_together_each_get_their_own_outcome(
    app: Flask, api: Api, template: dict[str, Any]
) -> None:
    resp = api.post(
        "/api/v1/links", {"template_id": "GrpC", "channel": "sms", "shortlink_id": "taken"}
    )
    assert resp.status_code == 201
    db = app.extensions["linkgen"].db
    with db.session() as session:
        before = read_epoch(session)
    taken = _row(app, "GrpC", shortlink_id="taken")
    fresh = _row(app, "GrpC")
    first = _row(app, "GrpC", shortlink_id="twice")
    second = _row(app, "GrpC", shortlink_id="twice")
    batch = [taken, fresh, first, second]

    service._GroupWriter._write(db, batch)

    assert all(row.done for row in batch)
    assert isinstance(taken.error, Conflict) and taken.error.field == "shortlink_id"
    assert isinstance(second.error, Conflict) and second.error.field == "shortlink_id"
    assert fresh.error is None and first.error is None
    assert _stored(app) == {"taken", "twice", fresh.values["shortlink_id"]}
    with db.session() as session:
        assert read_epoch(session) == before + 1  # one bump for the whole batch
    answer = link_views.link_to_dict(service.as_link(fresh.values), fresh.info)
    assert api.get(f"/api/v1/links/{answer['id']}").get_json() == answer


def test_a_failed_transaction_fails_every_row_in_it(
    app: Flask, api: Api, template: dict[str, Any]
) -> None:
    good = _row(app, "GrpC")
    broken = _row(app, "GrpC")
    broken.values["channel"] = None  # NOT NULL: the insert statement fails
    with pytest.raises(Exception) as failed:
        service._GroupWriter._write(app.extensions["linkgen"].db, [good, broken])
    assert good.done and broken.done
    assert good.error is failed.value and broken.error is failed.value
    assert _stored(app) == set()


def test_concurrent_creations_all_commit_with_distinct_links(
    app: Flask, api_key: str, template: dict[str, Any]
) -> None:
    results: list[list[dict[str, Any]]] = [[] for _ in range(4)]
    gate = threading.Barrier(4)

    def client(n: int) -> None:
        caller = Api(app.test_client(), api_key)
        gate.wait()
        for i in range(15):
            resp = caller.post(
                "/api/v1/links", {"template_id": "GrpC", "channel": "sms", "campaign": f"c{n}_{i}"}
            )
            assert resp.status_code == 201, resp.get_json()
            results[n].append(resp.get_json())

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [link for per_thread in results for link in per_thread]
    assert len(made) == 60
    assert len({link["id"] for link in made}) == 60
    assert len({link["shortlink_id"] for link in made}) == 60
    assert {link["campaign"] for link in made} == {f"c{n}_{i}" for n in range(4) for i in range(15)}
    with app.extensions["linkgen"].db.session() as session:
        assert session.scalar(select(func.count(Link.id))) == 60
