"""The hot API calls' usual case without Flask's dispatch; Flask answers everything else.

SDK launches and events and single link creations come by the thousand a second, and Flask's
request context, URL routing, hooks and response object cost about a quarter of each one
(measured with py-spy on a launch). `FastPath` is the outermost WSGI layer: for a `POST` to one
of `ROUTES` with a JSON body it does what the Flask hooks do (request id and access log, the
request metrics, the rate limit, the security headers) and calls the same service functions the
views call, then answers with the same status, headers and bytes.

Only the usual case is answered here. Anything else raises `Fallback` before anything is
stored, and the request goes to Flask with the body it sent, to be answered exactly as before:
a query string, a missing, chunked, oversized or truncated body, a `ws`/`wss` scheme, no key or
an unknown one, a read-only key, a throttled caller, a body that is not a JSON object, a
validation error, a conflict, a database error. The service calls made here are single
transactions that either commit or leave nothing behind, so Flask never sees a half-done
request. What the fast path already did travels with the request in its environ, so Flask does
not do it twice: the rate-limit token it took (`ratelimit.TAKEN_ENVIRON_KEY`) and the request id
it gave (`logs.REQUEST_ID_ENVIRON_KEY`, the id of every record logged so far).

An error once something may be stored (an epoch listener failing after a link's transaction
committed, an answer that cannot be encoded) must not be answered by running the view again:
the request goes to Flask with the exception (`ERROR_ENVIRON_KEY`), which a hook raises before
any view runs, so Flask's error handlers answer it as they would have answered it raised by the
view. Debug mode turns the fast path off.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, request
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length

from linkgen import logs
from linkgen.domain.validate import bearer_token
from linkgen.runtime import Runtime, get_runtime
from linkgen.web import metrics, ratelimit, security

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The environ key of an exception the fast path hands to Flask to raise (see the docstring).
ERROR_ENVIRON_KEY = "linkgen.fastpath.error"


class Fallback(Exception):
    """This request is Flask's to answer (a refusal, an error, anything out of the ordinary)."""


@dataclass(frozen=True)
class FastRequest:
    """What a fast handler may look at."""

    environ: dict[str, Any]
    args: tuple[str, ...]  # the parts the route's pattern captured
    body: bytes

    @property
    def remote_addr(self) -> str | None:
        """The client's address, as Flask's `request.remote_addr` gives it."""
        addr = self.environ.get("REMOTE_ADDR")
        return str(addr) if addr else None

    def header(self, name: str) -> str | None:
        """A request header, by its HTTP name."""
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        return None if value is None else str(value)


Handler = Callable[[FastRequest], tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    """One fast route: the path, Flask's endpoint name for it (metrics label and rate-limit
    bucket) and the handler, which returns (status, JSON value) or raises `Fallback`."""

    pattern: re.Pattern[str]
    endpoint: str
    handler: Handler


class FastPath:
    """WSGI middleware answering `routes` in their usual case (see the module's docstring)."""

    def __init__(self, app: Flask, inner: WSGIApp, routes: list[Route]) -> None:
        self.app = inner
        self.routes = routes
        runtime = get_runtime(app)
        self.enabled = not app.debug
        self.max_body = int(app.config.get("MAX_CONTENT_LENGTH") or 0)
        self.limiter = ratelimit.rate_limiter(app)
        self.latency = metrics.metrics_state(runtime).latency
        self.access = logging.getLogger(logs.ACCESS_LOGGER)
        # What jsonify sends outside debug mode, with Flask's own fallback for other types.
        self.encoder = json.JSONEncoder(
            ensure_ascii=True,
            separators=(",", ":"),
            default=app.json.default,  # type: ignore[attr-defined]
        )
        self.answered = 0  # requests answered here (tests and benchmarks read these)
        self.fallbacks = 0  # requests matched here but handed to Flask

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            not self.enabled
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or environ.get("wsgi.url_scheme") not in ("http", "https")  # ws/wss: Flask's 400
        ):
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is not None:
                break
        else:
            return self.app(environ, start_response)
        # Content-Length as Flask reads it (None when chunked or missing, 0 when malformed).
        length = get_content_length(environ)
        if length is None or not 0 < length <= self.max_body:
            return self.app(environ, start_response)
        started = time.perf_counter()
        body = self._read_body(environ, length)
        request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        environ[logs.REQUEST_ID_ENVIRON_KEY] = request_id
        token = logs.CURRENT_REQUEST_ID.set(request_id)
        try:
            if len(body) != length:
                raise Fallback  # truncated, or longer than said: Flask judges the body it reads
            req = FastRequest(environ, match.groups(), body)
            status, out = self._handle(route, req)
            data = (self.encoder.encode(out) + "\n").encode()
        except Fallback:
            return self._hand_over(environ, start_response, body)
        except Exception as exc:  # noqa: BLE001 - Flask's error handlers answer it, as raised
            environ[ERROR_ENVIRON_KEY] = exc
            return self._hand_over(environ, start_response, body)
        finally:
            logs.CURRENT_REQUEST_ID.reset(token)
        self.answered += 1
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            *security.JSON_HEADERS,
        ]
        if environ["wsgi.url_scheme"] == "https":
            headers.append(("Strict-Transport-Security", security.HSTS))
        headers.append((logs.REQUEST_ID_HEADER, request_id))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}", headers)
        seconds = time.perf_counter() - started
        self.latency.observe(route.endpoint, "POST", status, seconds)
        logs.log_access(
            self.access,
            "POST",
            path,
            status,
            round(seconds * 1000, 2),
            request_id,
            environ.get("REMOTE_ADDR"),
        )
        return [data]

    def _hand_over(
        self, environ: dict[str, Any], start_response: Callable[..., Any], body: bytes
    ) -> Any:
        """Let Flask answer, reading the body this layer already read."""
        self.fallbacks += 1
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    def _read_body(self, environ: dict[str, Any], length: int) -> bytes:
        """The body as Flask would read it: `length` bytes, or with `wsgi.input_terminated` the
        whole stream (up to one byte over MAX_CONTENT_LENGTH: Flask's 413 from there on)."""
        stream = environ["wsgi.input"]
        if "wsgi.input_terminated" not in environ:
            return bytes(stream.read(length))
        body = bytes(stream.read(length + 1))
        if len(body) > length:
            body += stream.read(max(0, self.max_body + 1 - len(body)))
        return body

    def _handle(self, route: Route, req: FastRequest) -> tuple[int, Any]:
        bucket = ratelimit.ENDPOINT_BUCKETS.get(route.endpoint)
        if bucket is not None:
            key = ratelimit.caller_key(
                bucket,
                remote_addr=req.remote_addr,
                app_id=req.args[0] if req.args else "",
                authorization=req.header("Authorization") or "",
            )
            wait = self.limiter.take(bucket, key)
            req.environ[ratelimit.TAKEN_ENVIRON_KEY] = (bucket, key, wait)  # Flask takes no other
            if wait > 0.0:
                raise Fallback  # Flask answers 429 with Retry-After
        return route.handler(req)


# -- the routes ------------------------------------------------------------------------------


def _json_object(app: Flask, body: bytes) -> dict[str, Any]:
    """The body as a JSON object, parsed as the views parse it; anything else is Flask's."""
    try:
        data = app.json.loads(body)
    except ValueError:
        raise Fallback from None
    if not isinstance(data, dict):
        raise Fallback
    return data


def _sdk_routes(app: Flask, runtime: Runtime) -> list[Route]:
    from linkgen.services.attribution import authenticate_sdk, handle_event, handle_launch
    from linkgen.web.sdk import app_cache

    db = runtime.db
    cache = app_cache(runtime)
    api_base = runtime.settings.clevertap_api_base

    def launch(req: FastRequest) -> tuple[int, Any]:
        try:
            sdk_app = authenticate_sdk(db, cache, req.args[0], req.header("X-SDK-Key"))
            return handle_launch(
                db,
                sdk_app,
                _json_object(app, req.body),
                cache=cache,
                request_ip=req.remote_addr,
                request_ua=req.header("User-Agent"),
                api_base=api_base,
                privacy=runtime.settings.privacy,
            )
        except Exception as exc:  # nothing was stored: let Flask answer
            raise Fallback from exc

    def event(req: FastRequest) -> tuple[int, Any]:
        try:
            sdk_app = authenticate_sdk(db, cache, req.args[0], req.header("X-SDK-Key"))
            return handle_event(
                db, sdk_app, _json_object(app, req.body), cache=cache, api_base=api_base
            )
        except Exception as exc:  # nothing was stored: let Flask answer
            raise Fallback from exc

    return [
        Route(re.compile(r"/api/v1/sdk/([A-Za-z0-9._-]+)/launches"), "sdk.post_launch", launch),
        Route(re.compile(r"/api/v1/sdk/([A-Za-z0-9._-]+)/events"), "sdk.post_event", event),
    ]


def _link_routes(app: Flask, runtime: Runtime) -> list[Route]:
    from linkgen.services import links as service
    from linkgen.web.api import api_key_cache

    db = runtime.db
    keys = api_key_cache(runtime)
    scheme_for = runtime.settings.scheme_for

    def create(req: FastRequest) -> tuple[int, Any]:
        raw = bearer_token(req.header("Authorization") or "")
        if raw is None:
            raise Fallback
        try:
            principal = keys.principal(raw)
            if principal is None or principal.scope != "admin":
                raise Fallback
            pending = service.prepare_one(
                db, _json_object(app, req.body), scheme_for=scheme_for, created_by=principal.label
            )
        except Exception as exc:  # nothing was stored: let Flask answer
            raise Fallback from exc
        try:
            stored = service.write_one(db, pending)
        except Exception as exc:
            if pending.committed:
                raise  # stored all the same (an epoch listener failed): never a second write
            raise Fallback from exc  # nothing was stored: let Flask answer
        return 201, service.created_link_dict(stored)

    return [Route(re.compile(r"/api/v1/links"), "api.create_link", create)]


def install(app: Flask) -> FastPath:
    """Put the fast path in front of the app's WSGI stack (after every blueprint is in)."""
    runtime = get_runtime(app)
    routes = [*_sdk_routes(app, runtime), *_link_routes(app, runtime)]
    for route in routes:
        assert route.endpoint in app.view_functions, route.endpoint
    fast = FastPath(app, app.wsgi_app, routes)
    app.wsgi_app = fast  # type: ignore[method-assign]
    app.before_request(_raise_handed_error)
    runtime.fast_path = fast
    return fast


def _raise_handed_error() -> None:
    """Raise the exception the fast path handed over, before any view runs (last of the app's
    `before_request` hooks: the request id, timer and rate limit are Flask's as usual)."""
    exc = request.environ.get(ERROR_ENVIRON_KEY)
    if exc is not None:
        raise exc
