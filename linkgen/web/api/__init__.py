"""The JSON API under /api/v1 (Bearer API keys)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from linkgen.domain.errors import Forbidden, InvalidParameter, Unauthorized
from linkgen.runtime import get_runtime
from linkgen.services.accounts import Principal, principal_for_key

bp = Blueprint("api", __name__, url_prefix="/api/v1")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.before_request
def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    with get_runtime().db.session() as session:
        principal = principal_for_key(session, raw.strip())
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    if principal.scope != "admin" and request.method not in READ_METHODS:
        raise Forbidden("this API key is read-only")
    g.principal = principal


def current_principal() -> Principal:
    """The authenticated caller."""
    principal: Principal = g.principal
    return principal


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 naming the body."""
    if not request.data:
        raise InvalidParameter("a JSON object body is required", field="body")
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise InvalidParameter("the body must be a JSON object", field="body")
    return data


def register_views() -> None:
    """Import the view modules so their routes attach to the blueprint."""
    from linkgen.web.api import apps, templates  # noqa: F401
