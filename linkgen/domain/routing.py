"""Where a click goes: the redirect decision per platform, and the pages served instead of one.

`decide_redirect` follows the contract ("Clicks"), first option that applies wins:

- iOS: ``af_ios_url``, ``af_r``, the App Store, the web fallback;
- Android: ``af_android_url``, ``af_r``, Google Play with ``referrer=af_tranid=<click_id>&...``
  (or an ``intent://`` URL that opens the app and falls back to Google Play, when the template
  has App Links on and ``af_dp`` uses the app's scheme), the web fallback;
- desktop and anything else: ``af_web_dp``, ``af_r``, the web fallback;
- nothing: outcome ``no_target`` with an empty url; the caller shows a page of its own.

App first (push links, ``af_force_deeplink=true``): on iOS and Android, a click whose
``af_force_deeplink`` is ``true`` or whose ``af_channel`` is ``push`` (push recipients have the
app; CleverTap's iOS SDK opens the push's ``wzrk_dl`` link in Safari, where Universal Links do
not fire) tries the app before the target chosen above, which becomes the fallback. The app is
opened by ``af_dp`` when it uses the template's URI scheme, else by the scheme's root
(``shop://``); either way with the link's parameters appended as a query (``deep_link_value``,
``pid``, ``c``, ... as AppsFlyer hands them to the app, without the redirect, preview and device
id parameters, and without keys ``af_dp`` already has) and ``af_tranid=<click_id>`` last, so a
launch reporting that URL is tied to this very click. On Android that is an ``intent://`` URL
(a 302; Chrome opens the app or, when it is not installed, ``S.browser_fallback_url``: a page's
script may not open an external scheme without a user gesture there); on iOS a small page whose
script opens the scheme and replaces itself with the fallback after 1.5 s unless the page was
hidden (the app opened). The page comes with its own Content-Security-Policy (``Redirect.csp``:
nothing but that one script, by its SHA-256). Without a usable scheme, the target applies as
usual. With App Links on and an ``af_dp`` on the app's scheme, Android gets the same intent for
every click.

Click parameters are untrusted (hand-built long links, overrides on short links), so the only
reachable targets are the template's app stores, hosts on the template's allow-list, the
template's web fallback and the app's own URI scheme. A redirect parameter that is not a clean
``https://`` URL on the allow-list is ignored, and the next option applies.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from linkgen.domain.links import check_redirect_url

__all__ = [
    "Redirect",
    "TemplateRouting",
    "app_open_url",
    "decide_redirect",
    "force_deeplink_html",
    "preview_html",
    "try_app_page",
]

OUTCOME_IOS_URL = "ios_url"
OUTCOME_AF_R = "af_r"
OUTCOME_APP_STORE = "app_store"
OUTCOME_ANDROID_URL = "android_url"
OUTCOME_GOOGLE_PLAY = "google_play"
OUTCOME_INTENT = "intent"
OUTCOME_DEEPLINK_SCHEME = "deeplink_scheme"
OUTCOME_WEB_DP = "web_dp"
OUTCOME_WEB_FALLBACK = "web_fallback"
OUTCOME_NO_TARGET = "no_target"

MAX_URL_LENGTH = 2000

# Click parameters never handed to the app in a scheme URL: where the browser goes, preview
# cards, device ids (the app has its own) and the click id (ours is appended).
NOT_CARRIED = frozenset(
    {
        "af_dp",
        "af_r",
        "af_web_dp",
        "af_ios_url",
        "af_android_url",
        "af_force_deeplink",
        "af_og_title",
        "af_og_description",
        "af_og_image",
        "advertising_id",
        "gaid",
        "idfa",
        "idfv",
        "android_id",
        "af_tranid",
    }
)
# Kept when all parameters make the scheme URL too long.
CARRIED_FIRST = (
    "pid",
    "c",
    "af_channel",
    "is_retargeting",
    "deep_link_value",
    *(f"deep_link_sub{i}" for i in range(1, 11)),
)
TRY_APP_TIMEOUT_MS = 1500

# Click parameters copied into the Google Play referrer, after af_tranid. The click id alone is
# enough for our own matching; the rest lets the app read its campaign without a server call.
REFERRER_PARAMS = ("pid", "c", "af_channel", "af_adset", "af_ad", "is_retargeting")

# Schemes that run code or read local data in a browser; never a deep link, whatever a template
# says. http(s) are here because a "deep link" to the web bypasses the allow-list.
BLOCKED_SCHEMES = frozenset(
    {
        "http",
        "https",
        "javascript",
        "vbscript",
        "data",
        "file",
        "blob",
        "about",
        "filesystem",
        "intent",
        "ftp",
        "ws",
        "wss",
        "view-source",
        "jar",
    }
)

_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.\-]*\Z")
# One or more LDH labels, optional trailing dot; percent signs, brackets, underscores and
# non-ASCII are not allowed in a redirect host (punycode is how IDN hosts are written).
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
# The last label must hold a letter: IP addresses are never redirect targets (and "0.1" on an
# allow-list must not match 127.0.0.1).
_HOST_RE = re.compile(rf"(?:{_LABEL}\.)*(?=[0-9\-]*[a-z]){_LABEL}\.?\Z")
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")
# C0 controls, space, DEL, C1 controls, backslash: browsers strip or reinterpret them (tab and
# newline are silently removed, backslash becomes a slash), so a URL holding any is refused.
_UNSAFE_CHARS_RE = re.compile(r"[\x00-\x20\x7f-\x9f\\]")
_IOS_APP_ID_RE = re.compile(r"id[0-9]{1,15}\Z")
_ANDROID_PACKAGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+\Z")
# Everything printable in ASCII stays; only non-ASCII is percent-encoded (a Location header is
# ASCII and the characters we refuse never get this far).
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class TemplateRouting:
    """The redirect-relevant settings of a OneLink template."""

    template_id: str
    ios_app_id: str | None  # "id123456789"
    android_app_id: str | None  # package name
    ios_store_url: str | None
    android_store_url: str | None
    uri_scheme: str | None  # "myapp://"
    universal_links: bool
    app_links: bool
    web_fallback_url: str | None
    redirect_allowlist: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where to send a click: `url` for a 302, or `html` to serve (with `csp`) when it is set."""

    url: str  # "" only when outcome is "no_target"
    outcome: str
    html: str | None = None
    csp: str | None = None  # the Content-Security-Policy the page needs, when html is set


def _clean_https_url(url: str) -> tuple[str, str] | None:
    """(url, host) for a well-formed https URL without userinfo or fragment; else None."""
    if not url or len(url) > MAX_URL_LENGTH or _UNSAFE_CHARS_RE.search(url) or "#" in url:
        return None
    if url[:8].lower() != "https://":
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    netloc = parts.netloc
    if parts.scheme != "https" or not netloc or "@" in netloc:
        return None
    host, sep, port = netloc.partition(":")
    if sep and not (_PORT_RE.match(port) and 0 < int(port) < 65536):
        return None
    host = host.lower()
    if not _HOST_RE.match(host):
        return None
    return quote(url, safe=_PRINTABLE_ASCII), host


def _allowed_redirect(url: str | None, allowlist: tuple[str, ...]) -> str | None:
    """The URL if the link builder's own redirect rule accepts it; None means ignore it."""
    # One rule for both ends: what POST /links refuses is exactly what a click ignores.
    if not url or not allowlist or check_redirect_url(url, allowlist) is not None:
        return None
    return quote(url, safe=_PRINTABLE_ASCII)


@lru_cache(maxsize=1024)  # a few per template, and every click of the template needs one
def _template_url(url: str | None) -> str | None:
    """A URL from the template's own settings, still refused unless it is clean https."""
    if not url:
        return None
    checked = _clean_https_url(url)
    return checked[0] if checked else None


def _scheme_name(uri_scheme: str | None) -> str | None:
    """'myapp', 'myapp:' or 'myapp://' as 'myapp'; None if unusable as an app scheme."""
    if not uri_scheme:
        return None
    name = uri_scheme.strip().lower().removesuffix("//").removesuffix(":")
    if not _SCHEME_RE.match(name) or name in BLOCKED_SCHEMES:
        return None
    return name


def _app_deeplink(af_dp: str | None, template: TemplateRouting) -> tuple[str, str] | None:
    """(scheme, rest after 'scheme:') of an af_dp using the template's own URI scheme."""
    scheme = _scheme_name(template.uri_scheme)
    if not af_dp or scheme is None or len(af_dp) > MAX_URL_LENGTH:
        return None
    if _UNSAFE_CHARS_RE.search(af_dp):
        return None
    given, sep, rest = af_dp.partition(":")
    # Only the app's own scheme: the template names the one thing af_dp may open.
    if not sep or given.lower() != scheme:
        return None
    return scheme, quote(rest, safe=_PRINTABLE_ASCII)


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _wants_app_first(params: Mapping[str, str]) -> bool:
    """Push links and af_force_deeplink=true try the app before the store."""
    return _is_true(params.get("af_force_deeplink")) or (
        (params.get("af_channel") or "").strip().lower() == "push"
    )


def _with_query(rest: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return rest
    joiner = "&" if "?" in rest else "?"
    return rest + joiner + urlencode(pairs, quote_via=quote)


def app_open_url(
    params: Mapping[str, str], template: TemplateRouting, click_id: str, *, use_root: bool
) -> tuple[str, str] | None:
    """(scheme, rest) that opens the app with the link's parameters and the click id.

    `af_dp` when it uses the template's scheme, else (`use_root`) the scheme's root; None when
    neither applies. Parameters are dropped, least useful first, to stay within 2000 characters.
    """
    target = _app_deeplink(params.get("af_dp"), template)
    if target is None:
        scheme = _scheme_name(template.uri_scheme)
        if not use_root or scheme is None:
            return None
        target = (scheme, "//")
    scheme, rest = target
    own = {k for k, _ in parse_qsl(urlsplit(f"{scheme}:{rest}").query, keep_blank_values=True)}
    carried = [(k, v) for k, v in params.items() if k not in NOT_CARRIED and k not in own]
    first = [(k, v) for k, v in carried if k in CARRIED_FIRST]
    for pairs in (carried, first, []):
        with_id = _with_query(rest, [*pairs, ("af_tranid", click_id)])
        if len(scheme) + 1 + len(with_id) <= MAX_URL_LENGTH:
            return scheme, quote(with_id, safe=_PRINTABLE_ASCII)
    return scheme, rest


def _app_store_url(template: TemplateRouting) -> str | None:
    if store := _template_url(template.ios_store_url):
        return store
    if template.ios_app_id and _IOS_APP_ID_RE.match(template.ios_app_id):
        return f"https://apps.apple.com/app/{template.ios_app_id}"
    return None


def _play_referrer(params: Mapping[str, str], click_id: str) -> str:
    pairs = [("af_tranid", click_id)]
    pairs += [(name, params[name]) for name in REFERRER_PARAMS if params.get(name)]
    return urlencode(pairs)


def _google_play_url(
    template: TemplateRouting, params: Mapping[str, str], click_id: str
) -> str | None:
    referrer = _play_referrer(params, click_id)
    if store := _template_url(template.android_store_url):
        parts = urlsplit(store)
        if parts.netloc.lower() != "play.google.com":
            return store  # another store (Galaxy, AppGallery): it has no install referrer
        query = [kv for kv in parse_qsl(parts.query, keep_blank_values=True) if kv[0] != "referrer"]
        query.append(("referrer", referrer))
        return urlunsplit(parts._replace(query=urlencode(query)))
    package = template.android_app_id
    if package and _ANDROID_PACKAGE_RE.match(package):
        return (
            f"https://play.google.com/store/apps/details?id={package}"
            f"&referrer={quote(referrer, safe='')}"
        )
    return None


def _intent_url(scheme: str, rest: str, package: str, fallback: str) -> str:
    """Chrome's intent:// form: opens the app by scheme and package, else the fallback URL."""
    # "#" starts the Intent part and ";" separates its fields, so neither may stay in the path.
    path = quote(rest.removeprefix("//"), safe="/?=&%:@!$'()*+,~-._")
    return (
        f"intent://{path}#Intent;scheme={scheme};package={package};"
        f"S.browser_fallback_url={quote(fallback, safe='')};end"
    )


def _ios(params: Mapping[str, str], template: TemplateRouting) -> Redirect | None:
    allow = template.redirect_allowlist
    if url := _allowed_redirect(params.get("af_ios_url"), allow):
        return Redirect(url, OUTCOME_IOS_URL)
    if url := _allowed_redirect(params.get("af_r"), allow):
        return Redirect(url, OUTCOME_AF_R)
    if url := _app_store_url(template):
        return Redirect(url, OUTCOME_APP_STORE)
    return None


def _android(
    params: Mapping[str, str], template: TemplateRouting, click_id: str
) -> Redirect | None:
    allow = template.redirect_allowlist
    if url := _allowed_redirect(params.get("af_android_url"), allow):
        return Redirect(url, OUTCOME_ANDROID_URL)
    if url := _allowed_redirect(params.get("af_r"), allow):
        return Redirect(url, OUTCOME_AF_R)
    play = _google_play_url(template, params, click_id)
    if play is None:
        return None
    package = template.android_app_id
    if template.app_links and package and _ANDROID_PACKAGE_RE.match(package):
        deeplink = app_open_url(params, template, click_id, use_root=False)
        if deeplink is not None:
            return Redirect(_intent_url(*deeplink, package, play), OUTCOME_INTENT)
    return Redirect(play, OUTCOME_GOOGLE_PLAY)


def _desktop(params: Mapping[str, str], template: TemplateRouting) -> Redirect | None:
    allow = template.redirect_allowlist
    if url := _allowed_redirect(params.get("af_web_dp"), allow):
        return Redirect(url, OUTCOME_WEB_DP)
    if url := _allowed_redirect(params.get("af_r"), allow):
        return Redirect(url, OUTCOME_AF_R)
    return None


def decide_redirect(
    platform: str, params: Mapping[str, str], template: TemplateRouting, click_id: str
) -> Redirect:
    """Choose the redirect for a click from `platform` ("ios", "android", "desktop", "other")."""
    mobile = platform in ("ios", "android")
    if platform == "ios":
        chosen = _ios(params, template)
    elif platform == "android":
        chosen = _android(params, template, click_id)
    else:
        chosen = _desktop(params, template)
    if chosen is None:
        fallback = _template_url(template.web_fallback_url)
        if fallback is None:
            return Redirect("", OUTCOME_NO_TARGET)
        chosen = Redirect(fallback, OUTCOME_WEB_FALLBACK)
    # An intent:// URL already tries the app first, so app-first adds nothing there.
    if mobile and chosen.outcome != OUTCOME_INTENT and _wants_app_first(params):
        return _app_first(platform, chosen, params, template, click_id)
    return chosen


def _app_first(
    platform: str,
    chosen: Redirect,
    params: Mapping[str, str],
    template: TemplateRouting,
    click_id: str,
) -> Redirect:
    """Open the app by its scheme, with `chosen` as the fallback (see the module docstring)."""
    deeplink = app_open_url(params, template, click_id, use_root=True)
    if deeplink is None:
        return chosen
    package = template.android_app_id
    if platform == "android" and package and _ANDROID_PACKAGE_RE.match(package):
        return Redirect(_intent_url(*deeplink, package, chosen.url), OUTCOME_INTENT)
    page, csp = try_app_page(f"{deeplink[0]}:{deeplink[1]}", chosen.url)
    return Redirect(chosen.url, OUTCOME_DEEPLINK_SCHEME, page, csp)


_PAGE_HEAD = (
    '<!doctype html>\n<html><head><meta charset="utf-8">\n'
    '<meta name="robots" content="noindex">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _https_or_none(url: str | None) -> str | None:
    checked = _clean_https_url(url) if url else None
    return checked[0] if checked else None


PREVIEW_PARAMS = ("af_og_title", "af_og_description", "af_og_image")


def preview_params(
    click_params: Mapping[str, str], stored: Mapping[str, str] | None
) -> Mapping[str, str]:
    """What a preview shows: on a link made in linkgen (`stored`, its saved parameters) the
    saved preview, whatever the click appended, so nobody can put their title or image under
    the brand's domain; on a hand-built template link, the click's own."""
    if stored is None:
        return click_params
    shown = {k: v for k, v in click_params.items() if k not in PREVIEW_PARAMS}
    shown.update({k: stored[k] for k in PREVIEW_PARAMS if k in stored})
    return shown


def preview_html(params: Mapping[str, str], *, title_fallback: str, url: str) -> str:
    """The Open Graph page served to link-preview crawlers (every value HTML-escaped)."""
    # Cut to the domain's length limits: overrides appended at click time are not validated.
    title = (params.get("af_og_title") or "").strip()[:40] or title_fallback
    description = (params.get("af_og_description") or "").strip()[:300]
    image = _https_or_none(params.get("af_og_image"))
    tags = [
        f'<meta property="og:title" content="{_attr(title)}">',
        '<meta property="og:type" content="website">',
        f'<meta property="og:url" content="{_attr(url)}">',
    ]
    if description:
        tags.append(f'<meta property="og:description" content="{_attr(description)}">')
        tags.append(f'<meta name="description" content="{_attr(description)}">')
    if image:
        tags.append(f'<meta property="og:image" content="{_attr(image)}">')
    tags.append(
        f'<meta name="twitter:card" content="{"summary_large_image" if image else "summary"}">'
    )
    return (
        f"{_PAGE_HEAD}<title>{_attr(title)}</title>\n"
        + "\n".join(tags)
        + f'\n</head><body><p><a href="{_attr(url)}">{_attr(title)}</a></p></body></html>\n'
    )


def _js_string(value: str) -> str:
    """A JavaScript string literal that cannot close the <script> element it sits in."""
    # json.dumps escapes quotes, backslashes and (ensure_ascii) U+2028/U+2029; "<", ">" and "&"
    # are escaped too so "</script>" and "<!--" never appear inside the script.
    return (
        json.dumps(value, ensure_ascii=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def _try_app_script(scheme_url: str, fallback_url: str) -> str:
    scheme = scheme_url.partition(":")[0].lower()
    if not _SCHEME_RE.match(scheme) or scheme in BLOCKED_SCHEMES:
        raise ValueError(f"refusing to open the scheme {scheme!r}")
    if _https_or_none(fallback_url) is None:
        raise ValueError("the fallback must be a clean https URL")
    # If the app opens, the page is hidden and the timer is cancelled; otherwise (no app, or the
    # user declined the prompt) the fallback replaces this page so Back does not loop.
    return (
        f"(function(){{var app={_js_string(scheme_url)},web={_js_string(fallback_url)};"
        f"var t=setTimeout(function(){{window.location.replace(web);}},{TRY_APP_TIMEOUT_MS});"
        'document.addEventListener("visibilitychange",function(){if(document.hidden)'
        "clearTimeout(t);});window.location.href=app;})();"
    )


def try_app_page(scheme_url: str, fallback_url: str) -> tuple[str, str]:
    """The try-the-app page and the Content-Security-Policy that lets only its script run."""
    script = _try_app_script(scheme_url, fallback_url)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    return _try_app_html(scheme_url, fallback_url, script, None), csp


def force_deeplink_html(scheme_url: str, fallback_url: str, *, nonce: str | None = None) -> str:
    """A page that opens `scheme_url` in the app, then goes to `fallback_url` if still visible."""
    return _try_app_html(scheme_url, fallback_url, _try_app_script(scheme_url, fallback_url), nonce)


def _try_app_html(scheme_url: str, fallback_url: str, script: str, nonce: str | None) -> str:
    nonce_attr = f' nonce="{_attr(nonce)}"' if nonce else ""
    return (
        f"{_PAGE_HEAD}<title>Opening the app</title>\n</head><body>\n"
        f'<p><a href="{_attr(scheme_url)}">Open in the app</a> or '
        f'<a href="{_attr(fallback_url)}">continue</a>.</p>\n'
        f"<script{nonce_attr}>{script}</script>\n</body></html>\n"
    )
