"""The JSON API under /api/v1 (Bearer API keys)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g, request

from linkgen.domain.errors import Forbidden, InvalidParameter, Unauthorized
from linkgen.runtime import get_runtime
from linkgen.services.accounts import Principal, hash_key, principal_for_key

bp = Blueprint("api", __name__, url_prefix="/api/v1")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.before_request
def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    principal = _principal(raw.strip())
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    if principal.scope != "admin" and request.method not in READ_METHODS:
        raise Forbidden("this API key is read-only")
    g.principal = principal


# Known keys are remembered for a few seconds (per app, so per process) so a burst of API calls
# (link creation above all) does not pay a database query each; a revoked key therefore stops
# working within KEY_CACHE_SECONDS everywhere. Unknown keys are never cached.
KEY_CACHE_SECONDS = 5.0
KEY_CACHE_MAX = 10_000


def _principal(raw: str) -> Principal | None:
    rt = get_runtime()
    cache: dict[str, tuple[float, Principal]] = rt.extras.setdefault("api_key_cache", {})
    digest = hash_key(raw)
    now = time.monotonic()
    hit = cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    with rt.db.session() as session:
        principal = principal_for_key(session, raw)
    if principal is None:
        cache.pop(digest, None)
        return None
    if len(cache) >= KEY_CACHE_MAX:
        cache.clear()
    cache[digest] = (now + KEY_CACHE_SECONDS, principal)
    return principal


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
    from linkgen.web.api import (  # noqa: F401
        apps,
        integrations,
        links,
        postbacks,
        stats,
        templates,
    )
