"""The link domain's own files: Apple's and Google's app association files, per Host."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from linkgen.runtime import get_runtime
from linkgen.services import association

bp = Blueprint("linkdomain", __name__)


@bp.get(association.AASA_PATH)
@bp.get("/apple-app-site-association")
def apple_app_site_association() -> Response:
    """Universal Links: every template of this domain with Universal Links on."""
    with get_runtime().db.session() as session:
        body = association.apple_app_site_association(session, request.host)
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get(association.ASSETLINKS_PATH)
def assetlinks() -> Response:
    """Android App Links: every template of this domain with App Links on."""
    with get_runtime().db.session() as session:
        statements = association.assetlinks(session, request.host)
    resp = jsonify(statements)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp
