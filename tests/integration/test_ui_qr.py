"""The QR panel of the link page and the campaign ZIP of the links list: styled codes (colours,
margin, EC, an uploaded logo) decode to the link's URL, and bad styles are refused naming the
field (the error page, 400; for the page's script JSON like the builder's preview), never
a 500."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from linkgen.services.links import create_link
from tests.integration.test_ui_link_expiry import token
from tests.integration.test_ui_link_expiry import ui as ui
from tests.qr_decode import decode
from tests.unit.test_qr_style import badge_logo, photo_logo, rasterise_svg

FETCH = {"X-Requested-With": "fetch"}


def make_link(app: Flask, **body: Any) -> dict[str, Any]:
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        out: dict[str, Any] = create_link(
            db, {"template_id": "AbCd", **body}, scheme_for=rt.settings.scheme_for
        )
    return out


def expected_data(link: dict[str, Any]) -> str:
    url: str = link["short_url"] or link["long_url"]
    return url + ("&" if "?" in url else "?") + "af_qr=true"


def post_form(
    client: FlaskClient, url: str, form: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    """POST a multipart form encoded in memory: the test client spools bodies over 500 KB to a
    temporary file it never closes (a ResourceWarning, an error under filterwarnings)."""
    fields = {
        k: FileStorage(v[0], filename=v[1]) if isinstance(v, tuple) else v for k, v in form.items()
    }
    stream, _, boundary = stream_encode_multipart(fields, use_tempfile=False)
    return client.post(
        url,
        data=stream.read(),
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=headers or {},
    )


def style_form(client: FlaskClient, page: str, **fields: Any) -> dict[str, Any]:
    form = {"csrf_token": token(client, page), "fg": "#1f3a93", "bg": "#fff3c4"}
    form.update(fields)
    return form


def test_link_page_has_the_qr_panel(app: Flask, ui: FlaskClient) -> None:
    link = make_link(app, channel="qr", campaign="poster")
    page = ui.get(f"/links/{link['id']}").get_data(as_text=True)
    for needle in (
        'id="qr-form"',
        'enctype="multipart/form-data"',
        'name="fg" type="color"',
        'name="bg" type="color"',
        'name="margin"',
        'name="ec"',
        'name="logo" type="file" accept="image/png,image/jpeg"',
        'id="qr-png"',
        'id="qr-svg"',
        "js/qr.js",
    ):
        assert needle in page, needle


@pytest.mark.parametrize("ec", ["Q", "H"])
def test_styled_png_and_svg_with_a_logo_decode(app: Flask, ui: FlaskClient, ec: str) -> None:
    link = make_link(app, channel="qr", campaign="poster", params={"deep_link_value": "shoes"})
    page = f"/links/{link['id']}"
    for fmt in ("png", "svg"):
        form = style_form(
            ui, page, margin="2", ec=ec, size="500", logo=(io.BytesIO(badge_logo()), "logo.png")
        )
        resp = ui.post(f"{page}/qr.{fmt}?download=1", data=form)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        assert resp.headers["Content-Disposition"] == (
            f'attachment; filename="qr-{link["shortlink_id"]}.{fmt}"'
        )
        if fmt == "png":
            image = Image.open(io.BytesIO(resp.data))
            assert image.size == (500, 500)
            assert image.convert("RGB").getpixel((0, 0)) == (255, 243, 196)
        else:
            assert b"data:image/png;base64," in resp.data and b'fill="#1f3a93"' in resp.data
            image = rasterise_svg(resp.data)
        assert decode(image) == [expected_data(link)]


def test_get_still_serves_the_plain_preview(app: Flask, ui: FlaskClient) -> None:
    link = make_link(app, channel="qr")
    resp = ui.get(f"/links/{link['id']}/qr.png?size=240&margin=2&fg=%23333333")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert decode(Image.open(io.BytesIO(resp.data))) == [expected_data(link)]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"fg": "blue"}, "fg"),
        ({"bg": "#12"}, "bg"),
        ({"fg": "#aaaaaa"}, "fg"),  # on #fff3c4: too little contrast
        ({"fg": "#ffffff", "bg": "#000000"}, "fg"),  # inverted
        ({"margin": "99"}, "margin"),
        ({"ec": "Z"}, "ec"),
        ({"size": "10"}, "size"),
        ({"ec": "M", "logo": "png"}, "ec"),
        ({"logo": b"just text"}, "logo"),
        ({"logo": b"GIF89a" + b"\x00" * 30}, "logo"),
        ({"logo": "truncated"}, "logo"),
        ({"logo": b"\x89PNG" + b"\x00" * (1024 * 1024 + 10)}, "logo"),
    ],
)
def test_bad_styles_are_refused_naming_the_field(
    app: Flask, ui: FlaskClient, fields: dict[str, Any], field: str
) -> None:
    link = make_link(app, channel="qr")
    page = f"/links/{link['id']}"
    raw = fields.get("logo")
    if raw == "png":
        raw = badge_logo()
    elif raw == "truncated":
        raw = photo_logo()[:300]

    def form() -> dict[str, Any]:
        if raw is None:
            return style_form(ui, page, **fields)
        return style_form(ui, page, **{**fields, "logo": (io.BytesIO(raw), "upload.png")})

    resp = post_form(ui, f"{page}/qr.png", form(), FETCH)
    assert resp.status_code == 200  # like the builder's preview: a 4xx is a console error
    assert resp.get_json()["ok"] is False and resp.get_json()["status"] == 400
    assert resp.get_json()["error"]["field"] == field
    # Without the script (a plain form post) the error page names the field.
    page_resp = post_form(ui, f"{page}/qr.svg", form())
    assert page_resp.status_code == 400 and page_resp.mimetype == "text/html"
    assert field in page_resp.get_data(as_text=True)


def test_an_empty_file_input_means_no_logo(app: Flask, ui: FlaskClient) -> None:
    link = make_link(app, channel="qr")
    page = f"/links/{link['id']}"
    form = style_form(ui, page, ec="L", logo=(io.BytesIO(b""), ""))
    resp = ui.post(f"{page}/qr.png", data=form)
    assert resp.status_code == 200
    assert decode(Image.open(io.BytesIO(resp.data))) == [expected_data(link)]


# --------------------------------------------------------------------------- campaign ZIP


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_links_list_offers_the_campaign_zip(app: Flask, ui: FlaskClient) -> None:
    make_link(app, channel="qr", campaign="poster")
    page = ui.get("/links?campaign=poster").get_data(as_text=True)
    assert "Download QR codes (ZIP)" in page
    assert 'id="z-campaign" name="campaign" list="campaign-list" value="poster"' in page
    assert '<details class="card qr-zip" id="qr-zip" open>' in page


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_campaign_zip_holds_one_styled_decodable_code_per_link(
    app: Flask, ui: FlaskClient, fmt: str
) -> None:
    links = [
        make_link(app, channel="qr", campaign="spring poster"),
        make_link(app, channel="qr", campaign="spring poster", params={"deep_link_value": "a"}),
        make_link(app, channel="email", campaign="spring poster"),
    ]
    make_link(app, channel="qr", campaign="other")
    form = style_form(
        ui,
        "/links",
        campaign="spring poster",
        format=fmt,
        size="400",
        ec="H",
        logo=(io.BytesIO(badge_logo()), "logo.png"),
    )
    resp = ui.post("/links/qr-codes.zip", data=form)
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="qr-spring_poster.zip"'
    files = read_zip(resp.data)
    names = {(link["shortlink_id"] or link["id"]) + f".{fmt}": link for link in links}
    assert sorted(files) == sorted(names)
    for name, link in names.items():
        body = files[name]
        image = Image.open(io.BytesIO(body)) if fmt == "png" else rasterise_svg(body)
        assert decode(image) == [expected_data(link)], name


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"campaign": ""}, 400, "campaign"),
        ({"campaign": "nothing here"}, 404, "campaign"),
        ({"campaign": "poster", "format": "gif"}, 400, "format"),
        ({"campaign": "poster", "bg": "#000000"}, 400, "fg"),
        ({"campaign": "poster", "logo": b"<svg/>"}, 400, "logo"),
    ],
)
def test_bad_zip_forms_are_refused_naming_the_field(
    app: Flask, ui: FlaskClient, fields: dict[str, Any], status: int, field: str
) -> None:
    make_link(app, channel="qr", campaign="poster")
    if "logo" in fields:
        fields = {**fields, "logo": (io.BytesIO(fields["logo"]), "logo.svg")}
    resp = ui.post("/links/qr-codes.zip", data=style_form(ui, "/links", **fields), headers=FETCH)
    assert resp.status_code == 200 and resp.get_json()["status"] == status
    assert resp.get_json()["error"]["field"] == field


def test_qr_forms_need_the_csrf_token(app: Flask, ui: FlaskClient) -> None:
    link = make_link(app, channel="qr", campaign="poster")
    assert ui.post(f"/links/{link['id']}/qr.png", data={"fg": "#000000"}).status_code == 400
    assert ui.post("/links/qr-codes.zip", data={"campaign": "poster"}).status_code == 400
