"""Styled QR codes: colours, margins, every EC level and a logo at the largest allowed size
decode back to the exact URL, as PNG and as SVG; bad styles are refused naming the field.

The SVG is rasterised by drawing what it holds (its module path in its colours, the pad and the
embedded logo at the position and size the SVG gives them) with Pillow; the browser test
(tests/e2e/test_qr_flows.py) also has Chromium render a downloaded SVG and decodes that.
"""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
import zipfile

import pytest
from PIL import Image, ImageDraw

from linkgen.domain.errors import InvalidParameter
from linkgen.services.qr import (
    LOGO_BUDGET,
    LOGO_STORED_SIDE,
    MAX_LOGO_BYTES,
    Logo,
    QrOptions,
    contrast_ratio,
    load_logo,
    logo_box,
    parse_qr_options,
    qr_matrix,
    qr_zip,
    render_png,
    render_svg,
)
from tests.qr_decode import decode
from tests.unit.test_qr import URLS

SVG_NS = "{http://www.w3.org/2000/svg}"
LONG_URL = "https://go.example.com/AbCd?" + "&".join(f"k{i}=v{i}" for i in range(30))
STYLE_URLS = [*URLS, LONG_URL]
COLOURS = [
    ("#000000", "#ffffff"),
    ("#1f3a93", "#ffffff"),
    ("#7a0026", "#fff3c4"),
    ("#0b5d1e", "#e8f5e9"),
]


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def badge_logo(side: int = 240) -> bytes:
    """A square brand badge: a rounded blue tile with two white bars (like initials)."""
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((0, 0, side - 1, side - 1), radius=side // 6, fill=(31, 58, 147, 255))
    pen.rectangle((side // 4, side // 4, side // 4 + side // 8, 3 * side // 4), fill="white")
    pen.rectangle((side // 4, 5 * side // 8, 3 * side // 4, 3 * side // 4), fill="white")
    return png_bytes(image)


def wordmark_logo() -> bytes:
    """A wide wordmark on a transparent background: dark letter-like bars."""
    image = Image.new("RGBA", (400, 120), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    for i in range(6):
        pen.rectangle((20 + i * 62, 20, 60 + i * 62, 100), fill=(40, 40, 40, 255))
    return png_bytes(image)


def photo_logo() -> bytes:
    """A JPEG (no transparency), like a photo of a product."""
    image = Image.new("RGB", (300, 200))
    pen = ImageDraw.Draw(image)
    for x in range(300):
        pen.line((x, 0, x, 199), fill=(200, 80 + x // 3, 40))
    return png_bytes(image, "JPEG")


LOGOS = {"badge": badge_logo, "wordmark": wordmark_logo, "photo": photo_logo}


def rasterise_svg(svg: bytes, scale: int = 8) -> Image.Image:
    """Draw our SVG: the background rect, the module path, the logo pad and the logo image."""
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    _, _, n, _ = (int(v) for v in root.attrib["viewBox"].split())
    image = Image.new("RGB", (n * scale, n * scale))
    pen = ImageDraw.Draw(image)
    for node in root:
        if node.tag == f"{SVG_NS}rect":
            x0 = float(node.attrib.get("x", 0)) * scale
            y0 = float(node.attrib.get("y", 0)) * scale
            side = float(node.attrib["width"]) * scale
            pen.rectangle((x0, y0, x0 + side - 1, y0 + side - 1), fill=node.attrib["fill"])
        elif node.tag == f"{SVG_NS}path":
            d = node.attrib["d"]
            assert re.fullmatch(r"(M\d+ \d+h(\d+)v1h-\2z)*", d)
            for x, y, run in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", d):
                x0, y0 = int(x) * scale, int(y) * scale
                box = (x0, y0, x0 + int(run) * scale - 1, y0 + scale - 1)
                pen.rectangle(box, fill=node.attrib["fill"])
        else:
            assert node.tag == f"{SVG_NS}image", node.tag
            href = node.attrib["href"]
            assert href.startswith("data:image/png;base64,")
            logo = Image.open(io.BytesIO(base64.b64decode(href.split(",", 1)[1])))
            size = (
                round(float(node.attrib["width"]) * scale),
                round(float(node.attrib["height"]) * scale),
            )
            at = (round(float(node.attrib["x"]) * scale), round(float(node.attrib["y"]) * scale))
            logo = logo.convert("RGBA").resize(size)
            image.paste(logo, at, logo)
    return image


def with_quiet_zone(image: Image.Image, colour: str) -> Image.Image:
    """A margin-0 code on a page: the page around it is its quiet zone."""
    page = Image.new("RGB", (image.width + 80, image.height + 80), colour)
    page.paste(image.convert("RGB"), (40, 40))
    return page


# --------------------------------------------------------------------------- colours, margins


@pytest.mark.parametrize("ec", ["L", "M", "Q", "H"])
@pytest.mark.parametrize(("fg", "bg"), COLOURS)
def test_coloured_codes_decode_as_png_and_svg(ec: str, fg: str, bg: str) -> None:
    for url in STYLE_URLS:
        opts = QrOptions(size=600, margin=4, ec=ec, fg=fg, bg=bg)
        image = Image.open(io.BytesIO(render_png(url, opts)))
        assert image.size == (600, 600)
        rgb = image.convert("RGB")
        assert rgb.getpixel((0, 0)) == tuple(int(bg[i : i + 2], 16) for i in (1, 3, 5))
        assert decode(image) == [url]
        svg = render_svg(url, opts)
        assert f'fill="{fg}"'.encode() in svg and f'fill="{bg}"'.encode() in svg
        assert decode(rasterise_svg(svg)) == [url]


def test_plain_png_stays_a_two_colour_palette() -> None:
    image = Image.open(io.BytesIO(render_png(URLS[0], QrOptions(fg="#1f3a93", bg="#fff3c4"))))
    assert image.mode == "P"
    assert sorted(c for _, c in image.convert("RGB").getcolors() or []) == [
        (31, 58, 147),
        (255, 243, 196),
    ]


@pytest.mark.parametrize("margin", [0, 1, 2, 4, 10])
def test_margins_with_colours_decode(margin: int) -> None:
    opts = QrOptions(size=500, margin=margin, ec="M", fg="#7a0026", bg="#fff3c4")
    png = Image.open(io.BytesIO(render_png(URLS[2], opts)))
    assert decode(with_quiet_zone(png, "#fff3c4")) == [URLS[2]]
    svg = rasterise_svg(render_svg(URLS[2], opts))
    assert decode(with_quiet_zone(svg, "#fff3c4")) == [URLS[2]]


def test_zbar_reads_no_inverted_code_which_is_why_it_is_refused() -> None:
    matrix = qr_matrix(URLS[0], "M", 4)
    n = len(matrix)
    raw = bytes(255 if dark else 0 for row in matrix for dark in row)
    inverted = Image.frombytes("L", (n, n), raw).resize((n * 8, n * 8), Image.Resampling.NEAREST)
    assert decode(inverted) == []
    with pytest.raises(InvalidParameter) as info:
        parse_qr_options({"fg": "#ffffff", "bg": "#000000"})
    assert info.value.field == "fg"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"fg": "#1F3A93", "bg": "fff3c4"}, ("#1f3a93", "#fff3c4")),
        ({"fg": "", "bg": ""}, ("#000000", "#ffffff")),
        ({"fg": " #ff0000 "}, ("#ff0000", "#ffffff")),  # 4.0:1
    ],
)
def test_colours_are_parsed(args: dict[str, str], expected: tuple[str, str]) -> None:
    opts = parse_qr_options(args)
    assert (opts.fg, opts.bg) == expected


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ({"fg": "red"}, "fg", "#rrggbb"),
        ({"fg": "#12345"}, "fg", "#rrggbb"),
        ({"bg": "#gggggg"}, "bg", "#rrggbb"),
        ({"bg": "#ffffff00"}, "bg", "#rrggbb"),
        ({"fg": "#ff8000"}, "fg", "contrast"),  # orange on white: 2.5:1
        ({"fg": "#777777", "bg": "#cccccc"}, "fg", "contrast"),
        ({"fg": "#000000", "bg": "#000000"}, "fg", "darker"),
        ({"fg": "#ffff00", "bg": "#000080"}, "fg", "darker"),
    ],
)
def test_bad_colours_are_refused(args: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_qr_options(args)
    assert info.value.field == field
    assert words in info.value.message


def test_contrast_ratio_is_wcags() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#ff0000", "#ffffff") == pytest.approx(4.0, abs=0.01)


# --------------------------------------------------------------------------- logo


@pytest.mark.parametrize("ec", ["Q", "H"])
@pytest.mark.parametrize("logo_name", sorted(LOGOS))
@pytest.mark.parametrize("margin", [0, 2, 4])
def test_logo_at_the_largest_allowed_size_decodes(ec: str, logo_name: str, margin: int) -> None:
    logo = load_logo(LOGOS[logo_name]())
    for url in STYLE_URLS:
        for size, (fg, bg) in [(300, COLOURS[0]), (600, COLOURS[1]), (800, COLOURS[2])]:
            opts = QrOptions(size=size, margin=margin, ec=ec, fg=fg, bg=bg, logo=logo)
            png = Image.open(io.BytesIO(render_png(url, opts)))
            assert decode(with_quiet_zone(png, bg)) == [url], (url, size)
            svg = rasterise_svg(render_svg(url, opts))
            assert decode(with_quiet_zone(svg, bg)) == [url], (url, size)


@pytest.mark.parametrize("ec", ["Q", "H"])
@pytest.mark.parametrize("url", STYLE_URLS)
def test_logo_box_stays_within_the_budget_and_off_the_finders(ec: str, url: str) -> None:
    for margin in (0, 4):
        n = len(qr_matrix(url, ec, margin))
        start, side = logo_box(n, margin, ec)
        width = n - 2 * margin
        assert side * side <= LOGO_BUDGET[ec] * width * width
        assert start - margin >= 9  # finder, separator and format information are untouched
        assert start + side <= n - margin - 9
        assert (start - margin) * 2 + side == width  # centred on whole modules


def test_logo_covers_its_box_with_the_background_pad() -> None:
    logo = load_logo(badge_logo())
    opts = QrOptions(size=610, margin=4, ec="H", bg="#fff3c4", logo=logo)
    image = Image.open(io.BytesIO(render_png(URLS[0], opts))).convert("RGB")
    n = len(qr_matrix(URLS[0], "H", 4))
    scale, (start, side) = 610 // n, logo_box(n, 4, "H")
    offset = (610 - n * scale) // 2
    corner = offset + start * scale
    # The pad (one module) is background; the middle is the logo's blue.
    assert image.getpixel((corner + 1, corner + 1)) == (255, 243, 196)
    assert image.getpixel((corner + side * scale - 2, corner + 1)) == (255, 243, 196)
    middle = corner + side * scale // 2
    assert image.getpixel((middle + scale, middle - scale)) == (31, 58, 147)


def test_svg_embeds_the_logo_as_a_data_png() -> None:
    logo = load_logo(photo_logo())
    svg = render_svg(URLS[1], QrOptions(ec="H", logo=logo))
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    (node,) = root.findall(f"{SVG_NS}image")
    embedded = base64.b64decode(node.attrib["href"].split(",", 1)[1])
    assert embedded == logo.png
    assert Image.open(io.BytesIO(embedded)).format == "PNG"


def test_a_logo_defaults_to_h_and_refuses_l_and_m() -> None:
    assert parse_qr_options({}, logo=badge_logo()).ec == "H"
    for ec in ("L", "M"):
        with pytest.raises(InvalidParameter) as info:
            parse_qr_options({"ec": ec}, logo=badge_logo())
        assert info.value.field == "ec"


def test_logo_is_normalised() -> None:
    big = Image.new("RGB", (2000, 1000), (10, 120, 200))
    logo = load_logo(png_bytes(big, "JPEG"))
    assert isinstance(logo, Logo)
    assert max(logo.width, logo.height) <= LOGO_STORED_SIDE
    assert Image.open(io.BytesIO(logo.png)).format == "PNG"


def _corrupt_png() -> bytes:
    data = badge_logo()
    return data[: len(data) // 2]


def _huge_png() -> bytes:
    # A tiny file declaring 5000 x 8 pixels: refused from its header, never decoded.
    return png_bytes(Image.new("1", (5000, 8)))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"not an image at all", "PNG or JPEG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "PNG or JPEG"),
        (b"GIF89a" + b"\x00" * 40, "PNG or JPEG"),
        (png_bytes(Image.new("RGB", (10, 10)), "GIF"), "PNG or JPEG"),
        (png_bytes(Image.new("RGB", (10, 10)), "BMP"), "PNG or JPEG"),
        (_corrupt_png(), "corrupt"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG or JPEG"),
        (_huge_png(), "4096"),
        (b"\x89PNG" + b"\x00" * MAX_LOGO_BYTES, "KB"),
    ],
)
def test_bad_logos_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_qr_options({}, logo=data)
    assert info.value.field == "logo"
    assert words in info.value.message


def test_a_version_1_code_is_too_small_for_a_logo() -> None:
    with pytest.raises(InvalidParameter) as info:
        render_png("HELLO", QrOptions(ec="H", logo=load_logo(badge_logo())))
    assert info.value.field == "logo"


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_styled_zip_holds_one_decodable_code_per_link(fmt: str) -> None:
    opts = QrOptions(size=400, ec="H", fg="#1f3a93", bg="#fff3c4", logo=load_logo(badge_logo()))
    items = [(f"poster-{i}", url) for i, url in enumerate(STYLE_URLS)]
    with zipfile.ZipFile(io.BytesIO(qr_zip(items, fmt, opts))) as archive:
        assert archive.namelist() == [f"poster-{i}.{fmt}" for i in range(len(STYLE_URLS))]
        for (name, url), entry in zip(items, archive.namelist(), strict=True):
            body = archive.read(entry)
            image = Image.open(io.BytesIO(body)) if fmt == "png" else rasterise_svg(body)
            assert decode(image) == [url], name
