"""QR codes of links: PNG and SVG endpoints and the ZIP export decode to the exact URL."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Api
from tests.qr_decode import decode
from tests.unit.test_qr import draw_modules, svg_modules

PLACEHOLDER = "{{Profile.objectId}}"


@pytest.fixture
def template(api: Api) -> None:
    resp = api.post(
        "/api/v1/templates",
        {"template_id": "AbCd", "domain": "go.example.com", "redirect_allowlist": ["example.com"]},
    )
    assert resp.status_code == 201, resp.get_json()


def create(api: Api, **body: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/links", {"template_id": "AbCd", **body})
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def decode_png(data: bytes) -> list[str]:
    return decode(Image.open(io.BytesIO(data)))


def decode_svg(data: bytes) -> list[str]:
    _, matrix = svg_modules(data)
    return decode(draw_modules(matrix))


@pytest.mark.parametrize("ec", ["L", "M", "Q", "H"])
def test_png_and_svg_encode_the_short_url_with_af_qr(api: Api, template: None, ec: str) -> None:
    link = create(api, channel="qr", campaign="poster", params={"deep_link_value": "shoes"})
    expected = link["short_url"] + "?af_qr=true"
    png = api.get(f"{link['qr_png_url']}?ec={ec}&size=300&margin=2")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert Image.open(io.BytesIO(png.data)).size == (300, 300)
    assert decode_png(png.data) == [expected]
    svg = api.get(f"{link['qr_svg_url']}?ec={ec}")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert decode_svg(svg.data) == [expected]


def test_defaults_are_600_pixels(api: Api, template: None) -> None:
    link = create(api, channel="qr")
    png = api.get(link["qr_png_url"])
    assert Image.open(io.BytesIO(png.data)).size == (600, 600)
    assert b'width="600"' in api.get(link["qr_svg_url"]).data


def test_long_link_qr_encodes_the_long_url(api: Api, template: None) -> None:
    link = create(api, channel="email", campaign="spring sale")
    assert link["short_url"] is None
    assert decode_png(api.get(link["qr_png_url"]).data) == [link["long_url"] + "&af_qr=true"]


def test_placeholder_link_keeps_the_placeholder_last(api: Api, template: None) -> None:
    link = create(api, channel="qr", params={"af_sub5": PLACEHOLDER})
    expected = (
        f"https://go.example.com/AbCd/{link['shortlink_id']}?af_qr=true&af_sub5={PLACEHOLDER}"
    )
    assert decode_png(api.get(link["qr_png_url"]).data) == [expected]


def test_qr_follows_an_edit_of_a_long_link(api: Api, template: None) -> None:
    link = create(api, channel="email", campaign="a")
    first = api.get(link["qr_png_url"])
    api.patch(f"/api/v1/links/{link['id']}", {"campaign": "b"})
    second = api.get(link["qr_png_url"], headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert decode_png(second.data) == [link["long_url"].replace("c=a", "c=b") + "&af_qr=true"]


def test_caching_headers(api: Api, template: None) -> None:
    link = create(api, channel="qr")
    resp = api.get(link["qr_png_url"])
    assert resp.headers["Cache-Control"] == "private, max-age=60"
    etag = resp.headers["ETag"]
    again = api.get(link["qr_png_url"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    other = api.get(link["qr_png_url"] + "?size=200", headers={"If-None-Match": etag})
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ("size=10", "size"),
        ("size=5000", "size"),
        ("size=abc", "size"),
        ("size=-1", "size"),
        ("margin=41", "margin"),
        ("margin=x", "margin"),
        ("ec=Z", "ec"),
        ("ec=MM", "ec"),
    ],
)
def test_bad_qr_options_are_400(api: Api, template: None, args: str, field: str) -> None:
    link = create(api, channel="qr")
    for url in (link["qr_png_url"], link["qr_svg_url"]):
        resp = api.get(f"{url}?{args}")
        assert resp.status_code == 400
        assert resp.get_json()["error"]["field"] == field


def test_unknown_link_or_format(api: Api, template: None) -> None:
    assert api.get("/api/v1/links/nope/qr.png").status_code == 404
    link = create(api, channel="qr")
    resp = api.get(f"/api/v1/links/{link['id']}/qr.gif")
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "format"


# --------------------------------------------------------------------------- ZIP


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_zip_by_ids(api: Api, template: None) -> None:
    a = create(api, channel="qr", shortlink_id="PosterA")
    b = create(api, channel="email", campaign="x")
    resp = api.post("/api/v1/links/qr.zip", {"ids": [a["id"], b["id"]], "size": 200, "ec": "Q"})
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert "attachment" in resp.headers["Content-Disposition"]
    files = read_zip(resp.data)
    assert sorted(files) == sorted(["PosterA.png", f"{b['id']}.png"])
    assert decode_png(files["PosterA.png"]) == [a["short_url"] + "?af_qr=true"]
    assert Image.open(io.BytesIO(files["PosterA.png"])).size == (200, 200)
    assert decode_png(files[f"{b['id']}.png"]) == [b["long_url"] + "&af_qr=true"]


def test_zip_by_campaign_as_svg(api: Api, template: None) -> None:
    links = [create(api, channel="qr", campaign="poster") for _ in range(3)]
    create(api, channel="qr", campaign="other")
    resp = api.post("/api/v1/links/qr.zip", {"campaign": "poster", "format": "svg"})
    assert resp.status_code == 200
    files = read_zip(resp.data)
    assert sorted(files) == sorted(f"{link['shortlink_id']}.svg" for link in links)
    for link in links:
        assert decode_svg(files[f"{link['shortlink_id']}.svg"]) == [
            link["short_url"] + "?af_qr=true"
        ]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"ids": ["KNOWN", "KNOWN", "missing"]}, 400, "ids[2]"),
        ({"ids": ["KNOWN", 5]}, 400, "ids[1]"),
        ({"ids": []}, 400, "ids"),
        ({"ids": "KNOWN"}, 400, "ids"),
        ({}, 400, "ids"),
        ({"campaign": "none"}, 404, "campaign"),
        ({"campaign": ""}, 400, "campaign"),
        ({"campaign": "poster", "ids": ["KNOWN"]}, 400, "campaign"),
        ({"ids": ["KNOWN"], "format": "gif"}, 400, "format"),
        ({"ids": ["KNOWN"], "size": 10}, 400, "size"),
        ({"ids": ["KNOWN"], "size": [1]}, 400, "size"),
        ({"ids": ["KNOWN"], "margin": "x"}, 400, "margin"),
        ({"ids": ["KNOWN"], "ec": "X"}, 400, "ec"),
        ({"ids": ["KNOWN"], "colour": "red"}, 400, "colour"),
    ],
)
def test_bad_zip_requests(
    api: Api, template: None, body: dict[str, Any], status: int, field: str
) -> None:
    link = create(api, channel="qr", campaign="poster")
    if "ids" in body and isinstance(body["ids"], list):
        body = {**body, "ids": [link["id"] if i == "KNOWN" else i for i in body["ids"]]}
    resp = api.post("/api/v1/links/qr.zip", body)
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["error"]["field"] == field
