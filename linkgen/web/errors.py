"""One place that turns errors into answers: JSON under /api/, an HTML page elsewhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from linkgen.domain.errors import LinkgenError, Throttled

log = logging.getLogger("linkgen.web")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "database_unavailable",
}


@dataclass(frozen=True)
class ErrorAnswer:
    """What an error answers, before it is written as JSON or as a page."""

    status: int
    code: str
    message: str
    field: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, object]:
        """The JSON body: `{"error": {"code", "message"[, "field"]}}`."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


def describe(exc: Exception, method: str, path: str) -> ErrorAnswer:
    """The answer to an exception raised while handling `method path`, logged as it deserves.

    The one mapping from exceptions to answers: Flask's error handlers (below) and the edge
    (linkgen/web/edge.py) both call it. `LinkgenError`s answer their own status, code and field;
    werkzeug's HTTP errors their status; a database that cannot be reached is a 503 the client
    may retry; anything else is a 500, logged with its traceback.
    """
    if isinstance(exc, LinkgenError):
        retry = (("Retry-After", str(exc.retry_after)),) if isinstance(exc, Throttled) else ()
        return ErrorAnswer(exc.status, exc.code, exc.message, exc.field, retry)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        message = "Not found." if status == 404 else (exc.description or exc.name)
        allow = exc.get_response().headers.get("Allow") if status == 405 else None
        return ErrorAnswer(
            status,
            HTTP_CODES.get(status, "error"),
            message,
            headers=(("Allow", allow),) if allow else (),
        )
    if isinstance(exc, OperationalError):
        # The database is restarting or unreachable: nothing was stored, the client may retry.
        log.warning(
            "database unavailable on %s %s: %s",
            method,
            path,
            exc.orig.__class__.__name__ if exc.orig is not None else "error",
        )
        return ErrorAnswer(
            503,
            "database_unavailable",
            "The database is unavailable; retry in a moment.",
            headers=(("Retry-After", "1"),),
        )
    log.exception("unhandled error on %s %s", method, path, exc_info=exc)
    return ErrorAnswer(500, "internal_error", "Something went wrong on our side.")


def wants_json() -> bool:
    """API and machine paths answer JSON; pages answer HTML."""
    path = request.path
    return path.startswith("/api/") or path in ("/healthz", "/metrics")


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    """Build the JSON or HTML error answer."""
    return answer_response(ErrorAnswer(status, code, message, field))


def answer_response(answer: ErrorAnswer) -> Response:
    """An `ErrorAnswer` as Flask's response: JSON under /api/ (and the machine paths), else the
    error page."""
    if wants_json():
        resp = jsonify(answer.body())
    else:
        resp = Response(
            render_template(
                "errors/error.html",
                status=answer.status,
                message=answer.message,
                field=answer.field,
            ),
            mimetype="text/html",
        )
    resp.status_code = answer.status
    for name, value in answer.headers:
        resp.headers[name] = value
    return resp


def init_app(app: Flask) -> None:
    """Answer every exception a view raises through `describe`."""

    # Flask lets routing redirects (RoutingException) through before it looks for a handler.
    @app.errorhandler(Exception)
    def _error(exc: Exception) -> Response:
        return answer_response(describe(exc, request.method, request.path))
