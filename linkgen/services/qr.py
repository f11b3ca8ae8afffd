"""QR codes for links: PNG (Pillow) and SVG, one at a time or as a ZIP, styled or plain.

The `qrcode` library encodes the data and picks the mask; the images are drawn here from its
module matrix because that is several times faster than its per-module image factories and
gives exact pixel sizes. Matrices are cached (LRU) since the same link is rendered repeatedly
(PNG, SVG, different sizes, ZIP exports).

Styling (colours, a centred logo) is part of the one renderer, and refused where it would make a
code hard to scan: colours need a WCAG contrast of at least 3:1 with the dark modules darker than
the light ones (zbar, like many phone scanners, reads no inverted code), and a logo covers at
most 15% of the modules at error correction H (8% at Q), about half of what the level recovers.
The alignment patterns under the logo are drawn over it: zbar sampled the wrong module grid when
a logo had pattern-like detail where the centre one was hidden.
"""

from __future__ import annotations

import base64
import io
import math
import re
import time
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from linkgen.domain.errors import InvalidParameter

if TYPE_CHECKING:
    from PIL import Image as PILImage

# qrcode and Pillow are imported where a code is drawn, not at start-up: every web process
# imports this module, and on the link domain's workers (which never draw one) they would
# only add about 4.5 MB to the resident memory.
EC_LEVELS = ("L", "M", "Q", "H")
MIN_SIZE, MAX_SIZE = 64, 4000
MIN_MARGIN, MAX_MARGIN = 0, 40
FORMATS = ("png", "svg")
_INT_RE = re.compile(r"\A[0-9]{1,6}\Z")
# A colour as `#rrggbb` or `rrggbb` (the API document says the same pattern).
COLOUR_PATTERN = "^#?[0-9a-fA-F]{6}$"
_COLOUR_RE = re.compile(r"\A#?([0-9a-fA-F]{6})\Z")
_UNSAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")

MIN_CONTRAST = 3.0  # WCAG 2 ratio: below it a printed or on-screen code scans unreliably
LOGO_EC_LEVELS = ("Q", "H")
# The share of the code's modules (quiet zone excluded) the logo and its pad may cover: about
# half of what the level recovers (H ~30%, Q ~25%), since a centred square also cuts codewords at
# its edges. zbar still read every test code at H 20% and Q 12%; tests/unit/test_qr_style.py
# decodes the largest logo allowed here.
LOGO_BUDGET = {"Q": 0.08, "H": 0.15}
LOGO_PAD_MODULES = 1  # a border of background colour between the logo and the modules
LOGO_MIN_MODULES = 5  # a box smaller than this shows nothing worth a logo
MAX_LOGO_BYTES = 1024 * 1024
MAX_LOGO_SIDE = 4096  # pixels; bigger is refused before decoding (no decompression bombs)
LOGO_STORED_SIDE = 512  # logos are kept (and embedded in SVGs) at most this large
LOGO_FORMATS = ("PNG", "JPEG")


@dataclass(frozen=True)
class Logo:
    """An uploaded logo, decoded, checked and normalised to an RGBA PNG of at most 512 px."""

    png: bytes
    width: int
    height: int

    def image(self) -> PILImage.Image:
        """The logo as an RGBA Pillow image."""
        from PIL import Image

        return Image.open(io.BytesIO(self.png)).convert("RGBA")


@dataclass(frozen=True)
class QrOptions:
    """Rendering options: size in pixels, margin (quiet zone) in modules, error correction,
    dark and light colours (#rrggbb) and an optional centred logo."""

    size: int = 600
    margin: int = 4
    ec: str = "M"
    fg: str = "#000000"
    bg: str = "#ffffff"
    logo: Logo | None = None


def _int_arg(args: Mapping[str, str], name: str, lo: int, hi: int, default: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not _INT_RE.match(raw.strip()):
        raise InvalidParameter(f"{name} must be a whole number from {lo} to {hi}", field=name)
    value = int(raw.strip())
    if not lo <= value <= hi:
        raise InvalidParameter(f"{name} must be a whole number from {lo} to {hi}", field=name)
    return value


def _colour_arg(args: Mapping[str, str], name: str, default: str) -> str:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    match = _COLOUR_RE.match(raw.strip())
    if match is None:
        raise InvalidParameter(f"{name} must be a colour as #rrggbb", field=name)
    return "#" + match.group(1).lower()


def rgb(colour: str) -> tuple[int, int, int]:
    """(r, g, b) of a #rrggbb colour."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour (0 black .. 1 white)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 .. 21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)))
    return (lb + 0.05) / (la + 0.05)


def check_colours(fg: str, bg: str) -> None:
    """Refuse colours a scanner may not read: inverted (light on dark) or too little contrast."""
    if relative_luminance(fg) >= relative_luminance(bg):
        raise InvalidParameter(
            "fg (the modules) must be darker than bg (the background): many scanners cannot "
            "read a light code on a dark background",
            field="fg",
        )
    ratio = contrast_ratio(fg, bg)
    if ratio < MIN_CONTRAST:
        raise InvalidParameter(
            f"fg {fg} on bg {bg} has a contrast of {ratio:.1f}:1; a code needs at least "
            f"{MIN_CONTRAST:.0f}:1 to scan reliably (darken fg or lighten bg)",
            field="fg",
        )


def load_logo(data: bytes, *, field: str = "logo") -> Logo:
    """A Logo from uploaded bytes: a PNG or JPEG of at most 1 MB and 4096 px a side."""
    if not data:
        raise InvalidParameter("logo is an empty file", field=field)
    if len(data) > MAX_LOGO_BYTES:
        raise InvalidParameter(
            f"logo must be at most {MAX_LOGO_BYTES // 1024} KB (this one is "
            f"{math.ceil(len(data) / 1024)} KB)",
            field=field,
        )
    from PIL import Image, UnidentifiedImageError

    too_big = f"logo must be at most {MAX_LOGO_SIDE} x {MAX_LOGO_SIDE} pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only the PNG and JPEG decoders are tried: nothing else (SVG, GIF, ...) is parsed.
            image = Image.open(io.BytesIO(data), formats=list(LOGO_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidParameter(too_big, field=field) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidParameter("logo must be a PNG or JPEG image", field=field) from None
    with image:
        width, height = image.size
        if width < 1 or height < 1 or max(width, height) > MAX_LOGO_SIDE:
            raise InvalidParameter(f"{too_big} (this one is {width} x {height})", field=field)
        try:
            if image.format == "JPEG":
                image.draft("RGB", (LOGO_STORED_SIDE, LOGO_STORED_SIDE))  # decode scaled down
            rgba = image.convert("RGBA")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise InvalidParameter(
                "logo could not be read: the image is corrupt or truncated", field=field
            ) from None
    rgba.thumbnail((LOGO_STORED_SIDE, LOGO_STORED_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgba.save(out, format="PNG", optimize=True)  # re-encoded: no metadata, nothing but pixels
    return Logo(png=out.getvalue(), width=rgba.width, height=rgba.height)


def parse_qr_options(args: Mapping[str, str], *, logo: bytes | None = None) -> QrOptions:
    """QrOptions from query args `size` (64..4000), `margin` (0..40), `ec` (L, M, Q, H), `fg`
    and `bg` (#rrggbb), and an optional uploaded logo (then `ec` is Q or H, H by default)."""
    size = _int_arg(args, "size", MIN_SIZE, MAX_SIZE, QrOptions.size)
    margin = _int_arg(args, "margin", MIN_MARGIN, MAX_MARGIN, QrOptions.margin)
    fg = _colour_arg(args, "fg", QrOptions.fg)
    bg = _colour_arg(args, "bg", QrOptions.bg)
    check_colours(fg, bg)
    decoded = load_logo(logo) if logo is not None else None
    raw_ec = (args.get("ec") or "").strip().upper()
    ec = raw_ec or ("H" if decoded is not None else QrOptions.ec)
    if ec not in EC_LEVELS:
        raise InvalidParameter("ec must be one of L, M, Q, H", field="ec")
    if decoded is not None and ec not in LOGO_EC_LEVELS:
        raise InvalidParameter(
            "a code with a logo needs error correction Q or H (the logo hides modules)",
            field="ec",
        )
    return QrOptions(size=size, margin=margin, ec=ec, fg=fg, bg=bg, logo=decoded)


@lru_cache(maxsize=1024)
def qr_matrix(data: str, ec: str, margin: int) -> tuple[tuple[bool, ...], ...]:
    """The module matrix (True = dark), quiet zone included, of the smallest fitting version."""
    if ec not in EC_LEVELS:
        raise InvalidParameter("ec must be one of L, M, Q, H", field="ec")
    import qrcode
    import qrcode.constants
    import qrcode.exceptions

    level = getattr(qrcode.constants, f"ERROR_CORRECT_{ec}")
    code = qrcode.QRCode(error_correction=level, box_size=1, border=margin)
    code.add_data(data)
    try:
        code.make(fit=True)
    # qrcode's best_fit raises a bare ValueError ("Invalid version (was 41 ...)") when the data
    # outgrows version 40, DataOverflowError in other paths.
    except (qrcode.exceptions.DataOverflowError, ValueError):
        raise InvalidParameter(
            "the URL is too long for a QR code at this error correction level (try L or M)",
            field="ec",
        ) from None
    return tuple(tuple(row) for row in code.get_matrix())


def module_scale(modules: int, size: int) -> int:
    """Pixels per module: the largest whole number that fits `size` (at least 1)."""
    return max(1, size // modules)


def logo_box(modules: int, margin: int, ec: str) -> tuple[int, int]:
    """(first module, side in modules) of the centred square a logo and its pad may cover.

    The side keeps the square within the level's budget of the code's modules, off the finder
    patterns, their separators and the format information (9 modules from each corner), and
    centred on whole modules.
    """
    if ec not in LOGO_EC_LEVELS:
        raise InvalidParameter(
            "a code with a logo needs error correction Q or H (the logo hides modules)",
            field="ec",
        )
    width = modules - 2 * margin
    side = min(math.floor(math.sqrt(LOGO_BUDGET[ec]) * width), width - 18)
    if (width - side) % 2:
        side -= 1
    if side < LOGO_MIN_MODULES:
        raise InvalidParameter("this code is too small to carry a logo", field="logo")
    return margin + (width - side) // 2, side


def logo_fit(logo: Logo, box: float, pad: float) -> tuple[float, float, float, float]:
    """(x, y, width, height) of the logo inside a box of side `box`, keeping its aspect ratio."""
    room = box - 2 * pad
    scale = room / max(logo.width, logo.height)
    w, h = logo.width * scale, logo.height * scale
    return (box - w) / 2, (box - h) / 2, w, h


def render_png(data: str, opts: QrOptions) -> bytes:
    """A PNG of the QR code, exactly size x size pixels when the modules fit.

    Modules are whole pixels (crisp for scanners); the pixels left over after `size // modules`
    become extra border, centred. If the code has more modules than `size` pixels, the image is
    one pixel per module (larger than asked) rather than unreadable. Without a logo the image is
    a two-colour palette PNG (1 bit per pixel); with one, RGB.
    """
    from PIL import Image

    matrix = qr_matrix(data, opts.ec, opts.margin)
    n = len(matrix)
    scale = module_scale(n, opts.size)
    # One byte per module (palette index 0 dark, 1 light), scaled with NEAREST: all in C.
    raw = bytes(0 if dark else 1 for row in matrix for dark in row)
    palette = [*rgb(opts.fg), *rgb(opts.bg)]
    image = Image.frombytes("P", (n, n), raw)
    image.putpalette(palette)
    if scale > 1:
        image = image.resize((n * scale, n * scale), Image.Resampling.NEAREST)
    side = max(opts.size, n * scale)
    offset = (side - n * scale) // 2
    if side != n * scale:
        canvas = Image.new("P", (side, side), 1)
        canvas.putpalette(palette)
        canvas.paste(image, (offset, offset))
        image = canvas
    if opts.logo is not None:
        image = _paste_logo(image.convert("RGB"), opts, matrix, scale, offset)
    out = io.BytesIO()
    # compress_level 1 is much faster than the default and costs little on flat images.
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _paste_logo(
    image: PILImage.Image,
    opts: QrOptions,
    matrix: tuple[tuple[bool, ...], ...],
    scale: int,
    offset: int,
) -> PILImage.Image:
    from PIL import Image, ImageDraw

    assert opts.logo is not None
    start, side = logo_box(len(matrix), opts.margin, opts.ec)
    box = side * scale
    pad = LOGO_PAD_MODULES * scale
    x, y, w, h = logo_fit(opts.logo, box, pad)
    tile = Image.new("RGBA", (box, box), (*rgb(opts.bg), 255))
    logo = opts.logo.image().resize((max(1, round(w)), max(1, round(h))), Image.Resampling.LANCZOS)
    tile.alpha_composite(logo, (round(x), round(y)))
    corner = offset + start * scale
    image.paste(tile.convert("RGB"), (corner, corner))
    pen = ImageDraw.Draw(image)
    fg, bg = rgb(opts.fg), rgb(opts.bg)
    for x, y, dark in alignment_modules(matrix, opts.margin, start, side):
        x0, y0 = offset + x * scale, offset + y * scale
        pen.rectangle((x0, y0, x0 + scale - 1, y0 + scale - 1), fill=fg if dark else bg)
    return image


def alignment_modules(
    matrix: tuple[tuple[bool, ...], ...], margin: int, start: int, side: int
) -> list[tuple[int, int, bool]]:
    """(x, y, dark) of the alignment-pattern modules inside the logo box.

    They are drawn over the logo: scanners use them to find the module grid, and a logo with
    pattern-like detail where one was hidden made zbar sample the wrong grid (a test shows it).
    """
    import qrcode.util

    version = (len(matrix) - 2 * margin - 17) // 4
    centres = qrcode.util.pattern_position(version)
    kept: list[tuple[int, int, bool]] = []
    end = start + side
    for cy in centres:
        for cx in centres:
            x0, y0 = cx + margin - 2, cy + margin - 2
            if x0 + 5 <= start or x0 >= end or y0 + 5 <= start or y0 >= end:
                continue
            for y in range(y0, y0 + 5):
                for x in range(x0, x0 + 5):
                    kept.append((x, y, matrix[y][x]))
    return kept


def svg_path(matrix: tuple[tuple[bool, ...], ...]) -> str:
    """The SVG path of the dark modules: one `M x y h w v1 h -w z` rectangle per horizontal run."""
    parts: list[str] = []
    for y, row in enumerate(matrix):
        x, n = 0, len(row)
        while x < n:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < n and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return "".join(parts)


def render_svg(data: str, opts: QrOptions) -> bytes:
    """An SVG of the QR code: size x size pixels, viewBox in modules, the logo (if any) embedded
    as a data: PNG so the file stands alone."""
    matrix = qr_matrix(data, opts.ec, opts.margin)
    n = len(matrix)
    logo = ""
    if opts.logo is not None:
        start, side = logo_box(n, opts.margin, opts.ec)
        x, y, w, h = logo_fit(opts.logo, side, LOGO_PAD_MODULES)
        href = "data:image/png;base64," + base64.b64encode(opts.logo.png).decode("ascii")
        kept = alignment_modules(matrix, opts.margin, start, side)
        dark = {(x, y) for x, y, is_dark in kept if is_dark}
        marks = "".join(
            f'<rect x="{x}" y="{y}" width="5" height="5" fill="{opts.bg}"/>'
            for x, y, _ in kept[::25]  # each pattern's first (top-left) module
        )
        over = tuple(tuple((x, y) in dark for x in range(n)) for y in range(n))
        logo = (
            f'<rect x="{start}" y="{start}" width="{side}" height="{side}" fill="{opts.bg}"/>'
            f'<image x="{start + x:.4g}" y="{start + y:.4g}" width="{w:.4g}" height="{h:.4g}" '
            f'preserveAspectRatio="xMidYMid meet" href="{href}"/>'
            + (f'{marks}<path fill="{opts.fg}" d="{svg_path(over)}"/>' if kept else "")
        )
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{opts.size}" height="{opts.size}" '
        f'viewBox="0 0 {n} {n}" shape-rendering="crispEdges">'
        f'<rect width="{n}" height="{n}" fill="{opts.bg}"/>'
        f'<path fill="{opts.fg}" d="{svg_path(matrix)}"/>{logo}</svg>\n'
    )
    return svg.encode("utf-8")


def _safe_name(name: str, fmt: str, used: set[str]) -> str:
    # Names come from campaigns and ids: keep them to one path segment of safe characters so
    # unzipping cannot write outside its folder, and never let two entries share a name.
    stem = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if stem.lower().endswith(f".{fmt}"):
        stem = stem[: -len(fmt) - 1]
    stem = _UNSAFE_NAME_RE.sub("_", stem).strip("._") or "qr"
    candidate, counter = f"{stem}.{fmt}", 1
    while candidate.lower() in used:
        counter += 1
        candidate = f"{stem}-{counter}.{fmt}"
    used.add(candidate.lower())
    return candidate


def qr_zip(items: Iterable[tuple[str, str]], fmt: str, opts: QrOptions) -> bytes:
    """A ZIP of QR codes from (file name, URL) pairs; names are sanitised and made unique."""
    if fmt not in FORMATS:
        raise InvalidParameter("format must be png or svg", field="format")
    render = render_png if fmt == "png" else render_svg
    # PNGs are already compressed; SVG text shrinks a lot.
    compression = zipfile.ZIP_STORED if fmt == "png" else zipfile.ZIP_DEFLATED
    stamp = time.gmtime()[:6]
    used: set[str] = set()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, url in items:
            info = zipfile.ZipInfo(_safe_name(name, fmt, used), date_time=stamp)
            info.compress_type = compression
            archive.writestr(info, render(url, opts))
    return out.getvalue()
