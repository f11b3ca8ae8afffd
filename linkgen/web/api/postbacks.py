"""The postback log: GET /api/v1/postbacks, GET /api/v1/postbacks/{id}, POST .../retry."""

from __future__ import annotations

from flask import Response, jsonify, request

from linkgen.domain.errors import NotFound
from linkgen.domain.validate import is_digits
from linkgen.runtime import get_runtime
from linkgen.services import postbacks as service
from linkgen.storage.types import utcnow
from linkgen.web.api import bp
from linkgen.web.pagination import decode_int_cursor, encode_cursor, parse_limit


def _postback_id(raw: str) -> int:
    if not is_digits(raw) or len(raw) > 18:
        raise NotFound(f"no postback {raw!r}", field="postback_id")
    return int(raw)


@bp.get("/postbacks")
def list_postbacks() -> Response:
    limit = parse_limit(request.args)
    before = decode_int_cursor(request.args)
    with get_runtime().db.session() as session:
        rows, last = service.list_postbacks(
            session,
            app_id=request.args.get("app_id") or None,
            status=request.args.get("status"),
            kind=request.args.get("kind"),
            before=before,
            limit=limit,
        )
        items = [service.postback_to_dict(p) for p in rows]
    return jsonify({"items": items, "next": encode_cursor(last) if last else None})


@bp.get("/postbacks/<postback_id>")
def get_postback(postback_id: str) -> Response:
    with get_runtime().db.session() as session:
        row = service.get_postback(session, _postback_id(postback_id))
        return jsonify(service.postback_to_dict(row))


@bp.post("/postbacks/<postback_id>/retry")
def retry_postback(postback_id: str) -> Response:
    with get_runtime().db.session() as session:
        row = service.retry_postback(session, _postback_id(postback_id), now=utcnow())
        out = service.postback_to_dict(row)
    return jsonify(out)
