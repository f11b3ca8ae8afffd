"""QR codes for links: PNG (Pillow) and SVG, one at a time or as a ZIP.

The `qrcode` library encodes the data and picks the mask; the images are drawn here from its
module matrix because that is several times faster than its per-module image factories and
gives exact pixel sizes. Matrices are cached (LRU) since the same link is rendered repeatedly
(PNG, SVG, different sizes, ZIP exports).
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from linkgen.domain.errors import InvalidParameter

# qrcode and Pillow are imported where a code is drawn, not at start-up: every web process
# imports this module, and on the link domain's workers (which never draw one) they would
# only add about 4.5 MB to the resident memory.
EC_LEVELS = ("L", "M", "Q", "H")
MIN_SIZE, MAX_SIZE = 64, 4000
MIN_MARGIN, MAX_MARGIN = 0, 40
FORMATS = ("png", "svg")
_INT_RE = re.compile(r"\A[0-9]{1,6}\Z")
_UNSAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class QrOptions:
    """Rendering options: size in pixels, margin (quiet zone) in modules, error correction."""

    size: int = 600
    margin: int = 4
    ec: str = "M"


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


def parse_qr_options(args: Mapping[str, str]) -> QrOptions:
    """QrOptions from query args `size` (64..4000), `margin` (0..40) and `ec` (L, M, Q, H)."""
    size = _int_arg(args, "size", MIN_SIZE, MAX_SIZE, QrOptions.size)
    margin = _int_arg(args, "margin", MIN_MARGIN, MAX_MARGIN, QrOptions.margin)
    ec = (args.get("ec") or QrOptions.ec).strip().upper()
    if ec not in EC_LEVELS:
        raise InvalidParameter("ec must be one of L, M, Q, H", field="ec")
    return QrOptions(size=size, margin=margin, ec=ec)


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


def render_png(data: str, opts: QrOptions) -> bytes:
    """A 1-bit PNG of the QR code, exactly size x size pixels when the modules fit.

    Modules are whole pixels (crisp for scanners); the pixels left over after `size // modules`
    become extra white border, centred. If the code has more modules than `size` pixels, the
    image is one pixel per module (larger than asked) rather than unreadable.
    """
    from PIL import Image

    matrix = qr_matrix(data, opts.ec, opts.margin)
    n = len(matrix)
    scale = module_scale(n, opts.size)
    # One byte per module, made 1-bit while tiny, then scaled with NEAREST: all in C.
    raw = bytes(0 if dark else 255 for row in matrix for dark in row)
    image = Image.frombytes("L", (n, n), raw).convert("1", dither=Image.Dither.NONE)
    if scale > 1:
        image = image.resize((n * scale, n * scale), Image.Resampling.NEAREST)
    side = max(opts.size, n * scale)
    if side != n * scale:
        canvas = Image.new("1", (side, side), 1)
        offset = (side - n * scale) // 2
        canvas.paste(image, (offset, offset))
        image = canvas
    out = io.BytesIO()
    # compress_level 1 is much faster than the default and costs little on bilevel images.
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


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
    """An SVG of the QR code: size x size pixels, viewBox in modules, white background."""
    matrix = qr_matrix(data, opts.ec, opts.margin)
    n = len(matrix)
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{opts.size}" height="{opts.size}" '
        f'viewBox="0 0 {n} {n}" shape-rendering="crispEdges">'
        f'<rect width="{n}" height="{n}" fill="#ffffff"/>'
        f'<path fill="#000000" d="{svg_path(matrix)}"/></svg>\n'
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
