"""Small typed readers for JSON request bodies: each refusal names the field as sent."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from linkgen.domain.errors import InvalidParameter

HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)

MAX_HTTPS_URL_CHARS = 2000


def require_object(body: object, field: str = "body") -> Mapping[str, Any]:
    """The request body (or a nested value) must be a JSON object."""
    if not isinstance(body, Mapping):
        raise InvalidParameter(f"{field} must be a JSON object", field=field)
    return body


def refuse_unknown(
    body: Mapping[str, Any], allowed: set[str] | frozenset[str], prefix: str = ""
) -> None:
    """Refuse keys that are not part of the contract (a typo must not pass silently)."""
    for key in body:
        if key not in allowed:
            raise InvalidParameter(f"unknown field {key!r}", field=f"{prefix}{key}")


def get_str(
    body: Mapping[str, Any],
    key: str,
    *,
    field: str | None = None,
    required: bool = False,
    max_length: int = 500,
    allow_empty: bool = False,
) -> str | None:
    """A string field (None when absent or null and not required)."""
    field = field or key
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidParameter(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{field} must be a string", field=field)
    if not allow_empty and not value.strip():
        raise InvalidParameter(f"{field} must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidParameter(f"{field} is longer than {max_length} characters", field=field)
    return value


def get_bool(body: Mapping[str, Any], key: str, *, field: str | None = None) -> bool | None:
    """A boolean field (JSON true/false only)."""
    field = field or key
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidParameter(f"{field} must be true or false", field=field)
    return value


def get_int(
    body: Mapping[str, Any], key: str, *, lo: int, hi: int, field: str | None = None
) -> int | None:
    """An integer field within [lo, hi]; a whole float (`90.0`) counts, as in JSON Schema."""
    field = field or key
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"{field} must be an integer", field=field)
    if not lo <= value <= hi:
        raise InvalidParameter(f"{field} must be between {lo} and {hi}", field=field)
    return value


def https_url(value: str, field: str, *, allow_fragment: bool = False) -> str:
    """An absolute https:// URL with a host."""
    if any(c.isspace() or ord(c) < 32 for c in value) or "\\" in value:
        raise InvalidParameter(f"{field} must be a URL without spaces or backslashes", field=field)
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidParameter(f"{field} must be an https:// URL", field=field)
    if parts.username or parts.password:
        raise InvalidParameter(f"{field} must not carry a user name or password", field=field)
    if parts.fragment and not allow_fragment:
        raise InvalidParameter(f"{field} must not have a #fragment", field=field)
    if len(value) > MAX_HTTPS_URL_CHARS:
        raise InvalidParameter(
            f"{field} is longer than {MAX_HTTPS_URL_CHARS} characters", field=field
        )
    return value


def hostname(value: object, field: str) -> str:
    """A bare host name (no scheme, path or port), lower-cased."""
    if not isinstance(value, str):
        raise InvalidParameter(f"{field} must be a host name string", field=field)
    host = value.strip().lower().rstrip(".")
    if not HOSTNAME_RE.match(host):
        raise InvalidParameter(
            f"{field} must be a bare host name like example.com (no scheme, path or port)",
            field=field,
        )
    return host


def is_digits(value: str) -> bool:
    """True for ASCII digits only (str.isdigit() also accepts '³' and other Unicode digits)."""
    return value.isascii() and value.isdigit()


def bearer_token(authorization: str) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, however the scheme is spelled
    (`bearer`, `BEARER`) and spaced; None when the header holds no bearer token."""
    scheme, _, rest = authorization.strip().partition(" ")
    token = rest.strip()
    return token if scheme.lower() == "bearer" and token else None


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def is_same_site_path(target: str) -> bool:
    """True for a path on this site (`/links?q=1`); False for anything a browser could take to
    another host: `//host`, `/\\host`, a scheme, or control characters, which browsers drop
    from URLs (so `/<TAB>/evil.com` would become `//evil.com`), also when percent-encoded."""
    for text in (target, unquote(target)):
        if not text.startswith("/") or text.startswith("//") or "\\" in text:
            return False
        if _has_control(text):
            return False
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return False
    return True
