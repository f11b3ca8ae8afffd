"""Link domains: what a `host[:port]` a template may live on looks like.

One rule for both sources: `LINKGEN_LINK_DOMAINS` (the bootstrap list, read at start) and the
branded domains added at run time (`POST /api/v1/domains`).
"""

from __future__ import annotations

from linkgen.domain.validate import is_digits

MAX_DOMAIN_CHARS = 253


def normalize_link_domain(raw: str) -> str | None:
    """`raw` lower-cased and stripped when it is a host[:port], else None."""
    item = raw.strip().lower()
    host, _, port = item.partition(":")
    if (
        not host
        or len(item) > MAX_DOMAIN_CHARS
        or "/" in item
        or "@" in item
        or not all(c.isalnum() or c in "-." for c in host)
        or any(
            not label or label.startswith("-") or label.endswith("-") for label in host.split(".")
        )
        or (port and not (is_digits(port) and 1 <= int(port) <= 65535))
    ):
        return None
    return item
