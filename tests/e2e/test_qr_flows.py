"""Styling a QR code in the browser: the link page's QR panel (colours, logo, preview, PNG and
SVG downloads) and a campaign's codes as a ZIP from the links list, at desktop and phone width.
The downloaded SVG is rendered by Chromium itself and decoded."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    Site,
    assert_accessible,
    assert_no_horizontal_scroll,
    log_in,
)
from tests.qr_decode import decode
from tests.unit.test_qr_style import badge_logo

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("name", "size"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_style_preview_download_and_zip(
    seeded: Site, new_page: Any, tmp_path: Any, name: str, size: dict[str, int]
) -> None:
    from linkgen.services.links import create_link

    rt = seeded.app.extensions["linkgen"]
    campaign = f"poster_{name}"
    with rt.db.session() as db:
        links = [
            create_link(
                db,
                {"template_id": seeded.template_id, "channel": "qr", "campaign": campaign},
                scheme_for=rt.settings.scheme_for,
            )
            for _ in range(2)
        ]
    page = new_page(size)
    log_in(page)
    page.goto(f"/links/{links[0]['id']}")
    expected = links[0]["short_url"] + "?af_qr=true"

    # A refused colour is said next to its field.
    page.get_by_label("Code colour", exact=True).fill("#eeeeee")
    error = page.locator("#qr-fg-err")
    error.wait_for(state="visible")
    assert "contrast" in error.inner_text()

    page.get_by_label("Code colour", exact=True).fill("#1f3a93")
    page.get_by_label("Background", exact=True).fill("#fff3c4")
    page.get_by_label("Logo in the centre (optional)").set_input_files(
        files=[{"name": "logo.png", "mimeType": "image/png", "buffer": badge_logo()}]
    )
    assert page.get_by_label("Error correction", exact=True).input_value() == "H"
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#qr-preview[data-styled='1']")
    preview.wait_for()
    error.wait_for(state="hidden")
    assert_no_horizontal_scroll(page, f"link page at {name} width")
    assert_accessible(page, f"link page QR panel at {name} width")

    with page.expect_download() as info:
        page.locator("#qr-png").click()
    png = tmp_path / "qr.png"
    info.value.save_as(png)
    image = Image.open(png)
    assert image.convert("RGB").getpixel((0, 0)) == (255, 243, 196)
    assert decode(image) == [expected]

    with page.expect_download() as svg_info:
        page.locator("#qr-svg").click()
    svg = tmp_path / "qr.svg"
    svg_info.value.save_as(svg)
    # Chromium renders the SVG (logo embedded as data:) and the screenshot is decoded.
    shot = new_page({"width": 700, "height": 700})
    data = base64.b64encode(svg.read_bytes()).decode()
    shot.set_content(
        f'<body style="margin:0;background:#fff3c4"><img id="q" style="margin:40px" '
        f'width="600" height="600" src="data:image/svg+xml;base64,{data}"></body>'
    )
    shot.wait_for_function("document.getElementById('q').complete")
    rendered = Image.open(io.BytesIO(shot.screenshot()))
    assert decode(rendered) == [expected]

    # The campaign's codes as a ZIP from the links list.
    page.goto(f"/links?campaign={campaign}")
    assert_no_horizontal_scroll(page, f"links list at {name} width")
    assert_accessible(page, f"links list ZIP form at {name} width")
    form = page.locator("#qr-zip-form")
    form.get_by_label("Code colour", exact=True).fill("#0b5d1e")
    with page.expect_download() as zip_info:
        form.get_by_role("button", name="Download QR codes (ZIP)").click()
    archive = tmp_path / "codes.zip"
    zip_info.value.save_as(archive)
    assert zip_info.value.suggested_filename == f"qr-{campaign}.zip"
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == sorted(f"{link['shortlink_id']}.png" for link in links)
        for link in links:
            body = zf.read(f"{link['shortlink_id']}.png")
            assert decode(Image.open(io.BytesIO(body))) == [link["short_url"] + "?af_qr=true"]
