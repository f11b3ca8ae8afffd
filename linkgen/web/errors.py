"""One place that turns errors into answers: JSON under /api/, an HTML page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from linkgen.domain.errors import LinkgenError

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


def wants_json() -> bool:
    """API and machine paths answer JSON; pages answer HTML."""
    path = request.path
    return path.startswith("/api/") or path in ("/healthz", "/metrics")


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    """Build the JSON or HTML error answer."""
    if wants_json():
        body: dict[str, object] = {"code": code, "message": message}
        if field is not None:
            body["field"] = field
        resp = jsonify({"error": body})
    else:
        resp = Response(
            render_template("errors/error.html", status=status, message=message, field=field),
            mimetype="text/html",
        )
    resp.status_code = status
    return resp


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(LinkgenError)
    def _linkgen_error(exc: LinkgenError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = HTTP_CODES.get(status, "error")
        message = exc.description or exc.name
        if status == 404:
            message = "Not found."
        resp = error_response(status, code, message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            resp.headers["Allow"] = exc.get_response().headers["Allow"]
        return resp

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError) -> Response:
        # The database is restarting or unreachable: nothing was stored, the client may retry.
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.path,
            exc.orig.__class__.__name__ if exc.orig is not None else "error",
        )
        resp = error_response(
            503, "database_unavailable", "The database is unavailable; retry in a moment."
        )
        resp.headers["Retry-After"] = "1"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side.")
