"""The edge: the hot API calls, answered whole in front of Flask.

SDK launches and events and single link creations come by the thousand a second, and Flask's
request context, URL routing, hooks and response object cost about a quarter of each one
(measured with py-spy on a launch). So `POST` to these endpoints is answered here, outermost in
the WSGI stack (behind only linkgen/web/proxy.py, which says who the client is), and only here:
every answer, each refusal included, comes from this module. There is no second implementation
to keep in step and nothing is handed back to Flask.

What Flask's hooks do for its own requests is done here by the same functions:

- the request id (`logs.request_id_from`), the access log line (`logs.log_access`) and the
  request metrics (`metrics_state(...).latency.observe`, labelled with the endpoint's name);
- the NUL-byte guard (`security.check_nul_bytes`), the rate limit (`ratelimit.throttle`) and the
  security headers with HSTS over https (`security.security_headers`);
- the body as `Request.get_data` reads it (`werkzeug.wsgi.get_input_stream` with the app's
  `MAX_CONTENT_LENGTH`: 413 beyond it, 400 when it stops short of its `Content-Length`);
- every exception through `errors.describe`, the mapping Flask's error handler uses.

An endpoint served here is declared with `route(blueprint, rule, handler)`: its rule goes into
Flask's URL map like any other (so `url_for`, the OpenAPI table, `OPTIONS` and the 405 with
`Allow` for other methods stay Flask's, from one map), and its `POST` is answered here. The view
Flask holds for it, `answered_by_edge`, is never reached while the edge is installed, which
`create_app` always does. Handlers return `(status, JSON value)` or raise; they see the request
as an `EdgeRequest`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import Blueprint, Flask, request
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from linkgen import logs
from linkgen.runtime import Runtime, get_runtime
from linkgen.storage.db import WouldWait
from linkgen.web import errors, metrics, ratelimit, security

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class EdgeRequest:
    """What a handler may look at: the runtime, the environ, the rule's captured values."""

    runtime: Runtime
    environ: dict[str, Any]
    args: dict[str, str]
    loads: Callable[[bytes], Any]  # the app's JSON parser (too deep is invalid JSON)
    max_body: int

    @property
    def remote_addr(self) -> str | None:
        """The client's address, as Flask's `request.remote_addr` gives it."""
        addr = self.environ.get("REMOTE_ADDR")
        return str(addr) if addr else None

    def header(self, name: str) -> str | None:
        """A request header, by its HTTP name."""
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        return None if value is None else str(value)

    def body(self) -> bytes:
        """The body, read as `Request.get_data` reads it (413 past MAX_CONTENT_LENGTH, 400 when
        the client stops short of its Content-Length). Read it once, after authentication."""
        stream = get_input_stream(self.environ, max_content_length=self.max_body or None)
        return bytes(stream.read())


Handler = Callable[[EdgeRequest], tuple[int, Any]]

# endpoint name ("sdk.post_launch") -> its handler; filled by `route`, read by `install`.
_HANDLERS: dict[str, Handler] = {}


def route(bp: Blueprint, rule: str, handler: Handler) -> None:
    """Declare `POST rule` on `bp` as the edge's: the endpoint is `handler`'s name."""
    bp.add_url_rule(rule, handler.__name__, answered_by_edge, methods=["POST"])
    _HANDLERS[f"{bp.name}.{handler.__name__}"] = handler


def answered_by_edge(**_: str) -> NoReturn:
    """Flask's view for an edge endpoint: the edge answers every POST to it first."""
    raise RuntimeError(f"{request.endpoint} is answered by linkgen/web/edge.py, not installed")


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    endpoint: str
    handler: Handler


_PLACEHOLDER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def _pattern(rule: str) -> re.Pattern[str]:
    """A Flask rule's path as a regex: each `<name>` is one path segment, as Flask matches it."""
    parts = _PLACEHOLDER.split(rule)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/\\x00]+)" for i, part in enumerate(parts)
    )
    return re.compile(regex)


class Edge:
    """WSGI middleware answering every POST to the edge's endpoints (see the docstring)."""

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = inner
        self.runtime = get_runtime(app)
        rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
        self.routes = [
            _Route(_pattern(rules[endpoint]), endpoint, handler)
            for endpoint, handler in _HANDLERS.items()
        ]
        self.max_body = int(app.config.get("MAX_CONTENT_LENGTH") or 0)
        self.loads: Callable[[bytes], Any] = app.json.loads
        self.limiter = ratelimit.rate_limiter(app)
        self.latency = metrics.metrics_state(self.runtime).latency
        self.access = logging.getLogger(logs.ACCESS_LOGGER)
        # What jsonify sends outside debug mode, with Flask's own fallback for other types.
        self.encoder = json.JSONEncoder(
            ensure_ascii=True,
            separators=(",", ":"),
            default=app.json.default,  # type: ignore[attr-defined]
        )
        self.answered = 0  # requests answered here (tests and benchmarks read it)

    def answers(self, path: str) -> bool:
        """Whether a `POST` to `path` is one of the edge's."""
        return any(candidate.pattern.fullmatch(path) for candidate in self.routes)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        for candidate in self.routes:
            match = candidate.pattern.fullmatch(path)
            if match is not None:
                break
        else:
            return self.app(environ, start_response)
        started = time.perf_counter()
        request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        token = logs.CURRENT_REQUEST_ID.set(request_id)
        try:
            status, data, extra = self._answer(candidate, environ, match.groupdict(), path)
        finally:
            logs.CURRENT_REQUEST_ID.reset(token)
        self.answered += 1
        https = environ.get("wsgi.url_scheme") == "https"
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            *extra,
            *security.security_headers(False, https),
            (logs.REQUEST_ID_HEADER, request_id),
        ]
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}", headers)
        seconds = time.perf_counter() - started
        self.latency.observe(candidate.endpoint, "POST", status, seconds)
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

    def _answer(
        self, endpoint: _Route, environ: dict[str, Any], args: dict[str, str], path: str
    ) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        """(status, body, extra headers) of one request: the handler's, or its error's."""
        bucket = ratelimit.ENDPOINT_BUCKETS.get(endpoint.endpoint)
        key = ""
        try:
            security.check_nul_bytes(path, environ.get("QUERY_STRING", "").encode("latin-1"))
            if bucket is not None:
                key = ratelimit.caller_key(
                    bucket,
                    remote_addr=environ.get("REMOTE_ADDR"),
                    app_id=args.get("app_id", ""),
                    authorization=environ.get("HTTP_AUTHORIZATION", ""),
                )
                ratelimit.throttle(self.limiter, bucket, key)
            req = EdgeRequest(self.runtime, environ, args, self.loads, self.max_body)
            status, out = endpoint.handler(req)
            return status, (self.encoder.encode(out) + "\n").encode(), ()
        except WouldWait:
            # Tried on the event loop and handed to a thread, where it runs again from the
            # start: nothing was written, and the token goes back so it is taken once.
            if bucket is not None:
                self.limiter.give_back(bucket, key)
            raise
        except Exception as exc:  # noqa: BLE001 - every error is answered, as Flask answers it
            answer = errors.describe(exc, "POST", path)
            data = (self.encoder.encode(answer.body()) + "\n").encode()
            return answer.status, data, answer.headers


def install(app: Flask) -> Edge:
    """Put the edge in front of the app's WSGI stack (after every blueprint is in)."""
    edge = Edge(app, app.wsgi_app)
    app.wsgi_app = edge  # type: ignore[method-assign]
    get_runtime(app).edge = edge
    return edge
