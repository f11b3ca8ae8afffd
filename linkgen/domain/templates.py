"""OneLink templates: ids, reserved paths, domains, fallbacks and the redirect allow-list."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from publicsuffixlist import PublicSuffixList

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.validate import (
    MAX_HTTPS_URL_CHARS,
    get_bool,
    get_str,
    hostname,
    https_url,
    refuse_unknown,
)

TEMPLATE_ID_CHARS = 4
TEMPLATE_ID_RE = re.compile(rf"^[A-Za-z0-9]{{{TEMPLATE_ID_CHARS}}}$")
URI_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]{0,60}$")
# Field limits: the validators below and the API's models (linkgen/web/apimodels.py) use these.
MAX_TEMPLATE_DOMAIN_CHARS = 255
MAX_TEMPLATE_APP_ID_CHARS = 160
MAX_URI_SCHEME_CHARS = 64
ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# First path segments owned by the UI, the API and the link domain's own files. A template id
# equal to one of these (compared case-insensitively) would shadow a page, so it is refused.
RESERVED_PATHS = frozenset(
    {
        "api",
        "app",
        "apps",
        "auth",
        "bulk",
        "docs",
        "help",
        "home",
        "link",
        "links",
        "live",
        "login",
        "logout",
        "meta",
        "post",
        "qr",
        "setup",
        "stat",
        "stats",
        "user",
        "users",
        "static",
        "healthz",
        "metrics",
        "templates",
        "domains",
        "settings",
        "postbacks",
        "devices",
        "reports",
        "import",
        "export",
        "audit",
        "admin",
        "favicon.ico",
        "robots.txt",
        ".well-known",
        "tmpl",
        "temp",
        "test",
        "root",
        "well",
        "ui",
        "news",
        "more",
        "null",
        "none",
        "true",
        "self",
    }
)
# Blocked schemes for an app's URI scheme: they are not app schemes and would be unsafe.
BLOCKED_SCHEMES = frozenset(
    {"http", "https", "javascript", "data", "vbscript", "file", "about", "blob", "intent"}
)

CREATE_FIELDS = frozenset(
    {
        "template_id",
        "domain",
        "ios_app_id",
        "android_app_id",
        "uri_scheme",
        "universal_links",
        "app_links",
        "web_fallback_url",
        "not_found_url",
        "redirect_allowlist",
    }
)
PATCH_FIELDS = CREATE_FIELDS - {"template_id"}


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The list ships inside the package (no download); names it does not know, such as
    # `localhost` or a company's internal TLD, are not public suffixes.
    return PublicSuffixList(accept_unknown=False)


def is_public_suffix(host: str) -> bool:
    """True for `com`, `co.uk`, `github.io` and every other entry of the public-suffix list:
    hosts under which anyone may register a site."""
    return bool(_public_suffixes().is_public(host.lower().rstrip(".")))


def host_of(domain: str) -> str:
    """'go.example.com:8443' -> 'go.example.com'."""
    if domain.startswith("["):
        return domain.split("]")[0] + "]"
    return domain.rsplit(":", 1)[0].lower() if ":" in domain else domain.lower()


def is_reserved(segment: str) -> bool:
    """True when a first path segment belongs to the UI, API or well-known files."""
    return segment.lower() in RESERVED_PATHS


def generate_template_id() -> str:
    """A random 4-character id that is not reserved."""
    while True:
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(4))
        if not is_reserved(candidate):
            return candidate


def normalize_uri_scheme(value: str, field: str = "uri_scheme") -> str:
    """'myapp', 'myapp:' and 'myapp://' all become 'myapp://'."""
    scheme = value.strip()
    for suffix in ("://", ":"):
        if scheme.endswith(suffix):
            scheme = scheme[: -len(suffix)]
            break
    scheme = scheme.lower()
    if not URI_SCHEME_RE.match(scheme) or scheme in BLOCKED_SCHEMES:
        raise InvalidParameter(
            f"{field} must be an app scheme like myapp:// (not http, https or javascript)",
            field=field,
        )
    return scheme + "://"


def parse_template(
    body: Mapping[str, Any], *, create: bool, link_domains: Sequence[str]
) -> dict[str, Any]:
    """Validate a template POST/PATCH body; app existence is checked by the caller."""
    refuse_unknown(body, CREATE_FIELDS if create else PATCH_FIELDS)
    values: dict[str, Any] = {}
    if create:
        tid = get_str(body, "template_id", max_length=TEMPLATE_ID_CHARS)
        if tid is not None:
            if not TEMPLATE_ID_RE.match(tid):
                raise InvalidParameter(
                    "template_id must be 4 letters or digits", field="template_id"
                )
            if is_reserved(tid):
                raise InvalidParameter(
                    f"template_id {tid!r} collides with a reserved path of linkgen",
                    field="template_id",
                )
        values["template_id"] = tid or generate_template_id()
    if create or "domain" in body:
        domain = get_str(body, "domain", required=True, max_length=MAX_TEMPLATE_DOMAIN_CHARS)
        assert domain is not None
        domain = domain.strip().lower()
        if domain not in link_domains:
            raise InvalidParameter(
                f"domain {domain!r} is not a link domain (LINKGEN_LINK_DOMAINS or a branded "
                f"domain: {', '.join(link_domains)})",
                field="domain",
            )
        values["domain"] = domain
    for key in ("ios_app_id", "android_app_id"):
        if key in body:
            values[key] = get_str(body, key, max_length=MAX_TEMPLATE_APP_ID_CHARS)
    if "uri_scheme" in body:
        scheme = get_str(body, "uri_scheme", max_length=MAX_URI_SCHEME_CHARS)
        values["uri_scheme"] = normalize_uri_scheme(scheme) if scheme else None
    for key in ("universal_links", "app_links"):
        flag = get_bool(body, key)
        if flag is not None:
            values[key] = flag
        elif create:
            values[key] = False
    for key in ("web_fallback_url", "not_found_url"):
        if key in body:
            url = get_str(body, key, max_length=MAX_HTTPS_URL_CHARS)
            values[key] = https_url(url, key) if url else None
    if "redirect_allowlist" in body or create:
        raw = body.get("redirect_allowlist") or []
        if not isinstance(raw, list):
            raise InvalidParameter(
                "redirect_allowlist must be a list of host names", field="redirect_allowlist"
            )
        hosts: list[str] = []
        for i, item in enumerate(raw):
            host = hostname(item, f"redirect_allowlist[{i}]")
            if is_public_suffix(host):
                raise InvalidParameter(
                    f"redirect_allowlist[{i}] {host!r} is a public suffix: it would allow every "
                    f"site under it; name your own domain (for example shop.{host})",
                    field=f"redirect_allowlist[{i}]",
                )
            if host not in hosts:
                hosts.append(host)
        values["redirect_allowlist"] = hosts
    return values
