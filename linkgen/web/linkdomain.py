"""The link domain's own files: Apple's and Google's app association files, per Host."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from linkgen.clicks.cache import host_of
from linkgen.runtime import get_runtime
from linkgen.storage.models import App, Template

bp = Blueprint("linkdomain", __name__)


def _templates_for_host(session: Any) -> list[Template]:
    host = host_of(request.host)
    return [t for t in session.scalars(select(Template)) if host_of(t.domain) == host]


@bp.get("/.well-known/apple-app-site-association")
@bp.get("/apple-app-site-association")
def apple_app_site_association() -> Response:
    """Universal Links: every template of this domain with Universal Links on."""
    details: dict[str, dict[str, Any]] = {}
    with get_runtime().db.session() as session:
        for t in _templates_for_host(session):
            if not (t.universal_links and t.ios_app_id):
                continue
            app = session.scalar(select(App).where(App.app_id == t.ios_app_id))
            if app is None or not app.team_id or not app.bundle_id:
                continue
            app_ref = f"{app.team_id}.{app.bundle_id}"
            entry = details.setdefault(app_ref, {"appIDs": [app_ref], "components": []})
            entry["components"].append({"/": f"/{t.template_id}/*"})
            entry["components"].append({"/": f"/{t.template_id}"})
    body = {"applinks": {"details": list(details.values())}}
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/.well-known/assetlinks.json")
def assetlinks() -> Response:
    """Android App Links: every template of this domain with App Links on."""
    statements: list[dict[str, Any]] = []
    seen: set[str] = set()
    with get_runtime().db.session() as session:
        for t in _templates_for_host(session):
            if not (t.app_links and t.android_app_id) or t.android_app_id in seen:
                continue
            app = session.scalar(select(App).where(App.app_id == t.android_app_id))
            if app is None or not app.sha256_cert_fingerprints:
                continue
            seen.add(app.app_id)
            statements.append(
                {
                    "relation": ["delegate_permission/common.handle_all_urls"],
                    "target": {
                        "namespace": "android_app",
                        "package_name": app.app_id,
                        "sha256_cert_fingerprints": list(app.sha256_cert_fingerprints),
                    },
                }
            )
    resp = jsonify(statements)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp
