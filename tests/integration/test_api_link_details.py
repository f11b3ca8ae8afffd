"""A link's title, tags and notes through the JSON API: create (one and bulk, JSON and CSV),
read, list by tag, PATCH, export and delete. SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from linkgen.domain.links import MAX_TAG_CHARS
from linkgen.storage.models import LinkTag
from tests.conftest import Api

CSV_HEADERS = {"Content-Type": "text/csv"}


@pytest.fixture
def template(api: Api) -> None:
    resp = api.post("/api/v1/templates", {"template_id": "AbCd", "domain": "go.example.com"})
    assert resp.status_code == 201, resp.get_json()


def create(api: Api, **body: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms", **body})
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def tag_rows(app: Flask) -> set[tuple[str, str]]:
    with app.extensions["linkgen"].db.session() as session:
        return {(r.link_id, r.tag) for r in session.scalars(select(LinkTag))}


def ids_tagged(api: Api, tag: str) -> list[str]:
    resp = api.get(f"/api/v1/links?tag={tag}")
    assert resp.status_code == 200, resp.get_json()
    return [item["id"] for item in resp.get_json()["items"]]


def test_details_are_stored_and_answered(app: Flask, api: Api, template: None) -> None:
    link = create(
        api,
        campaign="spring",
        title="  Spring SMS: shoes ",
        tags=["Spring", "shoes", "spring"],
        notes="Sent on Monday.\nSecond line.",
    )
    assert (link["title"], link["tags"], link["notes"]) == (
        "Spring SMS: shoes",
        ["spring", "shoes"],
        "Sent on Monday.\nSecond line.",
    )
    assert "Spring" not in link["long_url"] and "shoes" not in link["long_url"]
    assert api.get(f"/api/v1/links/{link['id']}").get_json() == link
    assert tag_rows(app) == {(link["id"], "spring"), (link["id"], "shoes")}


def test_a_link_without_details_answers_none(api: Api, template: None) -> None:
    link = create(api, campaign="plain")
    assert (link["title"], link["tags"], link["notes"]) == (None, [], None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t" * 121}, "title"),
        ({"title": "a\nb"}, "title"),
        ({"title": 5}, "title"),
        ({"tags": "spring"}, "tags"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags"),
        ({"tags": ["ok", "also-ok", "not ok"]}, "tags[2]"),
        ({"tags": ["ok", "t" * (MAX_TAG_CHARS + 1)]}, "tags[1]"),
        ({"tags": [None]}, "tags[0]"),
        ({"notes": "n" * 2001}, "notes"),
        ({"notes": {"a": 1}}, "notes"),
    ],
)
def test_bad_details_are_a_400_naming_the_field(
    app: Flask, api: Api, template: None, body: dict[str, Any], field: str
) -> None:
    resp = api.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms", **body})
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["field"] == field
    assert api.get("/api/v1/links").get_json()["items"] == []
    assert tag_rows(app) == set()


def test_the_list_filters_by_tag(api: Api, template: None) -> None:
    shoes = create(api, campaign="a", tags=["spring", "shoes"])
    bags = create(api, campaign="b", tags=["spring", "bags"])
    create(api, campaign="c")
    assert ids_tagged(api, "shoes") == [shoes["id"]]
    assert ids_tagged(api, "spring") == [bags["id"], shoes["id"]]
    assert ids_tagged(api, "SPRING") == [bags["id"], shoes["id"]]
    assert ids_tagged(api, "nothing") == []
    both = api.get("/api/v1/links?tag=spring&campaign=a").get_json()["items"]
    assert [item["id"] for item in both] == [shoes["id"]]
    # Pages of a tag's links follow one another like any list's.
    first = api.get("/api/v1/links?tag=spring&limit=1").get_json()
    assert [item["id"] for item in first["items"]] == [bags["id"]]
    rest = api.get(f"/api/v1/links?tag=spring&limit=1&cursor={first['next']}").get_json()
    assert [item["id"] for item in rest["items"]] == [shoes["id"]] and rest["next"] is None


def test_search_finds_a_title(api: Api, template: None) -> None:
    link = create(api, campaign="x", title="Black Friday banner")
    create(api, campaign="y")
    items = api.get("/api/v1/links?q=friday").get_json()["items"]
    assert [item["id"] for item in items] == [link["id"]]


def test_patch_changes_details_and_the_tag_index(app: Flask, api: Api, template: None) -> None:
    link = create(api, campaign="spring", title="Old", tags=["spring", "shoes"], notes="n")
    resp = api.patch(f"/api/v1/links/{link['id']}", {"tags": ["summer"], "notes": "changed"})
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert (out["title"], out["tags"], out["notes"]) == ("Old", ["summer"], "changed")
    assert out["short_url"] == link["short_url"]
    assert tag_rows(app) == {(link["id"], "summer")}
    assert ids_tagged(api, "spring") == [] and ids_tagged(api, "summer") == [link["id"]]
    # Other fields alone leave the details as they are; null clears them.
    again = api.patch(f"/api/v1/links/{link['id']}", {"campaign": "summer"}).get_json()
    assert (again["title"], again["tags"], again["notes"]) == ("Old", ["summer"], "changed")
    cleared = api.patch(
        f"/api/v1/links/{link['id']}", {"title": None, "tags": None, "notes": ""}
    ).get_json()
    assert (cleared["title"], cleared["tags"], cleared["notes"]) == (None, [], None)
    assert tag_rows(app) == set()
    refused = api.patch(f"/api/v1/links/{link['id']}", {"tags": ["ok", "no way"]})
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "tags[1]"


def test_deleting_a_link_deletes_its_tags(app: Flask, api: Api, template: None) -> None:
    gone = create(api, campaign="a", tags=["spring"])
    kept = create(api, campaign="b", tags=["spring"])
    assert api.delete(f"/api/v1/links/{gone['id']}").status_code == 204
    assert tag_rows(app) == {(kept["id"], "spring")}
    assert ids_tagged(api, "spring") == [kept["id"]]


def test_bulk_json_rows_carry_details(app: Flask, api: Api, template: None) -> None:
    rows = [
        {"template_id": "AbCd", "channel": "sms", "title": "One", "tags": ["bulk", "one"]},
        {"template_id": "AbCd", "channel": "sms", "tags": ["bulk", "bad tag"]},
        {"template_id": "AbCd", "channel": "sms", "notes": "third", "tags": ["bulk"]},
    ]
    resp = api.post("/api/v1/links/bulk", rows)
    assert resp.status_code == 207, resp.get_json()
    results = resp.get_json()["results"]
    assert results[1]["ok"] is False and results[1]["error"]["field"] == "tags[1]"
    one, three = results[0]["link"], results[2]["link"]
    assert (one["title"], one["tags"], one["notes"]) == ("One", ["bulk", "one"], None)
    assert (three["title"], three["tags"], three["notes"]) == (None, ["bulk"], "third")
    assert ids_tagged(api, "bulk") == [three["id"], one["id"]]
    assert tag_rows(app) == {(one["id"], "bulk"), (one["id"], "one"), (three["id"], "bulk")}


def test_csv_import_and_export_carry_details(api: Api, template: None) -> None:
    text = (
        "template_id,channel,campaign,title,tags,notes\n"
        'AbCd,sms,spring,"Spring, SMS",spring|Shoes,"two\nlines"\n'
        "AbCd,sms,spring,,,\n"
        "AbCd,sms,spring,Bad,spring|no good,\n"
    )
    resp = api.post("/api/v1/links/bulk", data=text.encode(), headers=CSV_HEADERS)
    assert resp.status_code == 207, resp.get_json()
    results = resp.get_json()["results"]
    described, plain = results[0]["link"], results[1]["link"]
    assert (described["title"], described["tags"], described["notes"]) == (
        "Spring, SMS",
        ["spring", "shoes"],
        "two\nlines",
    )
    assert (plain["title"], plain["tags"], plain["notes"]) == (None, [], None)
    assert results[2]["ok"] is False and results[2]["error"]["field"] == "tags[1]"

    exported = api.get("/api/v1/links.csv").data.decode()
    table = {row["id"]: row for row in csv.DictReader(io.StringIO(exported))}
    assert (
        table[described["id"]]["title"],
        table[described["id"]]["tags"],
        table[described["id"]]["notes"],
    ) == ("Spring, SMS", "spring|shoes", "two\nlines")
    assert (table[plain["id"]]["title"], table[plain["id"]]["tags"]) == ("", "")
    tagged = api.get("/api/v1/links.csv?tag=shoes").data.decode()
    assert [row["id"] for row in csv.DictReader(io.StringIO(tagged))] == [described["id"]]
    # The export imports again, details included.
    again = api.post(
        "/api/v1/links/bulk",
        data=exported.replace(described["shortlink_id"], "").encode(),
        headers=CSV_HEADERS,
    )
    assert again.status_code == 207  # the plain row's shortlink id is taken
    copies = [r["link"] for r in again.get_json()["results"] if r["ok"]]
    assert [(c["title"], c["tags"], c["notes"]) for c in copies] == [
        ("Spring, SMS", ["spring", "shoes"], "two\nlines")
    ]
