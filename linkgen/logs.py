"""Logging for every linkgen process: one format setting, and the web app's access log.

`configure_logging(settings)` is what each entry point calls (the `linkgen` command, `serve`,
`worker`, the WSGI module granian's workers import): it puts one handler on the root logger,
writing to stderr either today's human lines (`LINKGEN_LOG_FORMAT=text`) or one JSON object per
line (`json`) with `ts` (ISO-8601 UTC), `level`, `logger`, `message`, `process`, `exception`
when there is one, and every `extra` field of the record. Calling it again replaces the handler
it installed, so it is safe from several entry points in one process.

`init_app(app)` adds the access log: one line per request Flask dispatches (the JSON API, the
SDK endpoints, the web app, /metrics and /healthz at DEBUG, the link domain's fall-through
404s). Redirects never reach Flask (`linkgen/clicks/handler.py` answers them in front of it), so
nothing is logged per click. Each line has the method, the path WITHOUT its query string (it can
carry device ids, customer ids, tokens), the status, the duration, the client's address (the one
linkgen/web/proxy.py resolved: the real client behind a trusted proxy) and a request id: the
caller's `X-Request-Id` when it is well-formed, a new one otherwise, echoed in the response's
`X-Request-Id` and attached to every record logged while the request runs. No header, body or
cookie is logged, so no secret can reach the access log.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, Response, g, has_request_context, request

from linkgen.config import Settings

ACCESS_LOGGER = "linkgen.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-Id"
# What a proxy's or client's request id may look like (UUIDs, hex, trace ids); anything else is
# replaced, so a header cannot inject text into the logs.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")
MAX_LOGGED_PATH = 512
# Probes answer every few seconds: their lines are DEBUG so they do not drown the rest.
QUIET_PATHS = frozenset({"/healthz", "/metrics"})

# Libraries that say at INFO what is only of interest when debugging (alembic's plugin set-up on
# every command, httpx's line per CleverTap call): WARNING unless LINKGEN_LOG_LEVEL=DEBUG.
CHATTY_LIBRARIES = ("alembic.runtime.plugins", "httpx", "httpcore")

# The attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


# The id of the request this thread is answering outside Flask (linkgen/web/edge.py); inside
# Flask it is `g.request_id`.
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("linkgen_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Attach the current request's id to records logged while a request runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = CURRENT_REQUEST_ID.get()
            if request_id is None and has_request_context():
                request_id = g.get("request_id")
            if request_id is not None:
                record.request_id = request_id
        return True


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter for `LINKGEN_LOG_FORMAT`."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record of this process to stderr (or `stream`) in the configured format."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_linkgen", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._linkgen = True  # type: ignore[attr-defined]  # marks the handler this module owns
    handler.setFormatter(make_formatter(settings.log_format))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    chatty = logging.NOTSET if settings.log_level == "DEBUG" else logging.WARNING
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(chatty)
    return handler


def granian_log_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` for granian's own loggers, in linkgen's format.

    Granian applies it in its main process and in each worker it spawns; the root logger is
    left alone (the WSGI module configures it with `configure_logging`).
    """
    formatter: dict[str, Any] = (
        {"()": "linkgen.logs.JsonFormatter"}
        if settings.log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "linkgen",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"linkgen": formatter},
        "handlers": {"linkgen": handler},
        "loggers": {
            name: {"handlers": ["linkgen"], "level": settings.log_level, "propagate": False}
            for name in ("_granian", "granian.access")
        },
    }


# -- the access log ---------------------------------------------------------------------------


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is well-formed, otherwise a new one."""
    if value and REQUEST_ID_RE.fullmatch(value):
        return value
    # 128 random bits as 32 hex digits, like a uuid4's hex, without a system call per request:
    # an id tells requests apart in the logs, it guards nothing.
    return f"{random.getrandbits(128):032x}"


def loggable_path(path: str) -> str:
    """The path as one printable line (control characters escaped), cut to a bounded length;
    an invitation link's token is left out (it is a password until used)."""
    if path.startswith("/invite/"):
        return "/invite/<token>"
    if len(path) > MAX_LOGGED_PATH:
        path = path[:MAX_LOGGED_PATH] + "..."
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def init_app(app: Flask) -> None:
    """Register the request id and access log hooks (call before the other before_request)."""
    access = logging.getLogger(ACCESS_LOGGER)

    @app.before_request
    def _start_request() -> None:
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.access_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("access_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else 0.0
        log_access(
            access,
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            request_id,
            request.remote_addr,
        )
        return response


def log_access(
    access: logging.Logger,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    request_id: str,
    client: str | None,
) -> None:
    """One access log line (DEBUG for the health and metrics paths, INFO for the rest)."""
    level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
    if not access.isEnabledFor(level):
        return
    path = loggable_path(path)
    access.log(
        level,
        "%s %s %d %.1fms id=%s client=%s",
        method,
        path,
        status,
        duration_ms,
        request_id,
        client or "-",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": request_id,
            "client": client,
        },
    )
