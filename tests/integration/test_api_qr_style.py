"""QR colours through the API: `fg` / `bg` on the PNG and SVG endpoints and in the ZIP body."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Api
from tests.integration.test_api_qr import create, decode_png, read_zip
from tests.integration.test_api_qr import template as template
from tests.qr_decode import decode
from tests.unit.test_qr_style import rasterise_svg


def test_coloured_png_and_svg_decode(api: Api, template: None) -> None:
    link = create(api, channel="qr", campaign="poster")
    expected = link["short_url"] + "?af_qr=true"
    png = api.get(f"{link['qr_png_url']}?fg=%231f3a93&bg=fff3c4&size=300&ec=Q")
    assert png.status_code == 200
    image = Image.open(io.BytesIO(png.data))
    assert image.convert("RGB").getpixel((0, 0)) == (255, 243, 196)
    assert decode_png(png.data) == [expected]
    svg = api.get(f"{link['qr_svg_url']}?fg=7a0026&bg=%23FFF3C4")
    assert b'fill="#7a0026"' in svg.data and b'fill="#fff3c4"' in svg.data
    assert decode(rasterise_svg(svg.data)) == [expected]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ("fg=red", "fg"),
        ("bg=%23ffff", "bg"),
        ("fg=%23ff8000", "fg"),  # 2.5:1 on white
        ("fg=ffffff&bg=000000", "fg"),  # inverted
    ],
)
def test_bad_colours_are_400_naming_the_field(
    api: Api, template: None, args: str, field: str
) -> None:
    link = create(api, channel="qr")
    for url in (link["qr_png_url"], link["qr_svg_url"]):
        resp = api.get(f"{url}?{args}")
        assert resp.status_code == 400
        assert resp.get_json()["error"]["field"] == field


def test_zip_in_colour(api: Api, template: None) -> None:
    links = [create(api, channel="qr", campaign="poster") for _ in range(2)]
    resp = api.post(
        "/api/v1/links/qr.zip",
        {"campaign": "poster", "fg": "#0b5d1e", "bg": "#e8f5e9", "size": 300},
    )
    assert resp.status_code == 200
    files = read_zip(resp.data)
    for link in links:
        body = files[f"{link['shortlink_id']}.png"]
        assert Image.open(io.BytesIO(body)).convert("RGB").getpixel((0, 0)) == (232, 245, 233)
        assert decode_png(body) == [link["short_url"] + "?af_qr=true"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fg": 123}, "fg"),
        ({"bg": ["#ffffff"]}, "bg"),
        ({"fg": "#eeeeee"}, "fg"),
    ],
)
def test_bad_zip_colours(api: Api, template: None, body: dict[str, Any], field: str) -> None:
    create(api, channel="qr", campaign="poster")
    resp = api.post("/api/v1/links/qr.zip", {"campaign": "poster", **body})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == field
