"""The app SDK's endpoints: POST /api/v1/sdk/{app_id}/launches and /events (header X-SDK-Key).

Authentication (see `authenticate_sdk`): no key or a key no app has is a 401 whatever the app id;
a valid key of another app is a 404 for an unknown app id and a 401 for another app's id.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from linkgen.domain.errors import InvalidParameter
from linkgen.runtime import Runtime, get_runtime
from linkgen.services.attribution import (
    AppCache,
    SdkApp,
    authenticate_sdk,
    handle_event,
    handle_launch,
)

bp = Blueprint("sdk", __name__, url_prefix="/api/v1/sdk")


def app_cache(runtime: Runtime) -> AppCache:
    """This process's cache of SDK apps (shared with linkgen/web/fastpath.py)."""
    assert runtime.sdk_apps is not None, "create_app builds it"
    return runtime.sdk_apps


def _authenticated(runtime: Runtime, app_id: str) -> SdkApp:
    return authenticate_sdk(
        runtime.db, app_cache(runtime), app_id, request.headers.get("X-SDK-Key")
    )


def _json_body() -> Any:
    # get_data rather than request.data / get_json: those run the form parser first, which
    # cost more than the JSON parsing itself on this hot path. Any Content-Type is accepted.
    raw = request.get_data()
    if not raw:
        raise InvalidParameter("a JSON object body is required", field="body")
    try:
        data = current_app.json.loads(raw)  # the guarded provider: too deep is not JSON
    except ValueError:
        data = None
    if data is None:
        raise InvalidParameter("the body is not valid JSON", field="body")
    return data


@bp.post("/<app_id>/launches")
def post_launch(app_id: str) -> tuple[Response, int]:
    runtime = get_runtime()
    app = _authenticated(runtime, app_id)
    status, out = handle_launch(
        runtime.db,
        app,
        _json_body(),
        cache=app_cache(runtime),
        request_ip=request.remote_addr,
        request_ua=request.headers.get("User-Agent"),
        api_base=runtime.settings.clevertap_api_base,
        privacy=runtime.settings.privacy,
    )
    return jsonify(out), status


@bp.post("/<app_id>/events")
def post_event(app_id: str) -> tuple[Response, int]:
    runtime = get_runtime()
    app = _authenticated(runtime, app_id)
    status, out = handle_event(
        runtime.db,
        app,
        _json_body(),
        cache=app_cache(runtime),
        api_base=runtime.settings.clevertap_api_base,
    )
    return jsonify(out), status
