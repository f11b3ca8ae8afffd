"""The test-device view: GET /api/v1/apps/{app_id}/devices?q=... (see services/devices.py)."""

from __future__ import annotations

from flask import Response, jsonify, request

from linkgen.runtime import get_runtime
from linkgen.services import devices as service
from linkgen.storage.types import utcnow
from linkgen.web.api import bp


@bp.get("/apps/<app_id>/devices")
def device_report(app_id: str) -> Response:
    """One device's clicks, launches (with why each click was or was not chosen), events and
    postbacks."""
    days = service.parse_days(request.args.get("days"))
    with get_runtime().db.session() as session:
        out = service.device_report(session, app_id, request.args.get("q"), now=utcnow(), days=days)
    return jsonify(out)
