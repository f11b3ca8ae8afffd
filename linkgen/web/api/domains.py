"""Branded domains: POST/GET /api/v1/domains, GET/DELETE /api/v1/domains/{domain}."""

from __future__ import annotations

from flask import Response, jsonify, request

from linkgen.runtime import get_runtime
from linkgen.services import domains as service
from linkgen.web.api import bp, current_principal, json_body
from linkgen.web.pagination import decode_int_cursor, encode_cursor, parse_limit


def _points_to() -> str:
    """The host this API was reached at: the name a branded domain's CNAME should point to."""
    return request.host.partition(":")[0] if not request.host.startswith("[") else request.host


@bp.post("/domains")
def add_domain() -> tuple[Response, int]:
    body = json_body()
    rt = get_runtime()
    with rt.db.session() as session:
        row = service.add_domain(
            session, body, link_domains=rt.settings.link_domains, actor=current_principal().label
        )
        out = service.domain_to_dict(row, points_to=_points_to())
    return jsonify(out), 201


@bp.get("/domains")
def list_domains() -> Response:
    limit = parse_limit(request.args)
    after = decode_int_cursor(request.args)
    with get_runtime().db.session() as session:
        rows, last = service.list_domains(session, after=after, limit=limit)
        items = [service.domain_to_dict(r, points_to=_points_to()) for r in rows]
    return jsonify({"items": items, "next": encode_cursor(last) if last else None})


@bp.get("/domains/<domain>")
def get_domain(domain: str) -> Response:
    with get_runtime().db.session() as session:
        row = service.get_domain(session, domain)
        return jsonify(service.domain_to_dict(row, points_to=_points_to()))


@bp.delete("/domains/<domain>")
def delete_domain(domain: str) -> tuple[str, int]:
    with get_runtime().db.session() as session:
        service.delete_domain(session, domain)
    return "", 204
