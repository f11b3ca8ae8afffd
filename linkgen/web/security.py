"""Security headers on every answer Flask gives (pages, API, files); see docs/security.md.

Pages get a Content-Security-Policy that allows scripts, styles, fonts and connections only from
this origin (templates must not use inline `<script>`, `style=` or `on*=` attributes: static/ is
where front-end code lives) and images from this origin or `data:` URLs. Everything else (JSON,
CSV, QR images, files) gets `default-src 'none'`, so an SVG or a JSON body opened directly cannot
run anything. HSTS is sent only on requests that arrived over https. The link domain's redirects
are answered before Flask (linkgen/clicks/handler.py) and carry only their own headers.

Two input guards sit here too, because they protect every view at once:

* a NUL byte in the URL is refused: in the path it names nothing (404), in the query it is a bad
  value (400 naming the parameter). No identifier or filter can hold one, and PostgreSQL cannot
  even compare text with one (it would be a 500);
* a JSON body nested deeper than the parser's recursion limit is "not JSON" (so each view's own
  400 applies) instead of an escaping RecursionError.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider

from linkgen.domain.errors import InvalidParameter, NotFound

PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
RESOURCE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
HSTS = "max-age=31536000"

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


@functools.cache
def security_headers(html: bool, https: bool) -> tuple[tuple[str, str], ...]:
    """The headers every answer carries: a page's CSP or a resource's, HSTS over https (Flask's
    answers get them from `add_security_headers`, the edge's from here directly)."""
    return (
        *COMMON_HEADERS.items(),
        ("Content-Security-Policy", PAGE_CSP if html else RESOURCE_CSP),
        *((("Strict-Transport-Security", HSTS),) if https else ()),
    )


def add_security_headers(response: Response) -> Response:
    """Add the headers a view has not set itself."""
    headers = response.headers
    for name, value in security_headers(response.mimetype == "text/html", request.is_secure):
        headers.setdefault(name, value)
    return response


def check_nul_bytes(path: str, query: bytes) -> None:
    """A NUL byte in the path names nothing (404); in the query it is a bad value (400)."""
    if "\x00" in path:
        raise NotFound("Not found.")
    if b"%00" in query or b"\x00" in query:
        pairs = parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True)
        field = next((k for k, v in pairs if "\x00" in k or "\x00" in v), "query")
        raise InvalidParameter(f"{field} must not contain a NUL byte", field=field.strip("\x00"))


def _refuse_nul_bytes() -> None:
    check_nul_bytes(request.path, request.query_string)


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, but too-deep nesting is invalid JSON, not a RecursionError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON; absurdly nested documents raise ValueError like any other bad JSON."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("the JSON document is nested too deeply") from exc


def init_app(app: Flask) -> None:
    """Add the headers to every Flask answer and install the input guards."""
    app.after_request(add_security_headers)
    app.before_request(_refuse_nul_bytes)
    guarded = GuardedJSONProvider(app)
    guarded.__dict__.update(vars(app.json))  # keep the app's settings (sort_keys=False, ...)
    app.json = guarded
