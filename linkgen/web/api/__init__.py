"""The JSON API under /api/v1 (Bearer API keys)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, request

from linkgen.domain.errors import Forbidden, InvalidParameter, Unauthorized
from linkgen.domain.validate import bearer_token
from linkgen.runtime import Runtime, get_runtime
from linkgen.services.accounts import ApiKeyCache, Principal

bp = Blueprint("api", __name__, url_prefix="/api/v1")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.before_request
def _authenticate() -> None:
    g.principal = authenticate(
        api_key_cache(get_runtime()), request.headers.get("Authorization", ""), request.method
    )


def authenticate(keys: ApiKeyCache, authorization: str, method: str) -> Principal:
    """The caller of an API request, or a 401 (no key, an unknown or revoked one) or a 403 (a
    read-only key on a write); the blueprint's hook and linkgen/web/edge.py's handlers call it."""
    raw = bearer_token(authorization)
    if raw is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    principal = keys.principal(raw)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    if principal.scope != "admin" and method not in READ_METHODS:
        raise Forbidden("this API key is read-only")
    return principal


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
    return json_object(request.get_data(cache=True), current_app.json.loads)


def json_object(raw: bytes, loads: Callable[[bytes], Any]) -> dict[str, Any]:
    """A body that must be a JSON object (any Content-Type), or a 400 naming the body."""
    if not raw:
        raise InvalidParameter("a JSON object body is required", field="body")
    try:
        data = loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidParameter("the body must be a JSON object", field="body")
    return data


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
