"""Bulk link creation (JSON and CSV), the CSV export and the import-links / export-qr commands."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from linkgen.domain.links import link_ref
from linkgen.storage.epochs import read_epoch
from tests.conftest import Api
from tests.qr_decode import decode

CSV_HEADERS = {"Content-Type": "text/csv"}


@pytest.fixture
def template(api: Api) -> None:
    resp = api.post(
        "/api/v1/templates",
        {"template_id": "AbCd", "domain": "go.example.com", "redirect_allowlist": ["example.com"]},
    )
    assert resp.status_code == 201, resp.get_json()


def all_links(api: Api, **filters: str) -> list[dict[str, Any]]:
    args = "&".join(f"{k}={v}" for k, v in filters.items())
    items: list[dict[str, Any]] = api.get(f"/api/v1/links?limit=500&{args}").get_json()["items"]
    return items


def errors(body: dict[str, Any]) -> dict[int, str | None]:
    return {r["row"]: r["error"]["field"] for r in body["results"] if not r["ok"]}


# --------------------------------------------------------------------------- JSON


def test_json_bulk_creates_good_rows_and_reports_bad_ones(
    app: Flask, api: Api, template: None
) -> None:
    rows: list[Any] = [
        {"template_id": "AbCd", "channel": "sms", "campaign": "spring"},
        {"template_id": "AbCd", "channel": "custom"},
        {"template_id": "AbCd", "channel": "email", "params": {"af_r": "https://evil.com/"}},
        {"template_id": "AbCd", "channel": "push", "shortlink_id": "Push1"},
        "not an object",
        {"template_id": "Nope", "channel": "email"},
        {"template_id": "AbCd", "channel": "qr", "shortlink_id": "Push1"},
    ]
    with app.extensions["linkgen"].db.session() as session:
        before = read_epoch(session)
    resp = api.post("/api/v1/links/bulk", rows)
    assert resp.status_code == 207
    body = resp.get_json()
    assert (body["created"], body["failed"]) == (2, 5)
    assert [r["row"] for r in body["results"]] == list(range(7))  # JSON rows: list index
    assert errors(body) == {
        1: "media_source",
        2: "params.af_r",
        4: None,
        5: "template_id",
        6: "shortlink_id",
    }
    assert body["results"][6]["error"]["code"] == "conflict"
    good = [r["link"] for r in body["results"] if r["ok"]]
    assert good[0]["media_source"] == "SMS" and good[0]["short_url"]
    assert good[1]["short_url"] == "https://go.example.com/AbCd/Push1"
    stored = {link["id"]: link for link in all_links(api)}
    assert set(stored) == {link["id"] for link in good}
    for link in good:
        assert stored[link["id"]] == link
    with app.extensions["linkgen"].db.session() as session:
        assert read_epoch(session) == before + 1


def test_json_bulk_accepts_an_object_with_links(api: Api, template: None) -> None:
    resp = api.post("/api/v1/links/bulk", {"links": [{"template_id": "AbCd", "channel": "sms"}]})
    assert resp.status_code == 200
    assert resp.get_json()["created"] == 1


def test_bulk_template_id_default(api: Api, template: None) -> None:
    resp = api.post("/api/v1/links/bulk?template_id=AbCd", [{"channel": "sms"}, {"channel": "qr"}])
    assert resp.status_code == 200 and resp.get_json()["created"] == 2


def test_bulk_refuses_given_ids_taken_in_the_database(api: Api, template: None) -> None:
    api.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms", "shortlink_id": "Taken"})
    resp = api.post(
        "/api/v1/links/bulk",
        [
            {"template_id": "AbCd", "channel": "sms", "shortlink_id": "Taken"},
            {"template_id": "AbCd", "channel": "sms", "shortlink_id": "Free"},
        ],
    )
    body = resp.get_json()
    assert errors(body) == {0: "shortlink_id"}
    assert body["results"][0]["error"]["code"] == "conflict"
    assert body["results"][1]["link"]["shortlink_id"] == "Free"


def test_bulk_generated_ids_avoid_taken_ones(
    api: Api, template: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkgen.services import link_bulk as service

    api.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms", "shortlink_id": "Aaaa1111"})
    ids = iter(["Aaaa1111", "Given123", "Bbbb2222", "Bbbb2222", "Cccc3333"])
    monkeypatch.setattr(service, "generate_shortlink_id", lambda: next(ids))
    resp = api.post(
        "/api/v1/links/bulk",
        [
            {"template_id": "AbCd", "channel": "sms"},
            {"template_id": "AbCd", "channel": "sms", "shortlink_id": "Given123"},
            {"template_id": "AbCd", "channel": "sms"},
        ],
    )
    body = resp.get_json()
    assert body["created"] == 3, body
    got = sorted(r["link"]["shortlink_id"] for r in body["results"])
    assert len(set(got)) == 3 and "Aaaa1111" not in got and "Given123" in got


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("[]", "body"),
        ('{"rows": []}', "body"),
        ('"x"', "body"),
        ("{nope", "body"),
        ("", "body"),
    ],
)
def test_bad_bulk_bodies_are_400(api: Api, template: None, data: str, field: str) -> None:
    resp = api.post("/api/v1/links/bulk", data=data, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == field


def test_bulk_is_limited_to_50000_rows(api: Api, template: None) -> None:
    resp = api.post("/api/v1/links/bulk", [{}] * 50_001)
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["field"] == "body" and "50000" in err["message"]
    assert all_links(api) == []


# --------------------------------------------------------------------------- CSV


def test_csv_bulk_reports_line_numbers(api: Api, template: None) -> None:
    text = (
        "template_id,channel,campaign,media_source,shortlink_id,ttl,params.af_sub1,params.af_r\n"
        "AbCd,sms,spring,,,,a,\n"
        "AbCd,custom,spring,,,,b,\n"  # line 3: media_source missing
        "\n"  # blank lines are skipped but still counted
        "AbCd,email,spring,,,,c,https://example.com/ok\n"
        "AbCd,email,spring,,,,d,http://example.com/\n"  # line 6: not https
        "AbCd,sms,spring,,bad-id,,e,\n"  # line 7
        "AbCd,sms,spring,,,400d,f,\n"  # line 8
        "AbCd,qr,spring,,Fixed1,,g,\n"
        "AbCd,qr,spring,,Fixed1,,h,\n"  # line 10: duplicate inside the file
    )
    resp = api.post("/api/v1/links/bulk", data=text.encode(), headers=CSV_HEADERS)
    assert resp.status_code == 207
    body = resp.get_json()
    assert (body["created"], body["failed"]) == (3, 5)
    assert errors(body) == {
        3: "media_source",
        6: "params.af_r",
        7: "shortlink_id",
        8: "ttl",
        10: "shortlink_id",
    }
    assert [r["row"] for r in body["results"] if r["ok"]] == [2, 5, 9]
    assert sorted(link["params"]["af_sub1"] for link in all_links(api)) == ["a", "c", "g"]


def test_csv_with_semicolons_and_bom(api: Api, template: None) -> None:
    text = "\ufefftemplate_id;channel;params.deep_link_value\r\nAbCd;sms;shoes\r\n"
    resp = api.post("/api/v1/links/bulk", data=text.encode(), headers=CSV_HEADERS)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["results"][0]["link"]["params"] == {"deep_link_value": "shoes"}


@pytest.mark.parametrize(
    "data",
    [
        b"template_id,colour\nAbCd,red\n",
        b"template_id,channel\nAbCd,sms,extra\n",
        b"",
        b"template_id,channel\n\xff\xfe,sms\n",
        b'template_id,channel\n"AbCd,sms\n',
    ],
)
def test_bad_csv_files_are_400(api: Api, template: None, data: bytes) -> None:
    resp = api.post("/api/v1/links/bulk", data=data, headers=CSV_HEADERS)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["field"] == "csv"
    assert all_links(api) == []


def test_csv_with_only_a_header_is_400(api: Api, template: None) -> None:
    resp = api.post("/api/v1/links/bulk", data=b"template_id,channel\n", headers=CSV_HEADERS)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "body"


# --------------------------------------------------------------------------- export


def long_url_params(link: dict[str, Any]) -> str:
    """The long URL without the `lg_link` pair that names this one link."""
    ref = f"&lg_link={link_ref(link['id'])}"
    assert ref in link["long_url"]
    return str(link["long_url"]).replace(ref, "")


def test_csv_export_round_trips(api: Api, template: None) -> None:
    rows = [
        {"template_id": "AbCd", "channel": "sms", "campaign": "spring", "shortlink_id": "Keep1"},
        {
            "template_id": "AbCd",
            "channel": "email",
            "campaign": "spring",
            "params": {"af_sub5": "{{Profile.objectId}}", "note": "=1+2", "x y": "a,b\nc"},
        },
        {"template_id": "AbCd", "channel": "push", "campaign": "winter", "ttl": "2h"},
    ]
    created = api.post("/api/v1/links/bulk", rows).get_json()
    assert created["created"] == 3
    resp = api.get("/api/v1/links.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    exported = resp.data.decode()
    table = list(csv.DictReader(io.StringIO(exported)))
    assert len(table) == 3
    assert table[0]["channel"] == "push"  # newest first, like the list
    assert "'=1+2" in exported  # spreadsheet formulas are neutralised
    # The re-created links are new links: their long URLs name them (lg_link), the rest is equal.
    before = {
        (link["channel"], long_url_params(link), link["shortlink_id"]) for link in all_links(api)
    }
    for link in all_links(api):
        assert api.delete(f"/api/v1/links/{link['id']}").status_code == 204

    again = api.post("/api/v1/links/bulk", data=exported.encode(), headers=CSV_HEADERS)
    assert again.status_code == 200, again.get_json()
    after = {
        (link["channel"], long_url_params(link), link["shortlink_id"]) for link in all_links(api)
    }
    assert after == before
    assert {link["ttl"] for link in all_links(api)} == {"31d"}  # ttl is not an export column

    only = list(
        csv.DictReader(io.StringIO(api.get("/api/v1/links.csv?campaign=winter").data.decode()))
    )
    assert [row["channel"] for row in only] == ["push"]


def test_csv_export_of_nothing_is_a_header(api: Api, template: None) -> None:
    resp = api.get("/api/v1/links.csv?campaign=none")
    assert resp.status_code == 200
    assert resp.data.decode().startswith("id,template_id,channel")
    assert len(resp.data.decode().strip().splitlines()) == 1


def test_csv_export_streams_many_links(api: Api, template: None) -> None:
    rows = [
        {"template_id": "AbCd", "channel": "sms", "params": {f"k{i % 3}": str(i)}}
        for i in range(2500)
    ]
    assert api.post("/api/v1/links/bulk", rows).get_json()["created"] == 2500
    table = list(csv.DictReader(io.StringIO(api.get("/api/v1/links.csv").data.decode())))
    assert len(table) == 2500
    assert {"params.k0", "params.k1", "params.k2"} <= set(table[0])
    assert len({row["id"] for row in table}) == 2500


# --------------------------------------------------------------------------- CLI


def test_cli_import_links(runner: Any, api: Api, template: None, tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    path.write_text(
        "template_id,channel,campaign,params.af_sub1\n"
        "AbCd,sms,spring,a\n"
        "AbCd,custom,spring,b\n"
        "AbCd,email,spring,c\n"
    )
    result = runner.invoke(args=["import-links", str(path)])
    assert result.exit_code == 1, result.output
    assert "line 3: media_source: media_source (pid) is mandatory" in result.output
    assert "created 2 link(s), 1 row(s) failed" in result.output
    assert len(all_links(api)) == 2

    good = tmp_path / "good.csv"
    good.write_text("channel,campaign\nsms,autumn\nqr,autumn\n")
    result = runner.invoke(args=["import-links", str(good), "--template", "AbCd"])
    assert result.exit_code == 0, result.output
    assert "created 2 link(s), 0 row(s) failed" in result.output
    assert len(all_links(api, campaign="autumn")) == 2
    links = all_links(api, campaign="autumn")
    assert all(link["created_by"] == "cli" for link in links)


def test_cli_import_links_refuses_a_bad_file(runner: Any, template: None, tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    path.write_text("template_id,colour\nAbCd,red\n")
    result = runner.invoke(args=["import-links", str(path)])
    assert result.exit_code == 1
    assert "unknown CSV column 'colour'" in result.output


def test_cli_export_qr_writes_decodable_pngs(
    runner: Any, api: Api, template: None, tmp_path: Path
) -> None:
    short = api.post(
        "/api/v1/links",
        {"template_id": "AbCd", "channel": "qr", "campaign": "poster", "shortlink_id": "Poster1"},
    ).get_json()
    long = api.post(
        "/api/v1/links", {"template_id": "AbCd", "channel": "email", "campaign": "poster"}
    ).get_json()
    api.post("/api/v1/links", {"template_id": "AbCd", "channel": "sms", "campaign": "other"})
    out = tmp_path / "qr"
    result = runner.invoke(
        args=["export-qr", "--campaign", "poster", "--out", str(out), "--ec", "H"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 2 QR code(s)" in result.output
    assert "warning" not in result.stderr  # the QR link never expires, the long URL neither
    assert sorted(p.name for p in out.iterdir()) == sorted(["Poster1.png", f"{long['id']}.png"])
    assert decode(Image.open(out / "Poster1.png")) == [short["short_url"] + "?af_qr=true"]
    assert decode(Image.open(out / f"{long['id']}.png")) == [long["long_url"] + "&af_qr=true"]

    svg_out = tmp_path / "svg"
    result = runner.invoke(args=["export-qr", "--format", "svg", "--out", str(svg_out)])
    assert result.exit_code == 0, result.output
    assert len(list(svg_out.glob("*.svg"))) == 3
    # The SMS link's short URL expires: printing its code is warned about.
    assert "warning: 1 of these links expire" in result.stderr

    result = runner.invoke(args=["export-qr", "--size", "5", "--out", str(tmp_path / "bad")])
    assert result.exit_code == 1 and "size must be" in result.output


def test_bulk_validates_and_answers_outside_the_write_lock(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite every click's commit needs the database's one write lock: while a bulk request
    validates its rows (most of its time) the lock must be free, and only the inserts hold it."""
    import sqlite3

    from linkgen.services import link_bulk as service
    from tests.integration.sqlite_only import make_sqlite_app
    from tests.integration.test_api_integration import _api_for

    app = make_sqlite_app(sqlite_template, tmp_path)
    try:
        api = _api_for(app)
        made = api.post("/api/v1/templates", {"template_id": "AbCd", "domain": "go.example.com"})
        assert made.status_code == 201, made.get_json()
        path = str(tmp_path / "linkgen.db")
        seen: list[bool] = []
        parse = service.parse_link_request

        def lock_is_free() -> bool:
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")  # what a click's commit takes first
                probe.execute("ROLLBACK")
                return True
            except sqlite3.OperationalError:  # database is locked
                return False
            finally:
                probe.close()

        def watched(*args: Any, **kwargs: Any) -> Any:
            seen.append(lock_is_free())
            return parse(*args, **kwargs)

        monkeypatch.setattr(service, "parse_link_request", watched)
        rows = [{"template_id": "AbCd", "channel": "sms", "campaign": f"c{i}"} for i in range(50)]
        resp = api.post("/api/v1/links/bulk", rows)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["created"] == 50
        assert seen == [True] * 50
        assert lock_is_free()
    finally:
        app.extensions["linkgen"].close()
