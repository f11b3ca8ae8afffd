"""OneLink templates: POST/GET/PATCH /api/v1/templates."""

from __future__ import annotations

from flask import Response, jsonify, request

from linkgen.runtime import get_runtime
from linkgen.services import catalog
from linkgen.web.api import bp, json_body
from linkgen.web.pagination import decode_int_cursor, encode_cursor, parse_limit


@bp.post("/templates")
def create_template() -> tuple[Response, int]:
    body = json_body()
    rt = get_runtime()
    with rt.db.session() as session:
        t = catalog.create_template_record(session, body, rt.settings.link_domains)
        out = catalog.template_to_dict(t)
    return jsonify(out), 201


@bp.get("/templates")
def list_templates() -> Response:
    limit = parse_limit(request.args)
    after = decode_int_cursor(request.args)
    with get_runtime().db.session() as session:
        rows, last = catalog.list_templates(session, after=after, limit=limit)
        items = [catalog.template_to_dict(t) for t in rows]
    return jsonify({"items": items, "next": encode_cursor(last) if last else None})


@bp.get("/templates/<template_id>")
def get_template(template_id: str) -> Response:
    with get_runtime().db.session() as session:
        return jsonify(catalog.template_to_dict(catalog.get_template(session, template_id)))


@bp.patch("/templates/<template_id>")
def patch_template(template_id: str) -> Response:
    body = json_body()
    rt = get_runtime()
    with rt.db.session() as session:
        t = catalog.update_template_record(session, template_id, body, rt.settings.link_domains)
        out = catalog.template_to_dict(t)
    return jsonify(out)
