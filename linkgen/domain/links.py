"""OneLink owned-media links: validate a link request and build its long and short URLs.

Pure Python (stdlib only). The rules come from domain.md section 1 and the contract's "Links"
section. Every refusal is an `InvalidParameter` whose `field` is the request path as sent:
`channel`, `media_source`, `campaign`, `short`, `shortlink_id`, `ttl`, `renew_ttl`, `params`,
`params.<key>` (the key as sent), `title`, `tags`, `tags[<i>]`, `notes`, or `None` when the body
itself is not an object.

CleverTap Liquid placeholders (`{{ ... }}` and `{% ... %}`) inside values stay raw, byte for byte,
in every URL built here: CleverTap substitutes them per recipient before the link is clicked.
Everything outside a placeholder is percent-encoded.
"""

from __future__ import annotations

import html
import math
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.windows import CLICK_LOOKBACK, REENGAGEMENT_WINDOW, parse_window

CHANNELS = ("email", "sms", "push", "qr", "custom")
DEFAULT_MEDIA_SOURCE = {"email": "Email", "sms": "SMS", "push": "Push", "qr": "QR"}
# Channels whose links are short unless `short: false` is asked for (long SMS do not fit, and
# a short QR code has fewer modules and stays editable after printing).
SHORT_BY_DEFAULT = frozenset({"sms", "qr"})

MAX_URL_LENGTH = 2000
MAX_KEY_LENGTH = 100
DEFAULT_TTL_SECONDS = 31 * 86400
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 365 * 86400

MAX_SHORTLINK_ID_CHARS = 50
SHORTLINK_ID_RE = re.compile(rf"\A[A-Za-z0-9]{{1,{MAX_SHORTLINK_ID_CHARS}}}\Z")
SHORTLINK_ID_LENGTH = 8
_SHORTLINK_ALPHABET = string.ascii_letters + string.digits

# The top-level fields of POST /api/v1/links; anything else is refused so a typo such as
# `campain` cannot silently produce a link without its campaign.
LINK_FIELDS = frozenset(
    {
        "template_id",
        "channel",
        "campaign",
        "media_source",
        "params",
        "short",
        "shortlink_id",
        "ttl",
        "renew_ttl",
        "title",
        "tags",
        "notes",
    }
)

# A link's own description, for the people who manage it: never part of a URL. The title names
# the link in lists (without one, the campaign does); tags group links across campaigns and
# filter the list; notes say why the link exists. Tags are case-insensitive (kept lower-case),
# so one tag is one tag however it was typed, and a tag fits in a URL's query (`?tag=spring`).
MAX_TITLE_CHARS = 120
MAX_TAGS = 10
MAX_TAG_CHARS = 32
TAG_CHARS = "letters, digits, - and _"
TAG_RE = re.compile(rf"\A[A-Za-z0-9_-]{{1,{MAX_TAG_CHARS}}}\Z")
MAX_NOTES_CHARS = 2000
# Control characters (regex class ranges) a title may not hold: C0, DEL and C1; notes may also
# hold tabs and line breaks.
TITLE_FORBIDDEN_CHARS = r"\x00-\x1f\x7f-\x9f"
NOTES_FORBIDDEN_CHARS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_TITLE_FORBIDDEN_RE = re.compile(f"[{TITLE_FORBIDDEN_CHARS}]")
_NOTES_FORBIDDEN_RE = re.compile(f"[{NOTES_FORBIDDEN_CHARS}]")

# Value length limits from domain.md (characters, counted on the value as sent, placeholders
# included: the substituted length is unknowable here).
VALUE_LIMITS: dict[str, int] = {
    "pid": 150,
    "c": 100,
    "af_channel": 20,
    "af_adset": 100,
    "af_ad": 100,
    "af_c_id": 24,
    "af_adset_id": 24,
    "af_ad_id": 24,
    "af_siteid": 24,
    "af_sub_siteid": 50,
    "af_keywords": 100,
    "af_sub1": 100,
    "af_sub2": 100,
    "af_sub3": 100,
    "af_sub4": 100,
    "af_sub5": 100,
    "af_og_title": 40,
    "af_og_description": 300,
}

# Known AppsFlyer parameters in the order of the contract's table; URLs list them in this order
# so two links with the same params read (and diff) the same.
KNOWN_PARAMS: tuple[str, ...] = (
    "pid",
    "c",
    "af_channel",
    "af_adset",
    "af_ad",
    "af_c_id",
    "af_adset_id",
    "af_ad_id",
    "af_siteid",
    "af_sub_siteid",
    "af_keywords",
    "af_sub1",
    "af_sub2",
    "af_sub3",
    "af_sub4",
    "af_sub5",
    "deep_link_value",
    *(f"deep_link_sub{i}" for i in range(1, 11)),
    "af_dp",
    "af_r",
    "af_ios_url",
    "af_android_url",
    "af_web_dp",
    "af_force_deeplink",
    "is_retargeting",
    "af_click_lookback",
    "af_reengagement_window",
    "af_installpostback",
    "af_og_title",
    "af_og_description",
    "af_og_image",
    "advertising_id",
    "idfa",
    "idfv",
    "android_id",
    "af_qr",
)
_KNOWN_RANK = {name: rank for rank, name in enumerate(KNOWN_PARAMS)}

REDIRECT_PARAMS = ("af_r", "af_ios_url", "af_android_url", "af_web_dp")

# Set from top-level fields; accepting them in `params` too would allow two sources of truth.
_TOP_LEVEL_PARAMS = {"pid": "media_source", "c": "campaign", "af_channel": "channel"}

PID_FORBIDDEN_CHARS = frozenset("/<>*&?\\")

# Self-reporting networks (SRNs) attribute their own clicks, so a link claiming to come from
# one of them is a misattribution for owned media. Names are compared after `_srn_key`
# (case-insensitive, spaces/underscores/hyphens equal). Any pid ending `_int` is refused on its
# own; the `_int` names are listed anyway so the message can say "self-reporting network".
# Organic names (`instagram`, `twitter`) stay allowed: a bio or post link is owned media.
SELF_REPORTING_NETWORKS = frozenset(
    {
        "googleadwords_int",
        "facebook ads",
        "facebook_int",
        "snapchat_int",
        "twitter_int",
        "tiktokglobal_int",
        "bytedanceglobal_int",
        "apple search ads",
        "apple_search_ads",
        "doubleclick_int",
        "yahoogemini_int",
    }
)

_PLACEHOLDER_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_TTL_RE = re.compile(r"\A([1-9][0-9]{0,8})([mhd]?)\Z")
_TTL_UNITS = {"m": 60, "h": 3600, "d": 86400, "": 86400}

# One pass over a redirect URL: https, an ASCII host of letters/digits/dots/hyphens, an optional
# port, then a path or query without whitespace, backslashes or a fragment. `@` cannot appear
# before the path, so userinfo tricks (`https://example.com@evil.com`) never match.
_REDIRECT_RE = re.compile(
    r"\A[hH][tT][tT][pP][sS]://"
    r"(?P<host>[A-Za-z0-9.-]{1,253})"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<rest>[/?][^\s\\#\x00-\x1f\x7f]*)?\Z"
)
_HOST_LABEL_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


@dataclass(frozen=True)
class TemplateInfo:
    """The parts of a OneLink template the builder needs."""

    template_id: str
    domain: str
    scheme: str  # "https" or "http" (http only for localhost link domains)
    redirect_allowlist: tuple[str, ...]


@dataclass(frozen=True)
class LinkSpec:
    """A validated link request.

    `params` holds the user params only (never pid, c or af_channel), as strings, in the order
    given, with channel presets applied (push: `is_retargeting=true`). `shortlink_id` is None
    when the caller must generate one (`generate_shortlink_id`) for a short link.
    """

    channel: str
    media_source: str
    campaign: str | None
    params: dict[str, str]
    short: bool
    shortlink_id: str | None
    ttl_seconds: int | None  # None: never expires (QR links without a `ttl`)
    renew_ttl: bool
    title: str | None = None
    tags: tuple[str, ...] = ()  # lower-case, each once, in the order given
    notes: str | None = None


# --------------------------------------------------------------------------- link references

# The long URL names its link with `lg_link=<ref>`: linkgen's own name (AppsFlyer's parameters
# are `pid`, `c`, `af_*`, `deep_link_*`, `is_retargeting` and device ids), refused in `params`.
LINK_REF_PARAM = "lg_link"
LINK_REF_LENGTH = 22  # a 128-bit link id in base 62
_REF_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_REF_VALUE = {ch: i for i, ch in enumerate(_REF_ALPHABET)}
_HEX_ID_RE = re.compile(r"\A[0-9a-f]{32}\Z")
# What the length check counts for a link whose id is not known yet (same length as any ref).
PENDING_LINK_REF = "0" * LINK_REF_LENGTH


def link_ref(link_id: str) -> str | None:
    """The compact `lg_link` value of a link id (its 32 hex digits in base 62), or None for an
    id linkgen did not generate (such a link's long URL stays a plain template URL)."""
    if not _HEX_ID_RE.match(link_id):
        return None
    number = int(link_id, 16)
    out = []
    for _ in range(LINK_REF_LENGTH):
        number, digit = divmod(number, 62)
        out.append(_REF_ALPHABET[digit])
    return "".join(reversed(out))


def link_id_of_ref(ref: str) -> str | None:
    """The link id an `lg_link` value names, or None when it is not one `link_ref` makes."""
    if len(ref) != LINK_REF_LENGTH:
        return None
    number = 0
    for ch in ref:
        digit = _REF_VALUE.get(ch)
        if digit is None:
            return None
        number = number * 62 + digit
    if number >> 128:
        return None
    return f"{number:032x}"


def link_ref_in_query(query: str) -> str | None:
    """The value of the first `lg_link` pair of a raw query string (not checked), if any.

    The first pair counts: the builder puts it before every placeholder, so nothing a
    recipient's substituted value or an appended parameter adds can replace it. Plain string
    searches: this runs on every long-link click.
    """
    if query.startswith("lg_link="):
        start = 8
    else:
        at = query.find("&lg_link=")
        if at < 0:
            return None
        start = at + 9
    end = query.find("&", start)
    return query[start:] if end < 0 else query[start:end]


# --------------------------------------------------------------------------- placeholders


def has_placeholder(value: str) -> bool:
    """True when the value holds a CleverTap Liquid placeholder (`{{ ... }}` or `{% ... %}`)."""
    return ("{{" in value or "{%" in value) and _PLACEHOLDER_RE.search(value) is not None


# Text that percent-encoding leaves as it is (RFC 3986 unreserved characters but `~`): most keys
# and many values are, and a regex match costs a fraction of quote().
_UNENCODED_RE = re.compile(r"[A-Za-z0-9_.-]*")


def _encode_part(text: str) -> str:
    # quote() keeps RFC 3986 unreserved characters; domain.md also lists `~` among the
    # characters the builder encodes, so it is encoded too (decoders accept %7E either way).
    if _UNENCODED_RE.fullmatch(text):
        return text
    return quote(text, safe="").replace("~", "%7E")


def encode_component(value: str) -> str:
    """Percent-encode a key or value, keeping Liquid placeholder spans raw."""
    if "{{" not in value and "{%" not in value:
        return _encode_part(value)
    out: list[str] = []
    pos = 0
    for match in _PLACEHOLDER_RE.finditer(value):
        out.append(_encode_part(value[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_encode_part(value[pos:]))
    return "".join(out)


def encode_query(params: Mapping[str, str]) -> str:
    """The query string for params: everything percent-encoded except Liquid placeholders."""
    return "&".join(f"{encode_component(k)}={encode_component(v)}" for k, v in params.items())


# --------------------------------------------------------------------------- URLs


def _base_url(template: TemplateInfo) -> str:
    return f"{template.scheme}://{template.domain}/{template.template_id}"


def build_long_url(
    template: TemplateInfo, params: Mapping[str, str], *, ref: str | None = None
) -> str:
    """`{scheme}://{domain}/{template_id}?{query}` (no `?` when there are no params).

    `ref` (a `link_ref`) goes in as `lg_link`, right after pid, c and af_channel and always
    before the first placeholder, so it parses the same whatever CleverTap substitutes.
    """
    if ref is not None:
        params = _with_ref(params, ref)
    query = encode_query(params)
    return f"{_base_url(template)}?{query}" if query else _base_url(template)


def _with_ref(params: Mapping[str, str], ref: str) -> dict[str, str]:
    out: dict[str, str] = {}
    placed = False
    for key, value in params.items():
        # After pid, c and af_channel, unless one of them holds a placeholder: the ref must
        # precede every value a recipient's substitution could fill with `&lg_link=...`.
        if not placed and (key not in _TOP_LEVEL_PARAMS or has_placeholder(value)):
            out[LINK_REF_PARAM] = ref
            placed = True
        out[key] = value
    if not placed:
        out[LINK_REF_PARAM] = ref
    return out


def build_short_url(template: TemplateInfo, shortlink_id: str, params: Mapping[str, str]) -> str:
    """The short URL, with the params whose value holds a placeholder appended raw."""
    base = f"{_base_url(template)}/{shortlink_id}"
    # Only CleverTap knows a placeholder's per-recipient value, so those params travel in the
    # URL; click-time query params override the stored ones (domain.md section 1).
    dynamic = {k: v for k, v in params.items() if has_placeholder(v)}
    return f"{base}?{encode_query(dynamic)}" if dynamic else base


def with_qr_flag(url: str) -> str:
    """The URL with `af_qr=true` (replacing any existing af_qr, placed before placeholders)."""
    base, sep, query = url.partition("?")
    if not sep:
        return f"{url}?af_qr=true"
    pairs = query.split("&") if query else []
    for i, pair in enumerate(pairs):
        if pair.partition("=")[0] == "af_qr":
            pairs[i] = "af_qr=true"
            return f"{base}?{'&'.join(pairs)}"
    # Before the first placeholder pair: the flag then never follows text that CleverTap
    # substitutes, so it still parses whatever the substituted value holds.
    at = next((i for i, pair in enumerate(pairs) if has_placeholder(pair)), len(pairs))
    pairs.insert(at, "af_qr=true")
    return f"{base}?{'&'.join(pairs)}"


def generate_shortlink_id() -> str:
    """A random 8-character shortlink id of ASCII letters and digits.

    Each character comes from one random byte below 248 (4 x 62, so `% 62` is uniform; the
    rest are dropped): the same distribution as `secrets.choice` per character, from one
    call to the OS generator instead of eight.
    """
    chars: list[str] = []
    while len(chars) < SHORTLINK_ID_LENGTH:
        chars.extend(_SHORTLINK_ALPHABET[b % 62] for b in secrets.token_bytes(12) if b < 248)
    return "".join(chars[:SHORTLINK_ID_LENGTH])


def ordered_params(spec: LinkSpec) -> dict[str, str]:
    """All URL params: pid, c, af_channel, known AppsFlyer params in table order, then the rest."""
    out: dict[str, str] = {"pid": spec.media_source}
    if spec.campaign is not None:
        out["c"] = spec.campaign
    out["af_channel"] = spec.channel
    known = sorted((k for k in spec.params if k in _KNOWN_RANK), key=_KNOWN_RANK.__getitem__)
    for key in known:
        out[key] = spec.params[key]
    for key, value in spec.params.items():
        if key not in _KNOWN_RANK:
            out[key] = value
    return out


# --------------------------------------------------------------------------- CleverTap


def _html_escape_keeping_placeholders(text: str) -> str:
    # Liquid runs before any HTML parser sees the message, so placeholders must stay raw for
    # CleverTap to substitute them; escaping their quotes would break `default:'there'`.
    if "{{" not in text and "{%" not in text:
        return html.escape(text, quote=True)
    out: list[str] = []
    pos = 0
    for match in _PLACEHOLDER_RE.finditer(text):
        out.append(html.escape(text[pos : match.start()], quote=True))
        out.append(match.group(0))
        pos = match.end()
    out.append(html.escape(text[pos:], quote=True))
    return "".join(out)


def clevertap_block(url: str, channel: str, *, text: str | None = None) -> dict[str, Any]:
    """Ready-to-paste snippets for CleverTap: url, email_html, sms_text and push_payload.

    `email_html` is `<a href="URL">TEXT</a>` with `&`, `<`, `>`, `"` and `'` escaped outside
    placeholders and placeholders kept raw. When a placeholder holds a double quote the
    attribute is delimited with single quotes instead (if it holds both kinds it stays double
    quoted: Liquid still renders it before the HTML is parsed). TEXT defaults to the URL.
    `sms_text` is `TEXT URL` (or the URL alone); `push_payload` carries the URL in `wzrk_dl`.
    `channel` must be one of CHANNELS; all four snippets are returned for every channel so a
    link can be pasted into any CleverTap message.
    """
    if channel not in CHANNELS:
        raise InvalidParameter(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    href = _html_escape_keeping_placeholders(url)
    delim = '"'
    if has_placeholder(url):
        quotes_inside = "".join(m.group(0) for m in _PLACEHOLDER_RE.finditer(url))
        delim = "'" if '"' in quotes_inside and "'" not in quotes_inside else '"'
    label = _html_escape_keeping_placeholders(text) if text else href
    return {
        "url": url,
        "email_html": f"<a href={delim}{href}{delim}>{label}</a>",
        "sms_text": f"{text} {url}" if text else url,
        "push_payload": {"wzrk_dl": url},
    }


# --------------------------------------------------------------------------- formats


def parse_ttl(value: object, field: str = "ttl") -> int:
    """A TTL in seconds from `Nm`, `Nh`, `Nd` or a bare number of days (1 minute..365 days)."""
    if isinstance(value, bool) or value is None:
        raise InvalidParameter(_ttl_message(field), field=field)
    if isinstance(value, int):
        seconds = value * 86400
    elif isinstance(value, str):
        match = _TTL_RE.match(value.strip())
        if match is None:
            raise InvalidParameter(_ttl_message(field), field=field)
        seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)]
    else:
        raise InvalidParameter(_ttl_message(field), field=field)
    if not MIN_TTL_SECONDS <= seconds <= MAX_TTL_SECONDS:
        raise InvalidParameter(f"{field} must be between 1 minute and 365 days", field=field)
    return seconds


def _ttl_message(field: str) -> str:
    return f"{field} must look like 10m, 20h, 14d or a number of days (1 minute to 365 days)"


# --------------------------------------------------------------------------- redirects


def _normalize_host(host: str) -> str:
    host = host.lower()
    return host[:-1] if host.endswith(".") else host


def is_allowed_host(host: str, allowlist: Sequence[str]) -> bool:
    """True when host equals an allow-list entry or is a subdomain of one (case-insensitive)."""
    host = _normalize_host(host)
    if not host:
        return False
    for entry in allowlist:
        allowed = _normalize_host(entry.strip())
        if allowed and (host == allowed or host.endswith("." + allowed)):
            return True
    return False


def check_redirect_url(url: str, allowlist: Sequence[str]) -> str | None:
    """Why a redirect URL is refused (https, no fragment, allow-listed host), or None if OK.

    Strict on purpose: only an ASCII host name is accepted (no userinfo, IP-literal brackets,
    percent-encoded or Unicode host, backslash, whitespace or control character anywhere), so
    no browser can see a different host than this check does.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    match = _REDIRECT_RE.match(url)
    if match is None:
        return _redirect_refusal(url)
    host = _normalize_host(match.group("host"))
    labels = host.split(".")
    if not all(_HOST_LABEL_RE.match(label) for label in labels):
        return "must have a valid host name"
    if all(label.isdigit() for label in labels):
        return "must have a host name, not an IP address"
    port = match.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return "must have a valid port"
    if not is_allowed_host(host, allowlist):
        if not allowlist:
            return "is not allowed: the template's redirect allow-list is empty"
        return f"host {host!r} is not on the template's redirect allow-list"
    return None


def _redirect_refusal(url: str) -> str:
    # Only reached for refused URLs, so it may be slower and more specific than the regex.
    if url[:8].lower() != "https://":
        return "must be an absolute https:// URL"
    if "#" in url:
        return "must not have a fragment (#...)"
    if "\\" in url:
        return "must not contain a backslash"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "must not contain spaces or control characters"
    authority = re.split(r"[/?]", url[8:], maxsplit=1)[0]
    if "@" in authority:
        return "must not contain a user name or password (user@host)"
    if not authority:
        return "must have a host"
    return "must have a plain ASCII host name (letters, digits, dots and hyphens)"


def _check_redirect_param(key: str, value: str, template: TemplateInfo) -> None:
    field = f"params.{key}"
    checked = value
    if has_placeholder(value):
        # The host decides where the redirect goes, so it must be known now; placeholders are
        # fine in the path or query and are replaced by a neutral token for the check.
        lowered = value[:8].lower()
        authority = re.split(r"[/?#]", value[8:], maxsplit=1)[0] if lowered == "https://" else ""
        if "{{" in authority or "{%" in authority:
            raise InvalidParameter(f"{key} must not have a placeholder in its host", field=field)
        checked = _PLACEHOLDER_RE.sub("x", value)
    reason = check_redirect_url(checked, template.redirect_allowlist)
    if reason is not None:
        raise InvalidParameter(f"{key} {reason}", field=field)


def _check_https_url(key: str, value: str) -> None:
    checked = _PLACEHOLDER_RE.sub("x", value)
    match = _REDIRECT_RE.match(checked)
    if match is None or not all(
        _HOST_LABEL_RE.match(label) for label in _normalize_host(match.group("host")).split(".")
    ):
        raise InvalidParameter(f"{key} must be an absolute https:// URL", field=f"params.{key}")


# --------------------------------------------------------------------------- request parsing


def _text(value: object, field: str) -> str:
    # JSON numbers and booleans are accepted where a string is expected: they have one obvious
    # spelling (`true`, `12`, `1.5`); nested objects, lists and null do not.
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        try:
            text = str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            raise InvalidParameter(f"{field} is too long", field=field) from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidParameter(f"{field} must be a finite number", field=field)
        text = repr(value)
    else:
        raise InvalidParameter(f"{field} must be a string", field=field)
    if "\x00" in text:
        raise InvalidParameter(f"{field} must not contain a NUL character", field=field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter(f"{field} must be valid Unicode text", field=field) from None
    return text


def _check_limit(key: str, value: str, field: str) -> None:
    limit = VALUE_LIMITS.get(key)
    if limit is not None and len(value) > limit:
        raise InvalidParameter(f"{field} is longer than {limit} characters", field=field)


def _srn_key(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.casefold()).strip()


_SRN_KEYS = frozenset(_srn_key(name) for name in SELF_REPORTING_NETWORKS)


def check_media_source(pid: str, field: str = "media_source") -> None:
    """Refuse a pid that AppsFlyer would not attribute as owned media."""
    if not pid:
        raise InvalidParameter("media_source (pid) is mandatory", field=field)
    _check_limit("pid", pid, field)
    if pid != pid.strip():
        raise InvalidParameter(f"{field} must not start or end with a space", field=field)
    bad = sorted(PID_FORBIDDEN_CHARS.intersection(pid))
    if bad:
        raise InvalidParameter(
            f"{field} must not contain {' '.join(bad)} (such clicks are unattributed)",
            field=field,
        )
    if _srn_key(pid) in _SRN_KEYS:
        raise InvalidParameter(
            f"{field} {pid!r} is a self-reporting network, not an owned media source",
            field=field,
        )
    if pid.casefold().endswith("_int"):
        raise InvalidParameter(
            f"{field} must not end with _int (reserved for integrated partners)", field=field
        )


def _parse_params(raw: object, channel: str, template: TemplateInfo) -> dict[str, str]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidParameter("params must be an object of strings", field="params")
    params: dict[str, str] = {}
    for key, raw_value in raw.items():
        if not isinstance(key, str) or not key:
            raise InvalidParameter("params keys must be non-empty strings", field="params")
        field = f"params.{key}"
        _check_key(key, field)
        if key == LINK_REF_PARAM:
            raise InvalidParameter(
                f"{key} is linkgen's own parameter (it names the link in its long URL)",
                field=field,
            )
        if key in _TOP_LEVEL_PARAMS:
            top = _TOP_LEVEL_PARAMS[key]
            raise InvalidParameter(
                f"{key} is set from the top-level field {top!r}, not from params", field=field
            )
        value = _text(raw_value, field)
        _check_limit(key, value, field)
        if key in REDIRECT_PARAMS:
            _check_redirect_param(key, value, template)
        elif key == "af_og_image":
            _check_https_url(key, value)
        elif key == "af_click_lookback":
            parse_window(value, field, CLICK_LOOKBACK)
        elif key == "af_reengagement_window":
            parse_window(value, field, REENGAGEMENT_WINDOW)
        params[key] = value
    if channel == "push":
        # Push reaches existing users: its clicks are re-engagement (domain.md, owned media).
        if params.get("is_retargeting", "true").lower() != "true":
            raise InvalidParameter(
                "push links are re-engagement links: is_retargeting must be true",
                field="params.is_retargeting",
            )
        params["is_retargeting"] = "true"
    return params


def _check_key(key: str, field: str) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidParameter(
            f"params keys must be at most {MAX_KEY_LENGTH} characters", field=field
        )
    if "{{" in key or "{%" in key:
        raise InvalidParameter("a placeholder is not allowed in a param name", field=field)
    if key != key.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidParameter(
            "param names must not have surrounding spaces or control characters", field=field
        )
    _text(key, field)


def _optional_bool(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidParameter(f"{key} must be true or false", field=key)
    return value


def _free_text(value: object, field: str, limit: int, forbidden: re.Pattern[str]) -> str | None:
    # Free text for people (a title, notes): None when absent, null or only spaces; the limit
    # counts the characters as sent.
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{field} must be a string", field=field)
    if len(value) > limit:
        raise InvalidParameter(f"{field} is longer than {limit} characters", field=field)
    if forbidden.search(value):
        raise InvalidParameter(f"{field} must not contain control characters", field=field)
    _text(value, field)
    return value.strip() or None


def parse_title(value: object) -> str | None:
    """A link's title (at most MAX_TITLE_CHARS, one line), None when there is none."""
    return _free_text(value, "title", MAX_TITLE_CHARS, _TITLE_FORBIDDEN_RE)


def parse_notes(value: object) -> str | None:
    """A link's notes (at most MAX_NOTES_CHARS, several lines), None when there are none."""
    return _free_text(value, "notes", MAX_NOTES_CHARS, _NOTES_FORBIDDEN_RE)


def parse_tags(value: object) -> tuple[str, ...]:
    """A link's tags: a list of at most MAX_TAGS tags of TAG_CHARS, lower-cased, each once."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidParameter("tags must be a list of strings", field="tags")
    if len(value) > MAX_TAGS:
        raise InvalidParameter(f"a link has at most {MAX_TAGS} tags", field="tags")
    tags: dict[str, None] = {}
    for pos, tag in enumerate(value):
        field = f"tags[{pos}]"
        if not isinstance(tag, str):
            raise InvalidParameter(f"{field} must be a string", field=field)
        if not tag:
            raise InvalidParameter(f"{field} must not be empty", field=field)
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidParameter(
                f"{field} is longer than {MAX_TAG_CHARS} characters", field=field
            )
        if not TAG_RE.match(tag):
            raise InvalidParameter(f"{field} may only hold {TAG_CHARS}", field=field)
        tags.setdefault(tag.lower(), None)
    return tuple(tags)


def split_tags(text: str, separator: str) -> list[str]:
    """Tags typed in one piece of text (a form field, a CSV cell): split on `separator`, each
    stripped; empty pieces (`a,,b`, a trailing separator) are dropped."""
    return [piece.strip() for piece in text.split(separator) if piece.strip()]


def parse_link_request(body: Mapping[str, Any], template: TemplateInfo) -> LinkSpec:
    """Validate a POST /api/v1/links body against domain.md section 1 and apply channel presets.

    Choices a caller relies on:
    - unknown top-level fields are refused (field = the key); `template_id` is ignored here.
    - `channel` defaults to `custom`; `media_source` defaults per channel (custom: mandatory);
      an empty string counts as absent for `media_source` and `campaign`.
    - `params.pid`, `params.c` and `params.af_channel` are refused: use `media_source`,
      `campaign` and `channel`; `params.lg_link` is refused (it names the link, see link_ref).
    - `ttl` absent or null: `default_ttl(channel)` (QR links: none, they never expire).
    - `shortlink_id` implies a short link; with an explicit `short: false` it is refused.
    - a long URL over MAX_URL_LENGTH (QR links: with `af_qr=true` added) is refused naming the
      field that contributes the most characters: `params.<key>`, `campaign` or `media_source`.
    - `title`, `tags` and `notes` describe the link for people and are in no URL; an empty
      title or notes counts as none (see parse_title, parse_tags, parse_notes).
    """
    if not isinstance(body, Mapping):
        raise InvalidParameter("the request body must be a JSON object")
    for key in body:
        if key not in LINK_FIELDS:
            raise InvalidParameter(f"unknown field {key!r}", field=str(key))

    channel = body.get("channel")
    if channel is None:
        channel = "custom"
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise InvalidParameter(f"channel must be one of {', '.join(CHANNELS)}", field="channel")

    raw_pid = body.get("media_source")
    media_source = "" if raw_pid is None else _text(raw_pid, "media_source")
    if not media_source:
        if channel not in DEFAULT_MEDIA_SOURCE:
            raise InvalidParameter(
                f"media_source (pid) is mandatory for channel {channel}", field="media_source"
            )
        media_source = DEFAULT_MEDIA_SOURCE[channel]
    check_media_source(media_source)

    raw_campaign = body.get("campaign")
    campaign = None if raw_campaign is None else _text(raw_campaign, "campaign") or None
    if campaign is not None:
        _check_limit("c", campaign, "campaign")
        if campaign != campaign.strip():
            raise InvalidParameter("campaign must not start or end with a space", field="campaign")

    params = _parse_params(body.get("params"), channel, template)

    short = _optional_bool(body, "short")
    raw_id = body.get("shortlink_id")
    shortlink_id: str | None = None
    if raw_id is not None:
        if not isinstance(raw_id, str) or not SHORTLINK_ID_RE.match(raw_id):
            raise InvalidParameter(
                f"shortlink_id must be 1 to {MAX_SHORTLINK_ID_CHARS} ASCII letters or digits",
                field="shortlink_id",
            )
        if short is False:
            raise InvalidParameter(
                "shortlink_id is only for short links (short is false)", field="shortlink_id"
            )
        shortlink_id = raw_id
        short = True
    if short is None:
        short = channel in SHORT_BY_DEFAULT

    raw_ttl = body.get("ttl")
    ttl_seconds = default_ttl(channel) if raw_ttl is None else parse_ttl(raw_ttl, "ttl")
    renew_ttl = _optional_bool(body, "renew_ttl")

    spec = LinkSpec(
        channel=channel,
        media_source=media_source,
        campaign=campaign,
        params=params,
        short=short,
        shortlink_id=shortlink_id,
        ttl_seconds=ttl_seconds,
        renew_ttl=True if renew_ttl is None else renew_ttl,
        title=parse_title(body.get("title")),
        tags=parse_tags(body.get("tags")),
        notes=parse_notes(body.get("notes")),
    )
    _check_url_length(spec, template)
    return spec


def default_ttl(channel: str) -> int | None:
    """The TTL of a link that asks for none: QR codes are printed and must keep working, so QR
    links never expire (None); every other channel gets DEFAULT_TTL_SECONDS."""
    return None if channel == "qr" else DEFAULT_TTL_SECONDS


def _check_url_length(spec: LinkSpec, template: TemplateInfo) -> None:
    params = ordered_params(spec)
    url = build_long_url(template, params, ref=PENDING_LINK_REF)
    if spec.channel == "qr":
        url = with_qr_flag(url)
    if len(url) <= MAX_URL_LENGTH:
        return
    fields = {"pid": "media_source", "c": "campaign", "af_channel": "channel"}
    longest = max(params, key=lambda k: len(encode_component(k)) + len(encode_component(params[k])))
    field = fields.get(longest, f"params.{longest}")
    raise InvalidParameter(
        f"the link would be {len(url)} characters long, more than {MAX_URL_LENGTH} "
        f"(the longest part is {field})",
        field=field,
    )
