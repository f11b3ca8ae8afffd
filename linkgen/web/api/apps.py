"""Apps: POST/GET/PATCH /api/v1/apps, and the test-device report of an app."""

from __future__ import annotations

from flask import Response, jsonify, request

from linkgen.runtime import get_runtime
from linkgen.services import catalog, devices
from linkgen.web.api import bp, json_body
from linkgen.web.pagination import decode_int_cursor, encode_cursor, parse_limit


@bp.post("/apps")
def create_app() -> tuple[Response, int]:
    body = json_body()
    with get_runtime().db.session() as session:
        app, sdk_key = catalog.create_app_record(session, body)
        out = catalog.app_to_dict(app, sdk_key=sdk_key)
    return jsonify(out), 201


@bp.get("/apps")
def list_apps() -> Response:
    limit = parse_limit(request.args)
    after = decode_int_cursor(request.args)
    with get_runtime().db.session() as session:
        rows, last = catalog.list_apps(session, after=after, limit=limit)
        items = [catalog.app_to_dict(a) for a in rows]
    return jsonify({"items": items, "next": encode_cursor(last) if last else None})


@bp.get("/apps/<app_id>")
def get_app(app_id: str) -> Response:
    with get_runtime().db.session() as session:
        return jsonify(catalog.app_to_dict(catalog.get_app(session, app_id)))


@bp.patch("/apps/<app_id>")
def patch_app(app_id: str) -> Response:
    body = json_body()
    with get_runtime().db.session() as session:
        app, sdk_key = catalog.update_app_record(session, app_id, body)
        out = catalog.app_to_dict(app, sdk_key=sdk_key)
    return jsonify(out)


@bp.get("/apps/<app_id>/devices")
def get_device_report(app_id: str) -> Response:
    """A test device: `?device_id=` or `?customer_user_id=` (the CleverTap ID)."""
    with get_runtime().db.session() as session:
        return jsonify(
            devices.device_report(
                session,
                app_id,
                device_id=request.args.get("device_id"),
                customer_user_id=request.args.get("customer_user_id"),
            )
        )
