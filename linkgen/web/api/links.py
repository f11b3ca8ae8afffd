"""Links: /api/v1/links (create, bulk, read, list, export, update, delete) and their QR codes."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from flask import Response, jsonify, request, stream_with_context

from linkgen.domain.bulk import parse_links_csv_with_lines
from linkgen.domain.errors import InvalidParameter
from linkgen.runtime import get_runtime
from linkgen.services import link_bulk, link_export, link_queries
from linkgen.services import links as service
from linkgen.services.qr import FORMATS, parse_qr_options, qr_zip, render_png, render_svg
from linkgen.web import edge
from linkgen.web.api import (
    api_key_cache,
    authenticate,
    bp,
    current_principal,
    json_body,
    json_object,
)
from linkgen.web.edge import EdgeRequest
from linkgen.web.pagination import decode_cursor, encode_cursor, parse_limit

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
QR_MIMETYPES = {"png": "image/png", "svg": "image/svg+xml"}
# QR codes change only when the link's params do; a short private cache plus an ETag keeps
# a browser preview snappy without serving a stale code for long after an edit.
QR_CACHE_CONTROL = "private, max-age=60"


def create_link(req: EdgeRequest) -> tuple[int, Any]:
    """One link, committed before the answer (the edge's: linkgen/web/edge.py)."""
    rt = req.runtime
    principal = authenticate(api_key_cache(rt), req.header("Authorization") or "", "POST")
    body = json_object(req.body(), req.loads)
    out = service.create_one(
        rt.db, body, scheme_for=rt.settings.scheme_for, created_by=principal.label
    )
    return 201, out


edge.route(bp, "/links", create_link)


@bp.post("/links/bulk")
def create_links_bulk() -> tuple[Response, int]:
    rows = _bulk_rows()
    rt = get_runtime()
    result = link_bulk.create_links_bulk(
        rt.db,
        rows,
        scheme_for=rt.settings.scheme_for,
        created_by=current_principal().label,
        default_template_id=request.args.get("template_id") or None,
    )
    return jsonify(result.to_dict()), 200 if result.failed == 0 else 207


def _bulk_rows() -> list[tuple[int, Any]]:
    if request.mimetype in CSV_TYPES:
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameter("the CSV must be UTF-8 text", field="csv") from None
        rows = parse_links_csv_with_lines(text)
        link_bulk.check_bulk_size(len(rows))
        return list(rows)
    data = request.get_json(silent=True, force=True) if request.data else None
    if isinstance(data, dict) and set(data) == {"links"}:
        data = data["links"]
    if not isinstance(data, list):
        raise InvalidParameter(
            'send a JSON list of links, {"links": [...]}, or a text/csv body', field="body"
        )
    link_bulk.check_bulk_size(len(data))
    return list(enumerate(data))


@bp.get("/links")
def list_links() -> Response:
    limit = parse_limit(request.args)
    cursor = decode_cursor(request.args)
    filters = link_queries.LinkFilter.from_args(request.args)
    rt = get_runtime()
    with rt.db.session() as session:
        items, last = link_queries.list_links(
            session, filters, cursor=cursor, limit=limit, scheme_for=rt.settings.scheme_for
        )
    return jsonify({"items": items, "next": encode_cursor(last) if last else None})


@bp.get("/links.csv")
def export_links_csv() -> Response:
    filters = link_queries.LinkFilter.from_args(request.args)
    rt = get_runtime()

    def generate() -> Any:
        with rt.db.session() as session:
            yield from link_export.export_csv_chunks(
                session, filters, scheme_for=rt.settings.scheme_for
            )

    resp = Response(stream_with_context(generate()), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="links.csv"'
    return resp


@bp.get("/links/<link_id>")
def get_link(link_id: str) -> Response:
    rt = get_runtime()
    with rt.db.session() as session:
        out = link_queries.get_link_dict(session, link_id, scheme_for=rt.settings.scheme_for)
    return jsonify(out)


@bp.patch("/links/<link_id>")
def patch_link(link_id: str) -> Response:
    body = json_body()
    rt = get_runtime()
    with service.write_transaction(rt.db) as session:
        out = service.update_link(session, link_id, body, scheme_for=rt.settings.scheme_for)
    return jsonify(out)


@bp.delete("/links/<link_id>")
def delete_link(link_id: str) -> tuple[str, int]:
    with service.write_transaction(get_runtime().db) as session:
        service.delete_link(session, link_id)
    return "", 204


@bp.get("/links/<link_id>/qr.<fmt>")
def link_qr(link_id: str, fmt: str) -> Response:
    if fmt not in FORMATS:
        raise InvalidParameter("QR codes are qr.png or qr.svg", field="format")
    opts = parse_qr_options(request.args)
    rt = get_runtime()
    with rt.db.session() as session:
        data = link_export.link_qr_data(session, link_id, scheme_for=rt.settings.scheme_for)
    image = render_png(data, opts) if fmt == "png" else render_svg(data, opts)
    resp = Response(image, mimetype=QR_MIMETYPES[fmt])
    resp.headers["Cache-Control"] = QR_CACHE_CONTROL
    resp.set_etag(hashlib.sha256(image).hexdigest()[:32])
    resp.make_conditional(request)
    return resp


@bp.post("/links/qr.zip")
def links_qr_zip() -> Response:
    body = json_body()
    for key in body:
        if key not in ("ids", "campaign", "format", "size", "margin", "ec", "fg", "bg"):
            raise InvalidParameter(f"unknown field {key!r}", field=str(key))
    ids, campaign = _zip_selection(body)
    fmt = body.get("format", "png")
    if fmt not in FORMATS:
        raise InvalidParameter("format must be png or svg", field="format")
    opts = parse_qr_options(_option_args(body))
    rt = get_runtime()
    with rt.db.session() as session:
        targets = link_export.qr_targets(
            session, ids=ids, campaign=campaign, scheme_for=rt.settings.scheme_for
        )
    resp = Response(qr_zip(targets, str(fmt), opts), mimetype="application/zip")
    resp.headers["Content-Disposition"] = 'attachment; filename="qr-codes.zip"'
    return resp


def _zip_selection(body: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    ids, campaign = body.get("ids"), body.get("campaign")
    if ids is not None and campaign is not None:
        raise InvalidParameter("give ids or campaign, not both", field="campaign")
    if campaign is not None:
        if not isinstance(campaign, str) or not campaign:
            raise InvalidParameter("campaign must be a non-empty string", field="campaign")
        return None, campaign
    if not isinstance(ids, list) or not ids:
        raise InvalidParameter("ids must be a non-empty list of link ids", field="ids")
    if len(ids) > service.MAX_QR_LINKS:
        raise InvalidParameter(f"at most {service.MAX_QR_LINKS} ids", field="ids")
    for pos, item in enumerate(ids):
        if not isinstance(item, str):
            raise InvalidParameter("each id must be a string", field=f"ids[{pos}]")
    return ids, None


def _option_args(body: dict[str, Any]) -> dict[str, str]:
    args: dict[str, str] = {}
    for name in ("size", "margin", "ec", "fg", "bg"):
        value = body.get(name)
        if value is None:
            continue
        if name in ("fg", "bg") and not isinstance(value, str):
            raise InvalidParameter(f"{name} must be a colour as #rrggbb", field=name)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)  # JSON has one number type: 4.0 is the integer 4
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidParameter(f"{name} must be a number or a string", field=name)
        args[name] = str(value)
    return args
