"""The test-device page: enter a device id or a CleverTap ID, see what linkgen did with it."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select

from linkgen.domain.errors import LinkgenError
from linkgen.runtime import get_runtime
from linkgen.services import devices as service
from linkgen.storage.models import App
from linkgen.storage.types import utcnow
from linkgen.web.ui import bp


@bp.get("/devices")
def devices_page() -> tuple[str, int]:
    app_id = (request.args.get("app_id") or "").strip()
    q = (request.args.get("q") or "").strip()
    report = None
    error = None
    with get_runtime().db.session() as db:
        app_ids = list(db.scalars(select(App.app_id).order_by(App.app_id)))
        if app_id and q:
            try:
                days = service.parse_days(request.args.get("days"))
                report = service.device_report(db, app_id, q, now=utcnow(), days=days)
            except LinkgenError as exc:
                error = exc.message
    page = render_template(
        "devices/report.html",
        app_ids=app_ids,
        app_id=app_id or (app_ids[0] if app_ids else ""),
        q=q,
        report=report,
        error=error,
    )
    return page, 400 if error else 200
