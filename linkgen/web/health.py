"""GET /healthz and GET /metrics."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select

from linkgen.runtime import get_runtime
from linkgen.storage.models import WorkerHeartbeat
from linkgen.storage.types import utcnow

bp = Blueprint("health", __name__)

WORKER_STALE_AFTER = timedelta(seconds=30)


def worker_state() -> str:
    """'running' when a delivery worker beat in the last 30 seconds, else 'stopped'; 'disabled'
    when this service runs none (LINKGEN_WORKER=false, or `linkgen serve --no-worker`)."""
    if not get_runtime().settings.run_worker:
        return "disabled"
    try:
        with get_runtime().db.session() as session:
            last = session.scalar(select(func.max(WorkerHeartbeat.seen_at)))
    except Exception:  # noqa: BLE001 - health must answer even when the query fails
        return "stopped"
    if last is not None and utcnow() - last < WORKER_STALE_AFTER:
        return "running"
    return "stopped"


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while the database answers ("degraded" if a worker that should run does not: the
    link domain still serves), 503 when it does not."""
    db_ok = get_runtime().db.ping()
    worker = worker_state() if db_ok else "stopped"
    body = {
        "status": "ok" if db_ok and worker != "stopped" else "degraded",
        "database": "ok" if db_ok else "unreachable",
        "worker": worker,
    }
    return jsonify(body), 200 if db_ok else 503
