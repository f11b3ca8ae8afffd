"""Cursor pagination: {"items": [...], "next": cursor | null}, ?limit= (1-500, default 50)."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.validate import is_digits

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def parse_limit(args: Mapping[str, str]) -> int:
    """The ?limit= value."""
    raw = args.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not is_digits(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def encode_cursor(key: str | int) -> str:
    """An opaque cursor for the last item's sort key."""
    return base64.urlsafe_b64encode(f"{key}".encode()).decode().rstrip("=")


def decode_cursor(args: Mapping[str, str]) -> str | None:
    """The sort key after which the page starts, or None."""
    raw = args.get("cursor")
    if not raw:
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter("cursor is not one this API gave out", field="cursor") from exc


def decode_int_cursor(args: Mapping[str, str]) -> int | None:
    """A cursor whose key is an integer id."""
    key = decode_cursor(args)
    if key is None:
        return None
    if not is_digits(key) or len(key) > 18:  # ids are 64-bit: longer digits were forged
        raise InvalidParameter("cursor is not one this API gave out", field="cursor")
    return int(key)
