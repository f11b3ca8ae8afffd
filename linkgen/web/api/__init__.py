"""The JSON API under /api/v1 (Bearer API keys)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, request

from linkgen.domain.errors import Forbidden, InvalidParameter, Unauthorized
from linkgen.domain.validate import bearer_token
from linkgen.runtime import Runtime, get_runtime
from linkgen.services.accounts import ApiKeyCache, Principal

bp = Blueprint("api", __name__, url_prefix="/api/v1")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.before_request
def _authenticate() -> None:
    raw = bearer_token(request.headers.get("Authorization", ""))
    if raw is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    principal = _principal(raw)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    if principal.scope != "admin" and request.method not in READ_METHODS:
        raise Forbidden("this API key is read-only")
    g.principal = principal


def _principal(raw: str) -> Principal | None:
    return api_key_cache(get_runtime()).principal(raw)


def api_key_cache(rt: Runtime) -> ApiKeyCache:
    """This process's cache of valid API keys."""
    assert rt.api_keys is not None, "create_app builds it"
    return rt.api_keys


def current_principal() -> Principal:
    """The authenticated caller."""
    principal: Principal = g.principal
    return principal


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 naming the body."""
    # get_data, not request.data: that one would first try to parse the body as a form.
    if not request.get_data(cache=True):
        raise InvalidParameter("a JSON object body is required", field="body")
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise InvalidParameter("the body must be a JSON object", field="body")
    return data


# What `jsonify` sends outside debug mode (compact, ASCII only, keys in insertion order), from an
# encoder built once: jsonify builds a new one per call, a measurable part of a link creation.
JSON_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def json_response(data: dict[str, Any], status: int = 200) -> Response:
    """A JSON answer for the hot paths: the same bytes as `jsonify` for plain JSON values."""
    return Response(JSON_ENCODER.encode(data) + "\n", status=status, mimetype="application/json")


def register_views() -> None:
    """Import the view modules so their routes attach to the blueprint."""
    from linkgen.web.api import (  # noqa: F401
        apps,
        devices,
        domains,
        integrations,
        links,
        postbacks,
        stats,
        templates,
    )
