"""The CleverTap integration of an app: /api/v1/apps/{app_id}/integrations/clevertap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, jsonify, request

from linkgen.delivery.clevertap_client import check_integration
from linkgen.runtime import get_runtime
from linkgen.services import integrations as service
from linkgen.web.api import bp, current_principal, json_body
from linkgen.web.pagination import decode_int_cursor, encode_cursor, parse_limit

BASE = "/apps/<app_id>/integrations/clevertap"


@bp.get(BASE)
def get_integration(app_id: str) -> Response:
    rt = get_runtime()
    with rt.db.session() as session:
        out = service.get_integration(session, app_id, api_base=rt.settings.clevertap_api_base)
    return jsonify(out)


@bp.put(BASE)
def put_integration(app_id: str) -> Response:
    body = json_body()
    rt = get_runtime()
    with rt.db.session() as session:
        out = service.put_integration(
            session,
            app_id,
            body,
            actor=current_principal().label,
            api_base=rt.settings.clevertap_api_base,
        )
    return jsonify(out)


@bp.get(f"{BASE}/audit")
def list_integration_audit(app_id: str) -> Response:
    limit = parse_limit(request.args)
    before = decode_int_cursor(request.args)
    with get_runtime().db.session() as session:
        rows, last = service.list_audit(session, app_id, before=before, limit=limit)
        items = [service.audit_to_dict(r) for r in rows]
    return jsonify({"items": items, "next": encode_cursor(last) if last else None})


def check_connection(app_id: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
    """CleverTap's answer to the app's credentials (stored, or with `body`'s unsaved changes):
    `{"ok", "status", "message"}`. The API's test endpoint and the settings page's button."""
    rt = get_runtime()
    with rt.db.session() as session:
        settings = service.settings_to_test(session, app_id, body)
    # The database session is closed before the outbound call, which has its own timeout.
    ok, status, message = check_integration(
        settings, api_base=rt.settings.clevertap_api_base, client=rt.clevertap_client
    )
    return {"ok": ok, "status": status, "message": message}


@bp.post(f"{BASE}/test")
def test_integration(app_id: str) -> Response:
    """Check the credentials (stored, or the body's unsaved changes) against the region."""
    return jsonify(check_connection(app_id, json_body() if request.data else None))
