"""The app SDK's endpoints: POST /api/v1/sdk/{app_id}/launches and /events (header X-SDK-Key).

Both are the edge's (linkgen/web/edge.py answers them whole). Authentication (see
`authenticate_sdk`): no key or a key no app has is a 401 whatever the app id; a valid key of
another app is a 404 for an unknown app id and a 401 for another app's id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint

from linkgen.domain.errors import InvalidParameter
from linkgen.runtime import Runtime
from linkgen.services.attribution import handle_event, handle_launch
from linkgen.services.sdk_apps import AppCache, SdkApp, authenticate_sdk
from linkgen.web import edge
from linkgen.web.edge import EdgeRequest

bp = Blueprint("sdk", __name__, url_prefix="/api/v1/sdk")


def app_cache(runtime: Runtime) -> AppCache:
    """This process's cache of SDK apps."""
    assert runtime.sdk_apps is not None, "create_app builds it"
    return runtime.sdk_apps


def _authenticated(req: EdgeRequest) -> SdkApp:
    rt = req.runtime
    return authenticate_sdk(rt.db, app_cache(rt), req.args["app_id"], req.header("X-SDK-Key"))


def json_body(raw: bytes, loads: Callable[[bytes], Any]) -> Any:
    """An SDK call's JSON body (any Content-Type is accepted), or a 400 naming the body."""
    if not raw:
        raise InvalidParameter("a JSON object body is required", field="body")
    try:
        data = loads(raw)  # the guarded provider: too deep is not JSON
    except ValueError:
        data = None
    if data is None:
        raise InvalidParameter("the body is not valid JSON", field="body")
    return data


def post_launch(req: EdgeRequest) -> tuple[int, Any]:
    """A launch of the app: install, re-engagement or organic open, attributed."""
    app = _authenticated(req)
    rt = req.runtime
    return handle_launch(
        rt.db,
        app,
        json_body(req.body(), req.loads),
        cache=app_cache(rt),
        request_ip=req.remote_addr,
        request_ua=req.header("User-Agent"),
        api_base=rt.settings.clevertap_api_base,
        privacy=rt.settings.privacy,
    )


def post_event(req: EdgeRequest) -> tuple[int, Any]:
    """An in-app event of an attributed user."""
    app = _authenticated(req)
    rt = req.runtime
    return handle_event(
        rt.db,
        app,
        json_body(req.body(), req.loads),
        cache=app_cache(rt),
        api_base=rt.settings.clevertap_api_base,
    )


edge.route(bp, "/<app_id>/launches", post_launch)
edge.route(bp, "/<app_id>/events", post_event)
