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
`MessageDetector` catches them by behaviour (one client opening the links of one message within
seconds).

iPadOS ambiguity: since iPadOS 13, Safari on an iPad sends a desktop macOS user agent
("Macintosh; Intel Mac OS X 10_15_7") unless the user asks for the mobile site, and the server
cannot tell it from a Mac (only client-side JavaScript can, via ``navigator.maxTouchPoints``).
Such clicks are classified "desktop" and get the desktop redirect; a web fallback page that
wants to offer the App Store to iPads has to detect touch itself.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
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
    "DeviceInfo",
    "MessageDetector",
    "classify_user_agent",
    "message_key",
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

# Only scanners that name themselves; those that pose as Chrome are caught by MessageDetector.
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


# One message key's state, flat: (last click, flagged, then its clicks before flagging, oldest
# first, three values each: when, link, the caller's token). A flat tuple of strings and numbers
# is soon untracked by the garbage collector; tens of thousands of tracked objects (a class with
# a list, or nested tuples) made each full collection walk them all: ~6 us more per click in
# benchmarks/click_ceiling.py.
_State = tuple[Any, ...]


_NOT_A_SCANNER: tuple[str | None, tuple[Any, ...]] = (None, ())


# (distinct links, within seconds): a third link within 5 s is faster than a person switches
# back to the mail app and taps again; a fourth within 20 s catches scanners that open each link
# in a sandbox one after the other. Measured in benchmarks/scanners.py.
DEFAULT_RULES: tuple[tuple[int, float], ...] = ((3, 5.0), (4, 20.0))


class MessageDetector:
    """Flags a client that opens the links of one message within seconds, as scanners do.

    The key is the message as one client sees it: the template, the campaign, the recipient's
    substituted value (CleverTap ID, customer user id or device id) and the client's address and
    user agent (`message_key`). A person opens one link of a message, perhaps another later; a
    security scanner fetches every link of the message within seconds of delivery. A crowd
    behind one carrier address with one Safari user agent is many recipients, hence many keys,
    and is never flagged.

    `observe` returns ``("scanner:message", earlier)`` once one key has opened N distinct links
    within S seconds for any (N, S) of ``rules`` (default `DEFAULT_RULES`: a third distinct link
    within 5 s or a fourth within 20 s). ``earlier`` holds the tokens of that key's clicks of
    the longest window that were let through before (the caller re-flags them), only on the
    call that crossed the threshold; later calls return ``("scanner:message", ())`` while the
    key keeps clicking (the flag clears after a longest window without a click). Repeat clicks
    on one link never count twice. Anything else returns ``(None, ())``.

    Memory is bounded: at most ``max_keys`` keys (least recently seen evicted first), each
    holding its newest ``MAX_HELD`` clicks of the longest window (~300 bytes for a key with one
    click id as the token: ~15 MB at the default cap, which a process reaches at 2,500 clicks/s
    with recipient values; beyond that keys are forgotten sooner than 20 s); keys idle for the
    longest window are pruned as calls go by. Each
    call is O(1) amortised under one lock, so one instance serves all threads of a process.
    """

    REASON = "scanner:message"
    MAX_HELD = 8

    def __init__(
        self,
        *,
        rules: Sequence[tuple[int, float]] = DEFAULT_RULES,
        max_keys: int = 50_000,
    ) -> None:
        if not rules:
            raise ValueError("rules must not be empty")
        for links, seconds in rules:
            if links < 2:
                raise ValueError("a rule needs at least 2 links")
            if seconds <= 0:
                raise ValueError("a rule's window must be positive")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.rules = tuple(sorted((int(n), float(s)) for n, s in rules))
        self.window_seconds = max(s for _, s in self.rules)
        self.min_links = self.rules[0][0]
        self.max_keys = max_keys
        self._messages: OrderedDict[Hashable, _State] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many message keys are currently tracked."""
        return len(self._messages)

    def observe(
        self, key: Hashable, link: Hashable, token: Any, now: float
    ) -> tuple[str | None, tuple[Any, ...]]:
        """Record that `key` opened `link` at `now` (seconds); the reason and clicks to re-flag."""
        horizon = now - self.window_seconds
        with self._lock:
            messages = self._messages
            state = messages.get(key)
            held: _State = ()
            if state is not None:
                messages.move_to_end(key)
                if state[0] >= horizon:  # else idle for a whole window: start afresh
                    if state[1]:
                        messages[key] = (now, True)
                        self._prune(horizon)
                        return self.REASON, ()
                    held = state[2:]
                    if held[0] < horizon:
                        held = tuple(
                            v for i in range(0, len(held), 3) if held[i] >= horizon
                            for v in held[i : i + 3]
                        )  # fmt: skip
                    if len(held) >= 3 * self.MAX_HELD:  # repeats of one link: keep the newest
                        held = held[3:]
            held = (*held, now, link, token)
            crossed = len(held) >= 3 * self.min_links and self._crossed(held, now)
            messages[key] = (now, True) if crossed else (now, False, *held)
            self._prune(horizon)
        if not crossed:
            return _NOT_A_SCANNER
        return self.REASON, held[2:-3:3]  # the tokens of all but this click

    def _crossed(self, held: _State, now: float) -> bool:
        """Whether the held clicks (at most MAX_HELD) meet any rule."""
        for needed, seconds in self.rules:
            since = now - seconds
            links = {held[i + 1] for i in range(0, len(held), 3) if held[i] >= since}
            if len(links) >= needed:
                return True
        return False

    def _prune(self, horizon: float) -> None:
        """Evict over the cap, then drop up to two idle keys from the cold end."""
        messages = self._messages
        while len(messages) > self.max_keys:
            messages.popitem(last=False)
        for _ in range(2):
            oldest = next(iter(messages.values()), None)
            if oldest is None or oldest[0] >= horizon:
                return
            messages.popitem(last=False)


def message_key(
    template_id: str, campaign: str | None, recipient: str, ip: str, user_agent: str | None
) -> int:
    """A compact MessageDetector key: one recipient's links of one campaign, from one client.

    Python's 64-bit string hash (per process) stands in for the five strings: two messages
    share a key with odds of about one in 2^64 per pair, and a key costs 32 bytes, not ~400.
    """
    return hash((template_id, campaign or "", recipient, ip, user_agent or ""))
