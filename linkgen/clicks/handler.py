"""The link domain's hot path: `GET /{template_id}` and `GET /{template_id}/{shortlink_id}`.

A click pays for a regex, two dictionary lookups (templates and links are cached, see
cache.py), a cached user-agent classification, the routing decision and one group commit
(recorder.py). Nothing is logged per click.

`ClickHandler` answers clicks two ways, with one implementation (`_begin` decides everything and
queues the click; only the waiting for its commit differs):

- as WSGI middleware in front of Flask (`__call__`): any WSGI server, the test client, and
  `linkgen serve` for a click whose template or link is not in memory; the thread waits;
- on `linkgen serve`'s event loop (`answer`, called by linkgen/web/front.py), when everything
  the click needs is in memory: it awaits its group commit without holding a thread, and the
  writer wakes the loop once per batch, not once per click. A click that would need the
  database is left to the first way (`answer` returns None) before anything of it happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import ipaddress
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.exc import DBAPIError

from linkgen.clicks.cache import CachedLink, CachedTemplate, NotCached, RouteCache
from linkgen.clicks.detect import MessageDetector, classify_user_agent, message_key
from linkgen.clicks.recorder import ClickRecorder, RecordError, Ticket
from linkgen.domain.attribution import DEVICE_ID_PARAMS
from linkgen.domain.links import LINK_REF_PARAM, PID_FORBIDDEN_CHARS, link_ref_in_query
from linkgen.domain.privacy import FULL, StoragePolicy, stored_address, stored_user_agent
from linkgen.domain.routing import Redirect, decide_redirect, preview_html, preview_params
from linkgen.domain.templates import is_reserved
from linkgen.storage.counters import CounterKey

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]
Answer = tuple[int, Headers, bytes]  # status, headers, body (as RSGI's response_bytes takes them)

PATH_RE = re.compile(r"^/([A-Za-z0-9]{4})(?:/([A-Za-z0-9]{1,50}))?/?$")
MAX_PARAMS = 100
MAX_VALUE = 2000
INVALID_PID = "af_invalid_param"

_PHRASES = {status.value: status.phrase for status in HTTPStatus}
_NO_STORE = ("Cache-Control", "no-store")
_HTML = ("Content-Type", "text/html; charset=utf-8")
# The click's query (campaign, recipient values) is not handed to the store as a Referer.
_PAGE_GUARDS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))


class _RandomHex:
    """Unguessable hex from os.urandom, read 4 KiB at a time (one system call per ~400 ids)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buf, self._pos = b"", 0  # a forked child must not repeat its parent's bytes

    def take(self, nbytes: int) -> str:
        with self._lock:
            if self._pos + nbytes > len(self._buf):
                self._buf, self._pos = os.urandom(4096), 0
            start = self._pos
            self._pos = start + nbytes
            return self._buf[start : start + nbytes].hex()


_random_hex = _RandomHex()


def new_click_id(now: float) -> str:
    """A unique, time-ordered, unguessable click id (passed to Google Play as af_tranid)."""
    return f"{int(now * 1000)}-{_random_hex.take(5)}"


def _clip(value: str | None, limit: int) -> str | None:
    if value and "\x00" in value:
        value = value.replace("\x00", "")
    return value[:limit] if value else None


def _is_real_id(value: str) -> bool:
    """False for empty, unfilled placeholders and all-zero (limit ad tracking) ids."""
    v = value.strip()
    return bool(v) and "{{" not in v and "{%" not in v and v.replace("0", "").replace("-", "") != ""


def click_device_id(params: dict[str, str]) -> str | None:
    """The first device id carried on the click."""
    for key in DEVICE_ID_PARAMS:
        value = params.get(key)
        if value and _is_real_id(value):
            return value.strip().lower()[:100]
    return None


def click_customer_user_id(params: dict[str, str]) -> str | None:
    """The customer user id carried on the click (customer_user_id, else af_sub5)."""
    for key in ("customer_user_id", "af_sub5"):
        value = params.get(key)
        if value and _is_real_id(value):
            return value.strip()[:200]
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def click_route(method: str, path: str) -> re.Match[str] | None:
    """The template id and short link id of a request shaped like a click (None if not)."""
    match = PATH_RE.match(path)
    if match is None or method not in ("GET", "HEAD") or is_reserved(match.group(1)):
        return None
    return match


def _count_nothing(outcome: str) -> None:
    return None


class ClickHandler:
    """WSGI middleware answering clicks; everything else goes to the wrapped app."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        cache: RouteCache,
        recorder: ClickRecorder,
        scanners: MessageDetector | None = None,
        clock: Callable[[], float] = time.time,
        privacy: StoragePolicy = FULL,
        count_outcome: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.recorder = recorder
        self.scanners = scanners or MessageDetector()
        self.clock = clock
        self.privacy = privacy
        # Counts each stored click's outcome (linkgen_redirects_total); a no-op if not given.
        self.count_outcome = count_outcome or _count_nothing

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        begun = self._begin(environ, None)
        if begun is None:
            return self.app(environ, start_response)
        if begun.ticket is None:
            return _send(start_response, begun.answer)
        try:
            begun.ticket.wait()
        except RecordError:
            return _send(start_response, _unavailable())
        return _send(start_response, self._committed(begun))

    async def answer(self, environ: dict[str, Any]) -> Answer | None:
        """A click's answer on the running event loop, once the click is committed.

        None when the request is for the WSGI app instead: not a click of a known template, or
        a click needing the database (a template or link not in memory, an expired link to
        read again). Nothing of the click has happened then; `__call__` on a thread does it.
        """
        loop = asyncio.get_running_loop()
        try:
            begun = self._begin(environ, loop)
        except NotCached:
            return None
        if begun is None or begun.ticket is None:
            return None if begun is None else begun.answer
        try:
            await begun.ticket.committed()
        except RecordError:
            return _unavailable()
        return self._committed(begun)

    def _committed(self, begun: _Begun) -> Answer:
        self.count_outcome(begun.outcome)
        return begun.answer

    def _begin(
        self, environ: dict[str, Any], loop: asyncio.AbstractEventLoop | None
    ) -> _Begun | None:
        """Decide the answer and queue the click for its group commit; None: not ours.

        Without `loop` (a thread) what is not in memory is read from the database; with one,
        `NotCached` is raised instead, before any of the click's effects.
        """
        method = environ.get("REQUEST_METHOD", "GET")
        match = click_route(method, environ.get("PATH_INFO", ""))
        if match is None:
            return None
        load = loop is None
        try:
            template = self.cache.template(match.group(1), load=load)
            if template is None or template.domain_host != _request_host(environ):
                return None
            shortlink_id = match.group(2)
            if shortlink_id is not None:
                link = self.cache.link(template.template_id, shortlink_id, load=load)
                if link is None:  # mistyped or deleted: the brand's page, else linkgen's 404
                    if template.not_found_url:
                        return _Begun(_redirect(template.not_found_url))
                    return None
            else:
                link = self._named_link(template, environ.get("QUERY_STRING", ""), load)
            self.cache.start()
            return self._click(environ, method, template, link, shortlink_id, loop)
        except DBAPIError:
            # Not cached and the database does not answer: the target is unknown, so no
            # redirect (and no 500); the client may try again.
            return _Begun(_unavailable())

    def _named_link(
        self, template: CachedTemplate, raw_query: str, load: bool
    ) -> CachedLink | None:
        """The link a long URL names (`lg_link`), if it is one of this template's links.

        An unknown, deleted or malformed value, or one naming another template's link, leaves
        the click a plain template click: the long URL carries every parameter it needs.
        """
        ref = link_ref_in_query(raw_query)
        if ref is None:
            return None
        link = self.cache.link_by_ref(ref, load=load)
        return link if link is not None and link.template_id == template.template_id else None

    # -- one click ---------------------------------------------------------------------------

    def _click(
        self,
        environ: dict[str, Any],
        method: str,
        template: CachedTemplate,
        link: CachedLink | None,
        shortlink_id: str | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> _Begun:
        now_ts = self.clock()
        now = datetime.fromtimestamp(now_ts, UTC)
        query = _query(environ.get("QUERY_STRING", ""))
        query.pop(LINK_REF_PARAM, None)  # named the link; not a parameter of the click
        long_url = shortlink_id is None
        expired = False
        if (
            shortlink_id is not None
            and link is not None
            and link.expires_at is not None
            and link.expires_at <= now
        ):
            # Another process may have renewed it since we cached it: look again.
            with contextlib.suppress(DBAPIError):  # cannot look again: the cached expiry stands
                again = self.cache.reload_link(link.template_id, shortlink_id, load=loop is None)
                link = again or link
            expired = link.expires_at is not None and link.expires_at <= now
        # Long URLs carry everything in the query and never expire (even when their link's short
        # URL did); an expired short link behaves like its template's base link (only what the
        # click itself carries).
        params = query if long_url or link is None or expired else {**link.params, **query}
        ua = environ.get("HTTP_USER_AGENT")
        device = classify_user_agent(ua)
        click_id = new_click_id(now_ts)
        redirect = decide_redirect(device.platform, params, template.routing, click_id)
        if method == "HEAD":  # never a click: link checkers and prefetchers
            return _Begun(self._answer(redirect, device.is_preview, params, environ, link))

        ip = _client_ip(environ)
        device_id = click_device_id(params)
        customer_user_id = click_customer_user_id(params)
        campaign = params.get("c")
        channel = params.get("af_channel")
        pid = params.get("pid")
        invalid_pid = bool(pid) and any(c in PID_FORBIDDEN_CHARS for c in pid or "")
        media_source = INVALID_PID if invalid_pid else pid
        link_id = link.id if link is not None else None
        key = CounterKey.of(
            now,
            link_id=link_id,
            template_id=template.template_id,
            campaign=campaign,
            channel=channel,
            media_source=media_source,
        )
        bot_reason = device.bot_reason
        earlier: tuple[str, ...] = ()
        recipient = customer_user_id or device_id
        if not device.is_bot and ip and recipient:
            # One recipient's message as this client sees it; a link is its id, else its URL
            # (a hand-built long link's query is what tells its links apart).
            bot_reason, earlier = self.scanners.observe(
                message_key(template.template_id, campaign, recipient, ip, ua),
                link_id or hash(environ.get("QUERY_STRING", "")),
                click_id,
                now_ts,
            )
        is_bot = bot_reason is not None

        not_attributable: str | None = None
        if expired:
            not_attributable = "expired_link"
        elif not pid:
            not_attributable = "missing_pid"
        elif invalid_pid:
            not_attributable = "invalid_pid"
        elif is_bot:
            not_attributable = "bot"
        app_id = (
            template.ios_app_id
            if device.platform == "ios"
            else template.android_app_id
            if device.platform == "android"
            else None
        )
        row: dict[str, Any] = {
            "click_id": click_id,
            "ts": now,
            "link_id": link_id,
            "template_id": template.template_id,
            "app_id": app_id,
            "media_source": _clip(media_source, 150),
            "campaign": _clip(campaign, 100),
            "channel": _clip(channel, 20),
            "params": params,
            # Detection above used the full values; the row keeps what the settings allow.
            "ip": stored_address(ip, self.privacy),
            "user_agent": _clip(
                stored_user_agent(
                    ua,
                    self.privacy,
                    platform=device.platform,
                    os_family=device.os_family,
                    os_version=device.os_version,
                    browser=device.browser,
                ),
                1024,
            ),
            "platform": device.platform,
            "os_version": _clip(device.os_version, 32),
            "referrer": _clip(environ.get("HTTP_REFERER"), 2000),
            "device_id": device_id,
            "customer_user_id": customer_user_id,
            "is_retargeting": _truthy(params.get("is_retargeting")),
            "is_bot": is_bot,
            "bot_reason": _clip(bot_reason, 64),
            "is_qr": _truthy(params.get("af_qr")),
            "attributable": not_attributable is None,
            "not_attributable_reason": not_attributable,
            "outcome": "preview" if device.is_preview else redirect.outcome,
            "consumed": False,
        }
        counts = {"clicks": 1, "bot_clicks" if is_bot else "human_clicks": 1}
        renewal = None
        if (
            link is not None
            and not long_url
            and not expired
            and link.renew_ttl
            and link.ttl_seconds is not None
        ):
            expires_at = now + timedelta(seconds=link.ttl_seconds)
            renewal = (link.id, expires_at)
            link.expires_at = expires_at
        ticket = self.recorder.submit(row, key, counts, renewal, earlier, loop=loop)
        answer = self._answer(redirect, device.is_preview, params, environ, link)
        return _Begun(answer, ticket, str(row["outcome"]))

    def _answer(
        self,
        redirect: Redirect,
        is_preview: bool,
        params: dict[str, str],
        environ: dict[str, Any],
        link: CachedLink | None,
    ) -> Answer:
        if is_preview:
            url = _request_url(environ)
            shown = preview_params(params, link.params if link is not None else None)
            body = preview_html(shown, title_fallback="Open the link", url=url).encode()
            return 200, [_HTML, _NO_STORE, ("Content-Length", str(len(body)))], body
        if redirect.html is not None:
            body = redirect.html.encode()
            headers = [_HTML, _NO_STORE, ("Content-Length", str(len(body))), *_PAGE_GUARDS]
            if redirect.csp is not None:  # the try-the-app page: only its own script may run
                headers.append(("Content-Security-Policy", redirect.csp))
            return 200, headers, body
        if not redirect.url:
            return _page(
                200, "This link has no destination for this device. Try opening it on your phone."
            )
        return _redirect(redirect.url)


@dataclass(slots=True)
class _Begun:
    """A click decided: its answer, and its place in a group commit when it is stored."""

    answer: Answer
    ticket: Ticket | None = None
    outcome: str = ""  # the stored click's outcome, counted once it is committed


def _send(start_response: Callable[..., Any], answer: Answer) -> Iterable[bytes]:
    """An answer through WSGI."""
    status, headers, body = answer
    start_response(f"{status} {_PHRASES[status]}", headers)
    return [body]


def _redirect(url: str) -> Answer:
    return 302, [("Location", url), _NO_STORE, ("Content-Length", "0")], b""


def _query(raw: str) -> dict[str, str]:
    if not raw:
        return {}
    if "%00" in raw or "\x00" in raw:
        # PostgreSQL refuses NUL in text and JSONB: a click carrying one must still be stored.
        raw = raw.replace("%00", "").replace("\x00", "")
    pairs = parse_qsl(raw, keep_blank_values=True)[:MAX_PARAMS]
    return {k[:100]: v[:MAX_VALUE] for k, v in pairs if k}


def _request_host(environ: dict[str, Any]) -> str:
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    host = str(host).lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _client_ip(environ: dict[str, Any]) -> str | None:
    raw = environ.get("REMOTE_ADDR")
    return _normal_ip(str(raw)) if raw else None


@lru_cache(maxsize=4096)  # ~1 MB at most; a burst's clickers (and proxies) repeat
def _normal_ip(raw: str) -> str | None:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def _request_url(environ: dict[str, Any]) -> str:
    """The link's own URL for og:url (the click's query string is not echoed back)."""
    scheme = environ.get("wsgi.url_scheme", "https")
    host = environ.get("HTTP_HOST", "")
    path = environ.get("PATH_INFO", "")
    return f"{scheme}://{host}{path}"


def _unavailable() -> Answer:
    """503 with Retry-After: the click could not be looked up or recorded."""
    return _page(
        503, "This link is busy. Please try again in a moment.", extra=[("Retry-After", "1")]
    )


def _page(status: int, message: str, extra: Headers | None = None) -> Answer:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>linkgen</title></head><body><p>{html.escape(message)}</p></body></html>"
    ).encode()
    return status, [_HTML, _NO_STORE, ("Content-Length", str(len(body))), *(extra or [])], body
