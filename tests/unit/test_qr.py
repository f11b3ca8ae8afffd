"""QR codes: every EC level, PNG and SVG, decode back to the exact URL.

No SVG rasteriser is installed (no cairosvg, rsvg or ImageMagick), so the SVG is checked by
parsing the path it holds back into a module matrix, comparing that with the matrix `qrcode`
computes on its own, and drawing the parsed modules with Pillow for pyzbar to decode.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile

import pytest
import qrcode
import qrcode.constants
from PIL import Image, ImageDraw

from linkgen.domain.errors import InvalidParameter
from linkgen.services.qr import (
    QrOptions,
    parse_qr_options,
    qr_matrix,
    qr_zip,
    render_png,
    render_svg,
)
from tests.qr_decode import decode

SVG_NS = "{http://www.w3.org/2000/svg}"
URLS = [
    "https://go.example.com/AbCd/x7Gk2pQa?af_qr=true",
    "https://go.example.com/AbCd/x7Gk2pQa?af_qr=true&af_sub5={{Profile.objectId}}",
    "https://go.example.com/AbCd?pid=QR&c=spring%20sale&af_channel=qr&af_qr=true"
    "&deep_link_value=shoes&af_sub1={{ Profile.Name | default:'there' }}",
]
EC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}


def reference_matrix(data: str, ec: str, margin: int) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=EC[ec], border=margin)
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def svg_modules(svg: bytes) -> tuple[int, list[list[bool]]]:
    """The module matrix drawn by our SVG (viewBox units are modules)."""
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    _, _, width, height = (int(v) for v in root.attrib["viewBox"].split())
    assert width == height
    matrix = [[False] * width for _ in range(height)]
    path = root.find(f"{SVG_NS}path")
    assert path is not None
    for x, y, run in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", path.attrib["d"]):
        for dx in range(int(run)):
            assert not matrix[int(y)][int(x) + dx]
            matrix[int(y)][int(x) + dx] = True
    # Every command in the path is one of those rectangles.
    assert re.fullmatch(r"(M\d+ \d+h(\d+)v1h-\2z)*", path.attrib["d"])
    return int(root.attrib["width"]), matrix


def draw_modules(matrix: list[list[bool]], scale: int = 8) -> Image.Image:
    n = len(matrix)
    image = Image.new("L", (n * scale, n * scale), 255)
    pen = ImageDraw.Draw(image)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                pen.rectangle(
                    (x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1), fill=0
                )
    return image


@pytest.mark.parametrize("ec", ["L", "M", "Q", "H"])
@pytest.mark.parametrize("url", URLS)
def test_png_decodes_to_the_exact_url(ec: str, url: str) -> None:
    png = render_png(url, QrOptions(size=600, margin=4, ec=ec))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (600, 600)
    assert decode(image) == [url]


@pytest.mark.parametrize("ec", ["L", "M", "Q", "H"])
@pytest.mark.parametrize("url", URLS)
def test_svg_draws_qrcodes_matrix_and_decodes(ec: str, url: str) -> None:
    svg = render_svg(url, QrOptions(size=500, margin=4, ec=ec))
    width, matrix = svg_modules(svg)
    assert width == 500
    assert matrix == reference_matrix(url, ec, 4)
    assert decode(draw_modules(matrix)) == [url]


def test_png_modules_are_crisp_and_centred() -> None:
    url = URLS[0]
    matrix = qr_matrix(url, "M", 4)
    n = len(matrix)
    image = Image.open(io.BytesIO(render_png(url, QrOptions(size=601, margin=4)))).convert("L")
    assert image.size == (601, 601)
    scale = 601 // n
    offset = (601 - n * scale) // 2
    pixels = image.load()
    assert pixels is not None
    for y in range(n):
        for x in range(n):
            # Every pixel of a module has the module's colour.
            colours = {
                pixels[offset + x * scale + dx, offset + y * scale + dy]
                for dx in (0, scale - 1)
                for dy in (0, scale - 1)
            }
            assert colours == {0 if matrix[y][x] else 255}


@pytest.mark.parametrize("size", [64, 100, 333, 1000])
def test_png_is_exactly_the_size_asked(size: int) -> None:
    image = Image.open(io.BytesIO(render_png(URLS[1], QrOptions(size=size))))
    assert image.size == (size, size)


def test_png_too_small_for_the_modules_uses_one_pixel_per_module() -> None:
    url = "https://go.example.com/AbCd?" + "&".join(f"k{i}=v{i}" for i in range(40))
    n = len(qr_matrix(url, "H", 4))
    assert n > 64
    image = Image.open(io.BytesIO(render_png(url, QrOptions(size=64, ec="H"))))
    assert image.size == (n, n)


def test_margin_changes_the_quiet_zone() -> None:
    assert len(qr_matrix(URLS[0], "M", 10)) == len(qr_matrix(URLS[0], "M", 0)) + 20
    image = Image.open(io.BytesIO(render_png(URLS[0], QrOptions(size=400, margin=10))))
    assert decode(image) == [URLS[0]]


def test_too_long_for_the_ec_level() -> None:
    url = "https://go.example.com/AbCd?x=" + "y" * 1970
    render_png(url, QrOptions(ec="L", size=200))
    with pytest.raises(InvalidParameter) as info:
        render_png(url, QrOptions(ec="H", size=200))
    assert info.value.field == "ec"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, QrOptions(600, 4, "M")),
        ({"size": "64", "margin": "0", "ec": "l"}, QrOptions(64, 0, "L")),
        ({"size": "4000", "margin": "40", "ec": "H"}, QrOptions(4000, 40, "H")),
        ({"size": "", "other": "x"}, QrOptions()),
    ],
)
def test_parse_qr_options(args: dict[str, str], expected: QrOptions) -> None:
    assert parse_qr_options(args) == expected


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"size": "63"}, "size"),
        ({"size": "4001"}, "size"),
        ({"size": "abc"}, "size"),
        ({"size": "-100"}, "size"),
        ({"size": "1e3"}, "size"),
        ({"size": "9" * 50}, "size"),
        ({"margin": "41"}, "margin"),
        ({"margin": "-1"}, "margin"),
        ({"ec": "X"}, "ec"),
        ({"ec": "MM"}, "ec"),
    ],
)
def test_parse_qr_options_refuses(args: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_qr_options(args)
    assert info.value.field == field


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_zip_holds_one_decodable_file_per_link(fmt: str) -> None:
    items = [("spring/a", URLS[0]), ("../../evil", URLS[1]), ("spring/a", URLS[2])]
    data = qr_zip(items, fmt, QrOptions(size=300))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert names == [f"a.{fmt}", f"evil.{fmt}", f"a-2.{fmt}"]
        for name, (_, url) in zip(names, items, strict=True):
            body = archive.read(name)
            if fmt == "png":
                assert decode(Image.open(io.BytesIO(body))) == [url]
            else:
                _, matrix = svg_modules(body)
                assert decode(draw_modules(matrix)) == [url]


def test_zip_refuses_unknown_format() -> None:
    with pytest.raises(InvalidParameter) as info:
        qr_zip([], "gif", QrOptions())
    assert info.value.field == "format"
