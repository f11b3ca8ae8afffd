"""Who clicked: platform and device from the user agent, and whether it was a person.

`classify_user_agent` answers from the User-Agent header alone, cached per distinct string:

- platform: "ios", "android", "desktop" (Windows, macOS, Linux, ChromeOS) or "other" (consoles,
  TVs, Windows Phone, HarmonyOS without an Android token, unknown clients, most bots).
- bots, checked in this order, the first that matches wins:
  1. empty or blank user agent -> ``empty_user_agent``;
  2. link-preview crawlers (Slack, Facebook, X/Twitter, WhatsApp, Telegram, iMessage, ...) ->
     ``preview:<name>``, ``is_preview=True``: answer them with the Open Graph page;
  3. email security scanners that say who they are (Microsoft Safe Links' BingPreview,
     Proofpoint, Mimecast, Barracuda, Cisco IronPort, ...) -> ``scanner:<name>``;
  4. headless browsers and HTTP libraries (HeadlessChrome, curl, python-requests, ...) ->
     ``automation:<name>``;
  5. anything crawlerdetect knows -> ``crawler``.
  ``okhttp`` is deliberately not a bot: it is the HTTP stack of many real Android apps.

Most scanners send an ordinary browser user agent, so the user agent alone cannot catch them;
`BurstDetector` catches them by behaviour (one client opening many links within seconds).

iPadOS ambiguity: since iPadOS 13, Safari on an iPad sends a desktop macOS user agent
("Macintosh; Intel Mac OS X 10_15_7") unless the user asks for the mobile site, and the server
cannot tell it from a Mac (only client-side JavaScript can, via ``navigator.maxTouchPoints``).
Such clicks are classified "desktop" and get the desktop redirect; a web fallback page that
wants to offer the App Store to iPads has to detect touch itself.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import ua_parser
from crawlerdetect.providers.crawlers import data as _CRAWLER_PATTERNS
from crawlerdetect.providers.exclusions import data as _CRAWLER_EXCLUSIONS

try:
    # ua-parser's Rust regex engine, installed by the ua-parser[regex] dependency.
    import ua_parser_rs

    _RUST_EXTRACTOR: Any = ua_parser_rs.UserAgentExtractor
except ImportError:  # pragma: no cover - only without the [regex] extra
    _RUST_EXTRACTOR = None

__all__ = [
    "BurstDetector",
    "DeviceInfo",
    "classify_user_agent",
    "client_key",
    "warm_up",
]

PLATFORM_IOS = "ios"
PLATFORM_ANDROID = "android"
PLATFORM_DESKTOP = "desktop"
PLATFORM_OTHER = "other"

# Real user agents stay under ~400 characters (in-app browsers are the longest); the cap bounds
# both the regex work per new string and the memory the classification cache can hold.
MAX_USER_AGENT_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What a user agent says about the device and whether a person is behind it."""

    platform: str  # "ios" | "android" | "desktop" | "other"
    os_version: str | None
    device_model: str | None
    browser: str | None
    is_bot: bool
    bot_reason: str | None  # "crawler", "preview:slackbot", "scanner:mimecast", ...
    is_preview: bool  # a link-preview crawler that should get the Open Graph page
    os_family: str | None = None  # ua-parser's OS name ("iOS", "Android", "Windows", ...)


# Look-around and back-references: Rust's regex engine has neither, Python's re runs these.
_PYTHON_ONLY_RE = re.compile(r"\(\?<?[=!]|\\[1-9]")


class _PatternSet:
    """Ordered (label, regex) pairs, all case-insensitive; `first` names the first that matches.

    Python's re tries every alternative at every position, so crawlerdetect's ~1,500 patterns
    take about 1 ms per user agent (an Instagram one) and even our ~60 take ~0.2 ms, where
    ua-parser's Rust engine needs ~2 us. Patterns it cannot compile (look-around) run through
    re after it; without the engine everything does, in list order.
    """

    def __init__(self, patterns: Sequence[tuple[str, str]]) -> None:
        fast = [(lab, pat) for lab, pat in patterns if not _PYTHON_ONLY_RE.search(pat)]
        slow = [(lab, pat) for lab, pat in patterns if _PYTHON_ONLY_RE.search(pat)]
        self._fast: Any = None
        if _RUST_EXTRACTOR is not None and fast:
            # ua-parser's extractor returns the first entry in list order that matches anywhere;
            # the label rides in the "family" slot (labels hold no "$1" substitution).
            entries = [(f"(?i){pat}", lab, None, None, None, None) for lab, pat in fast]
            self._fast = _RUST_EXTRACTOR(entries)
        else:
            slow = list(patterns)
        self._slow = [(lab, re.compile(pat, re.IGNORECASE)) for lab, pat in slow]

    def first(self, text: str) -> str | None:
        """The label of the first pattern found in `text`, or None."""
        if self._fast is not None and (hit := self._fast.extract(text)) is not None:
            return str(hit.family)
        for label, regex in self._slow:
            if regex.search(text):
                return label
        return None


def _named(kind: str, patterns: dict[str, str]) -> list[tuple[str, str]]:
    return [(f"{kind}:{name}", pattern) for name, pattern in patterns.items()]


# Order matters where one user agent carries several tokens: the first pattern in the list that
# matches wins, so Facebook's and Twitter's tokens, which other previewers borrow, come last.
# Tokens are the crawler's own name, never a substring of in-app browsers (FBAN/FBAV, Instagram,
# Line/, Snapchat/, Telegram-iOS are people and must not match).
_PREVIEW = _named(
    "preview",
    {
        "imessage": r"facebookexternalhit/1\.1 Facebot Twitterbot/1\.0$",
        "snapchat": r"Snap URL Preview",
        "line": r"line-poker",
        "slackbot": r"Slackbot|Slack-ImgProxy",
        "whatsapp": r"\bWhatsApp/",
        "telegrambot": r"TelegramBot",
        "linkedinbot": r"LinkedInBot",
        "discordbot": r"Discordbot",
        "skype": r"SkypeUriPreview",
        # Applebot feeds Siri/Spotlight link suggestions from Open Graph tags, so it gets the
        # preview page rather than a redirect into an app store.
        "applebot": r"Applebot",
        "google": r"Google-PageRenderer|developers\.google\.com/\+/web/snippet",
        "redditbot": r"redditbot",
        "embedly": r"Embedly",
        "pinterest": r"Pinterestbot|\bPinterest/0\.",
        "vkshare": r"vkShare",
        # Viber's preview fetch comes from the app's own network stack; a person's click opens a
        # browser, whose user agent does not start with Viber/.
        "viber": r"^Viber/",
        "iframely": r"Iframely",
        "mastodon": r"^Mastodon/",
        "bluesky": r"Cardyb",
        "kakaotalk": r"kakaotalk-scrap",
        "zoom": r"Zoombot",
        "mattermost": r"Mattermost-Bot",
        "tumblr": r"Tumblr/",
        # Last: other crawlers (Telegram, LINE, iMessage) borrow these two names.
        "facebook": r"facebookexternalhit|\bFacebot\b",
        "twitterbot": r"Twitterbot",
    },
)

# Only scanners that name themselves; the many that pose as Chrome are caught by BurstDetector.
_SCANNER = _named(
    "scanner",
    {
        "microsoft_safelinks": r"BingPreview|Safe ?Links",
        "proofpoint": r"Proofpoint|urldefense",
        "mimecast": r"Mimecast",
        "barracuda": r"Barracuda",
        "cisco": r"IronPort|\bCisco-",
        "trend_micro": r"Trend ?Micro",
        "symantec": r"Symantec|MessageLabs",
        "sophos": r"Sophos",
        "forcepoint": r"Forcepoint|Websense",
        "fireeye": r"FireEye|Trellix",
        "zscaler": r"Zscaler",
        "avanan": r"Avanan",
        "check_point": r"Check ?Point",
        "palo_alto": r"Palo Alto Networks",
        "fortinet": r"Fortinet|FortiGuard",
    },
)

_AUTOMATION = _named(
    "automation",
    {
        "headless_chrome": r"HeadlessChrome",
        "phantomjs": r"PhantomJS",
        "selenium": r"Selenium",
        "puppeteer": r"Puppeteer",
        "playwright": r"Playwright",
        "curl": r"\bcurl/",
        "wget": r"\bWget/",
        "python_requests": r"python-requests",
        "python_httpx": r"python-httpx",
        "python_urllib": r"Python-urllib",
        "aiohttp": r"aiohttp",
        "go_http_client": r"Go-http-client",
        "node_fetch": r"node-fetch",
        "axios": r"\baxios/",
        "java": r"^Java/",
        "apache_httpclient": r"Apache-HttpClient",
        "libwww_perl": r"libwww-perl",
    },
)

# Previews first (they get a page, not a redirect), then scanners, then automation.
_KNOWN_BOTS = _PatternSet(_PREVIEW + _SCANNER + _AUTOMATION)


@cache
def _crawlers() -> _PatternSet:
    # Built on first use: compiling crawlerdetect's list takes ~0.1 s, not worth paying at import.
    return _PatternSet([("crawler", pattern) for pattern in _CRAWLER_PATTERNS])


# crawlerdetect's own algorithm: strip the tokens every browser carries, then look for a crawler.
_CRAWLER_EXCLUSIONS_RE = re.compile("|".join(_CRAWLER_EXCLUSIONS), re.IGNORECASE)

# crawlerdetect lists okhttp, but a click that reaches us through okhttp is usually a real
# Android app opening the link (share sheets, in-app link handlers), so the token is removed
# before asking crawlerdetect.
_OKHTTP_RE = re.compile(r"\bokhttp(?:/[\w.\-]*)?", re.IGNORECASE)


def _is_crawler(ua: str) -> bool:
    """crawlerdetect's verdict (its data, its algorithm), except for okhttp."""
    if "okhttp" in ua.lower():
        ua = _OKHTTP_RE.sub("", ua)
    agent = _CRAWLER_EXCLUSIONS_RE.sub("", ua).strip()
    return bool(agent) and _crawlers().first(agent) is not None


_DESKTOP_OS = frozenset(
    {
        "Mac OS X",
        "Chrome OS",
        "Linux",
        "Ubuntu",
        "Kubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "CentOS",
        "SUSE",
        "openSUSE",
        "Mint",
        "Linux Mint",
        "Arch Linux",
        "Gentoo",
        "Slackware",
        "Mandriva",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
_NOT_DESKTOP_WINDOWS = ("Phone", "Mobile", "CE", "RT")
_APPLE_MOBILE_DEVICES = ("iPhone", "iPad", "iPod")


def _platform(os_family: str | None, device_family: str | None) -> str:
    """Map ua-parser's OS (and device, for Apple) onto the four redirect platforms."""
    if os_family in ("iOS", "iPadOS") or (device_family or "").startswith(_APPLE_MOBILE_DEVICES):
        return PLATFORM_IOS
    if os_family is None:
        return PLATFORM_OTHER
    if os_family == "Android" or os_family.startswith("Fire OS"):
        return PLATFORM_ANDROID
    if os_family in _DESKTOP_OS:
        return PLATFORM_DESKTOP
    if os_family.startswith("Windows") and not any(w in os_family for w in _NOT_DESKTOP_WINDOWS):
        return PLATFORM_DESKTOP
    return PLATFORM_OTHER


def _version(major: str | None, minor: str | None, patch: str | None) -> str | None:
    parts = [p for p in (major, minor, patch) if p]
    # A minor without a major (or a patch without a minor) never happens in ua-parser's data;
    # joining only what is present keeps "17.4" and "10" as they are.
    return ".".join(parts) if parts else None


def _bot_reason(ua: str) -> tuple[str | None, bool]:
    """The bot reason for a non-empty user agent and whether it is a preview crawler."""
    if label := _KNOWN_BOTS.first(ua):
        return label, label.startswith("preview:")
    if _is_crawler(ua):
        return "crawler", False
    return None, False


_EMPTY = DeviceInfo(
    platform=PLATFORM_OTHER,
    os_version=None,
    device_model=None,
    browser=None,
    is_bot=True,
    bot_reason="empty_user_agent",
    is_preview=False,
)


@lru_cache(maxsize=4096)
def _classify(ua: str) -> DeviceInfo:
    if not ua.strip():
        return _EMPTY
    parsed = ua_parser.parse(ua)
    os_, device, agent = parsed.os, parsed.device, parsed.user_agent
    os_family = os_.family if os_ and os_.family != "Other" else None
    device_family = device.family if device and device.family != "Other" else None
    model: str | None = None
    if device and device_family and device_family != "Spider":
        # ua-parser calls every bot's device "Spider" with model "Desktop"/"Smartphone": noise.
        model = device.model or device_family
    reason, is_preview = _bot_reason(ua)
    return DeviceInfo(
        platform=_platform(os_family, device_family),
        os_version=_version(os_.major, os_.minor, os_.patch) if os_ and os_family else None,
        device_model=model,
        browser=agent.family if agent and agent.family != "Other" else None,
        is_bot=reason is not None,
        bot_reason=reason,
        is_preview=is_preview,
        os_family=os_family,
    )


def classify_user_agent(ua: str | None) -> DeviceInfo:
    """Classify a User-Agent header (cached per distinct string; None or blank is a bot)."""
    if not ua:
        return _EMPTY
    return _classify(ua[:MAX_USER_AGENT_LENGTH])


def warm_up() -> None:
    """Build the matchers now (~0.2 s) instead of on the first click; call it at start-up."""
    _crawlers()
    ua_parser.parse("Mozilla/5.0")


def client_key(ip: str, user_agent: str | None) -> str:
    """A compact BurstDetector key for one client: its IP plus a short hash of its user agent."""
    digest = hashlib.blake2b((user_agent or "").encode("utf-8", "replace"), digest_size=8)
    return f"{ip}|{digest.hexdigest()}"


class BurstDetector:
    """Flags clients that open many distinct links within seconds, as email scanners do.

    A person opens one link of a message and maybe another later; a security scanner fetches
    every link of the message within seconds of delivery. `observe` returns ``"scanner:burst"``
    once a client has opened more than ``max_links`` distinct links within ``window_seconds``
    (defaults: a fourth distinct link within 10 seconds), and keeps returning it while that
    stays true. Repeat clicks on the same link never count twice. The clicks that came before
    the threshold was crossed are not flagged by this call; a caller that wants them flagged too
    can re-flag that client's clicks of the last ``window_seconds``.

    Scope it by what goes into ``client_key``: ``client_key(ip, ua)`` counts links across all
    campaigns, ``f"{client_key(ip, ua)}|{campaign}"`` counts within one campaign.

    Memory is bounded: at most ``max_clients`` clients (least recently seen evicted first), each
    holding at most ``max_links + 1`` links; idle clients are pruned as calls go by. Each call
    is O(1) amortised and takes one lock, so one instance can serve all threads of a process.
    """

    REASON = "scanner:burst"

    def __init__(
        self,
        *,
        max_links: int = 3,
        window_seconds: float = 10.0,
        max_clients: int = 100_000,
    ) -> None:
        if max_links < 1:
            raise ValueError("max_links must be at least 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.max_links = max_links
        self.window_seconds = window_seconds
        self.max_clients = max_clients
        # client -> (link -> last time seen), both ordered oldest first.
        self._clients: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many clients are currently tracked."""
        return len(self._clients)

    def observe(self, client_key: str, link_key: str, now: float) -> str | None:
        """Record that a client opened a link at `now` (time.monotonic()); a reason if a burst."""
        horizon = now - self.window_seconds
        with self._lock:
            clients = self._clients
            links = clients.get(client_key)
            if links is None:
                links = OrderedDict()
                clients[client_key] = links
            else:
                clients.move_to_end(client_key)
            links[link_key] = now
            links.move_to_end(link_key)
            while links and next(iter(links.values())) < horizon:
                links.popitem(last=False)
            # Past the threshold the exact count no longer matters, only that it is exceeded.
            while len(links) > self.max_links + 1:
                links.popitem(last=False)
            burst = len(links) > self.max_links
            self._prune(horizon)
        return self.REASON if burst else None

    def _prune(self, horizon: float) -> None:
        """Evict over the cap, then drop up to two idle clients from the cold end."""
        clients = self._clients
        while len(clients) > self.max_clients:
            clients.popitem(last=False)
        for _ in range(2):
            oldest_key = next(iter(clients), None)
            if oldest_key is None:
                return
            links = clients[oldest_key]
            # The newest link of a client is its last entry; idle means even that is too old.
            if links and next(reversed(links.values())) >= horizon:
                return
            del clients[oldest_key]
