"""User-agent classification (platform, bots, previews) and message-based scanner detection."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS

from linkgen.clicks import detect
from linkgen.clicks.detect import (
    MAX_USER_AGENT_LENGTH,
    DeviceInfo,
    MessageDetector,
    classify_user_agent,
    message_key,
    warm_up,
)

IPHONE_IOS17 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
IPHONE_IOS18 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
IPHONE_CHROME = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
)
IPAD_MOBILE = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
)
# iPadOS 13+ Safari by default: byte for byte a Mac's user agent.
IPAD_DESKTOP_MODE = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
SAMSUNG_CHROME = (
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
PIXEL_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.113 Mobile Safari/537.36"
)
ANDROID_REDUCED = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
GMAIL_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 Mobile Safari/537.36"
)
FACEBOOK_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/444.0.0.41.113;FBBV/537156497;"
    "FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.1.2;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]"
)
FACEBOOK_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.66 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/440.0.0.33.116;]"
)
INSTAGRAM_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 312.0.3.22.109 (iPhone15,3; iOS 17_2; en_US; "
    "en; scale=3.00; 1290x2796; 548375166)"
)
INSTAGRAM_ANDROID = (
    "Mozilla/5.0 (Linux; Android 12; SM-G973F Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 Instagram "
    "313.0.0.26.328 Android (31/12; 480dpi; 1080x2042; samsung; SM-G973F; beyond1; exynos9820; "
    "en_US; 554218484)"
)
LINE_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Safari Line/13.16.0"
)
SNAPCHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Snapchat/12.54.0.36 (like Safari/8617.2.4.10.8, panda)"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
CHROMEOS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
PLAYSTATION = (
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.0 Safari/605.1.15"
)
IMESSAGE = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
)
BINGPREVIEW = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 BingPreview/1.0b"
)
HEADLESS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/126.0.0.0 Safari/537.36"
)
GOOGLEBOT_MOBILE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

HUMANS: list[tuple[str, str, str]] = [
    ("iphone_safari_ios17", IPHONE_IOS17, "ios"),
    ("iphone_safari_ios18", IPHONE_IOS18, "ios"),
    ("iphone_chrome", IPHONE_CHROME, "ios"),
    ("ipad_mobile_mode", IPAD_MOBILE, "ios"),
    # Documented limitation: iPadOS sends a Mac user agent, so it is routed as desktop.
    ("ipad_desktop_mode", IPAD_DESKTOP_MODE, "desktop"),
    ("samsung_internet", SAMSUNG_INTERNET, "android"),
    ("samsung_chrome", SAMSUNG_CHROME, "android"),
    ("pixel_chrome", PIXEL_CHROME, "android"),
    ("android_reduced_ua", ANDROID_REDUCED, "android"),
    ("gmail_webview", GMAIL_WEBVIEW, "android"),
    ("facebook_iab_ios", FACEBOOK_IOS, "ios"),
    ("facebook_iab_android", FACEBOOK_ANDROID, "android"),
    ("instagram_iab_ios", INSTAGRAM_IOS, "ios"),
    ("instagram_iab_android", INSTAGRAM_ANDROID, "android"),
    ("line_iab_ios", LINE_IOS, "ios"),
    ("snapchat_iab_ios", SNAPCHAT_IOS, "ios"),
    ("windows_chrome", WINDOWS_CHROME, "desktop"),
    ("windows_firefox", WINDOWS_FIREFOX, "desktop"),
    ("windows_edge", WINDOWS_EDGE, "desktop"),
    ("mac_safari", MAC_SAFARI, "desktop"),
    ("mac_chrome", MAC_CHROME, "desktop"),
    ("linux_firefox", LINUX_FIREFOX, "desktop"),
    ("linux_chrome", LINUX_CHROME, "desktop"),
    ("chromeos", CHROMEOS, "desktop"),
    ("playstation", PLAYSTATION, "other"),
    # okhttp is the HTTP stack of real Android apps: not a bot, even though crawlerdetect says so.
    ("okhttp", "okhttp/4.12.0", "other"),
]

PREVIEWS: list[tuple[str, str]] = [
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "slackbot"),
    ("Slack-ImgProxy (+https://api.slack.com/robots)", "slackbot"),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "facebook"),
    ("Facebot", "facebook"),
    ("Twitterbot/1.0", "twitterbot"),
    ("WhatsApp/2.23.20.0 A", "whatsapp"),
    ("WhatsApp/2.2409.2 i", "whatsapp"),
    ("TelegramBot (like TwitterBot)", "telegrambot"),
    (
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "linkedinbot",
    ),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "discordbot"),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com",
        "skype",
    ),
    (IMESSAGE, "imessage"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "applebot",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; "
        "Google-PageRenderer; Google (+https://developers.google.com/+/web/snippet/)) "
        "Chrome/56.0.2924.87 Safari/537.36",
        "google",
    ),
    ("Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)", "redditbot"),
    ("Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)", "embedly"),
    ("Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)", "pinterest"),
    ("Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)", "vkshare"),
    ("Viber/21.0.0.0 CFNetwork/1404.0.5 Darwin/22.3.0", "viber"),
    ("facebookexternalhit/1.1;line-poker/1.0", "line"),
    ("Snap URL Preview Service; bot; snapchat; https://developers.snap.com/robots", "snapchat"),
    ("Iframely/1.3.1 (+https://iframely.com/docs/about)", "iframely"),
]

SCANNERS: list[tuple[str, str]] = [
    (BINGPREVIEW, "microsoft_safelinks"),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/91.0 Safari/537.36 Proofpoint",
        "proofpoint",
    ),
    ("Mimecast URL Protect", "mimecast"),
    ("Barracuda Sentinel (EE)", "barracuda"),
    ("Cisco-IronPort-WSA", "cisco"),
    ("Mozilla/5.0 TrendMicro", "trend_micro"),
    ("Symantec MessageLabs", "symantec"),
    ("Sophos UTM", "sophos"),
    ("Zscaler", "zscaler"),
    ("Check Point Harmony Email", "check_point"),
]

AUTOMATION: list[tuple[str, str]] = [
    ("curl/8.5.0", "curl"),
    ("Wget/1.21.4", "wget"),
    ("python-requests/2.32.3", "python_requests"),
    ("Go-http-client/2.0", "go_http_client"),
    (HEADLESS_CHROME, "headless_chrome"),
    (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 "
        "Safari/538.1",
        "phantomjs",
    ),
]

CRAWLERS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    GOOGLEBOT_MOBILE,
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
]


def test_the_table_is_large() -> None:
    assert len(HUMANS) + len(PREVIEWS) + len(SCANNERS) + len(AUTOMATION) + len(CRAWLERS) >= 30


@pytest.mark.parametrize(
    ("ua", "platform"), [(u, p) for _, u, p in HUMANS], ids=[n for n, _, _ in HUMANS]
)
def test_people_are_classified_by_platform_and_not_bots(ua: str, platform: str) -> None:
    info = classify_user_agent(ua)
    assert info.platform == platform
    assert not info.is_bot
    assert info.bot_reason is None
    assert not info.is_preview


@pytest.mark.parametrize(("ua", "name"), PREVIEWS, ids=[n for _, n in PREVIEWS])
def test_link_preview_crawlers_get_the_preview_page(ua: str, name: str) -> None:
    info = classify_user_agent(ua)
    assert info.is_bot
    assert info.is_preview
    assert info.bot_reason == f"preview:{name}"


@pytest.mark.parametrize(("ua", "name"), SCANNERS, ids=[n for _, n in SCANNERS])
def test_email_scanners_that_name_themselves_are_flagged(ua: str, name: str) -> None:
    info = classify_user_agent(ua)
    assert info.is_bot
    assert not info.is_preview
    assert info.bot_reason == f"scanner:{name}"


@pytest.mark.parametrize(("ua", "name"), AUTOMATION, ids=[n for _, n in AUTOMATION])
def test_headless_browsers_and_http_libraries_are_automation(ua: str, name: str) -> None:
    info = classify_user_agent(ua)
    assert (info.is_bot, info.is_preview, info.bot_reason) == (True, False, f"automation:{name}")


@pytest.mark.parametrize("ua", CRAWLERS)
def test_search_crawlers_are_generic_crawlers(ua: str) -> None:
    info = classify_user_agent(ua)
    assert (info.is_bot, info.is_preview, info.bot_reason) == (True, False, "crawler")


@pytest.mark.parametrize("ua", [None, "", "   ", "\t"])
def test_a_missing_user_agent_is_a_bot(ua: str | None) -> None:
    info = classify_user_agent(ua)
    assert info == DeviceInfo("other", None, None, None, True, "empty_user_agent", False)


def test_details_come_from_ua_parser() -> None:
    iphone = classify_user_agent(IPHONE_IOS17)
    assert (iphone.os_version, iphone.device_model, iphone.browser) == (
        "17.4.1",
        "iPhone",
        "Mobile Safari",
    )
    pixel = classify_user_agent(PIXEL_CHROME)
    assert (pixel.os_version, pixel.device_model, pixel.browser) == (
        "14",
        "Pixel 8 Pro",
        "Chrome Mobile",
    )
    assert classify_user_agent(FACEBOOK_IOS).browser == "Facebook"
    assert classify_user_agent(WINDOWS_EDGE).browser == "Edge"


def test_bots_keep_their_platform_but_not_spider_models() -> None:
    info = classify_user_agent(GOOGLEBOT_MOBILE)
    assert info.platform == "android"
    assert info.device_model is None


def test_in_app_browsers_are_not_mistaken_for_their_preview_bots() -> None:
    for ua in (FACEBOOK_IOS, FACEBOOK_ANDROID, LINE_IOS, SNAPCHAT_IOS):
        assert not classify_user_agent(ua).is_bot


def test_results_are_cached_per_user_agent() -> None:
    assert classify_user_agent(PIXEL_CHROME) is classify_user_agent(PIXEL_CHROME)


def test_very_long_user_agents_are_truncated_before_classification() -> None:
    info = classify_user_agent(IPHONE_IOS17 + " " * MAX_USER_AGENT_LENGTH + "Googlebot/2.1")
    assert info.platform == "ios"
    assert not info.is_bot


def test_message_key_separates_recipients_campaigns_templates_and_clients() -> None:
    base = ("Ab12", "spring", "cust-1", "203.0.113.7", IPHONE_IOS17)
    key = message_key(*base)
    assert key == message_key(*base)
    for i, other in enumerate(["Zz99", "summer", "cust-2", "203.0.113.8", PIXEL_CHROME]):
        changed = list(base)
        changed[i] = other
        assert message_key(*changed) != key
    assert message_key("Ab12", None, "c", "ip", None) == message_key("Ab12", "", "c", "ip", "")


# --- MessageDetector ---------------------------------------------------------------------------

NAT = "100.64.0.1"  # carrier-grade NAT: thousands of subscribers behind one address


def _key(recipient: str, *, ip: str = NAT, ua: str = IPHONE_IOS17, campaign: str = "c1") -> int:
    return message_key("Ab12", campaign, recipient, ip, ua)


# (name, clicks as (recipient, link, seconds after the send), expected reasons, re-flagged)
MESSAGE_CASES: list[tuple[str, list[tuple[str, str, float]], list[str | None], list[int]]] = [
    (
        "one recipient's 5 links in 3 s: flagged from the 3rd, the first 2 re-flagged",
        [("r1", f"l{i}", 0.75 * i) for i in range(5)],
        [None, None, "scanner:message", "scanner:message", "scanner:message"],
        [0, 1],
    ),
    (
        "a person opening 2 links of a message is not a scanner",
        [("r1", "l1", 0.0), ("r1", "l2", 1.0)],
        [None, None],
        [],
    ),
    (
        "repeat clicks on one link never count twice, and are re-flagged with the rest",
        [("r1", "l1", 0.0), ("r1", "l1", 0.2), ("r1", "l2", 0.4), ("r1", "l3", 0.6)],
        [None, None, None, "scanner:message"],
        [0, 1, 2],
    ),
    (
        "three links spread over minutes are a person reading",
        [("r1", "l1", 0.0), ("r1", "l2", 40.0), ("r1", "l3", 95.0)],
        [None, None, None],
        [],
    ),
    (
        "three links 3 and 4 s apart are a person switching back to the mail app",
        [("r1", "l1", 0.0), ("r1", "l2", 3.0), ("r1", "l3", 7.0)],
        [None, None, None],
        [],
    ),
    (
        "different recipients never merge, however close their clicks",
        [(f"r{i}", f"l{i % 5}", i * 0.01) for i in range(10)],
        [None] * 10,
        [],
    ),
    (
        "a scanner among a crowd is caught, the crowd is not",
        [
            *[("p1", "l1", 0.0), ("s", "l1", 0.1), ("p2", "l2", 0.2), ("s", "l2", 0.3)],
            *[("p3", "l3", 0.4), ("s", "l3", 0.5), ("p4", "l4", 0.6), ("s", "l4", 0.7)],
        ],
        [None, None, None, None, None, "scanner:message", None, "scanner:message"],
        [1, 3],
    ),
    (
        "the flag clears once the key has been idle for a window",
        [("r1", "l1", 0.0), ("r1", "l2", 0.1), ("r1", "l3", 0.2), ("r1", "l4", 30.0)],
        [None, None, "scanner:message", None],
        [0, 1],
    ),
]


@pytest.mark.parametrize(
    ("clicks", "expected", "reflagged"),
    [c[1:] for c in MESSAGE_CASES],
    ids=[c[0] for c in MESSAGE_CASES],
)
def test_message_detector(
    clicks: list[tuple[str, str, float]], expected: list[str | None], reflagged: list[int]
) -> None:
    detector = MessageDetector()
    reasons: list[str | None] = []
    earlier: list[int] = []
    for n, (recipient, link, at) in enumerate(clicks):
        reason, flagged = detector.observe(_key(recipient), link, n, 1000.0 + at)
        reasons.append(reason)
        earlier.extend(flagged)
    assert reasons == expected
    assert sorted(earlier) == reflagged


def test_a_crowd_of_1000_recipients_behind_one_address_and_user_agent_is_not_flagged() -> None:
    detector = MessageDetector()
    results = []
    for i in range(1000):
        # Each person opens one or two of the message's five links, all within ten seconds.
        for j in range(1 + i % 2):
            results.append(detector.observe(_key(f"r{i}"), f"l{(i + j) % 5}", i, 1000.0 + i / 100))
    assert all(reason is None and not earlier for reason, earlier in results)


def test_the_same_recipient_on_another_campaign_or_client_is_another_message() -> None:
    detector = MessageDetector()
    keys = [
        _key("r1"),
        _key("r1", campaign="c2"),
        _key("r1", ip="198.51.100.1"),
        _key("r1", ua=PIXEL_CHROME),
    ]
    # Eight clicks, two per key: no key ever reaches three links.
    results = [detector.observe(k, f"l{i}", 0, 1.0) for k in keys for i in range(2)]
    assert results == [(None, ())] * 8


def test_a_sandbox_opening_links_seconds_apart_is_caught_by_the_fourth_link() -> None:
    detector = MessageDetector()  # a third link within 5 s, or a fourth within 20 s
    reasons = [detector.observe("k", f"l{i}", i, 100.0 + 4.5 * i)[0] for i in range(5)]
    assert reasons == [None, None, None, "scanner:message", "scanner:message"]


def test_rules_are_configurable() -> None:
    detector = MessageDetector(rules=[(5, 2.0)])
    reasons = [detector.observe("k", f"l{i}", i, 1.0 + i / 10)[0] for i in range(5)]
    assert reasons == [None] * 4 + ["scanner:message"]
    detector = MessageDetector(rules=[(2, 1.0)])
    assert detector.observe("k", "a", 0, 1.0)[0] is None
    assert detector.observe("k", "b", 1, 2.5)[0] is None  # outside the window
    assert detector.observe("k", "c", 2, 3.0) == ("scanner:message", (1,))


@pytest.mark.parametrize(
    "kwargs",
    [{"rules": []}, {"rules": [(1, 5.0)]}, {"rules": [(3, 0.0)]}, {"max_keys": 0}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MessageDetector(**kwargs)


def test_memory_is_bounded_by_max_keys() -> None:
    detector = MessageDetector(max_keys=100)
    for i in range(10_000):
        detector.observe(f"k{i}", "l", i, 1000.0)
    assert len(detector) == 100
    # The most recent keys are the ones kept.
    detector.observe("k9999", "x1", "a", 1000.0)
    assert detector.observe("k9999", "x2", "b", 1000.0)[0] == "scanner:message"


def test_what_one_key_holds_is_bounded() -> None:
    detector = MessageDetector()
    for i in range(1000):
        detector.observe("k", "same", i, 1.0)
    assert len(detector._messages["k"]) == 2 + 3 * MessageDetector.MAX_HELD
    assert detector.observe("k", "other", -1, 1.0) == (None, ())
    assert detector.observe("k", "third", -2, 1.0) == (
        "scanner:message",
        (*range(994, 1000), -1),
    )
    assert detector._messages["k"] == (1.0, True)


def test_idle_keys_are_pruned_as_time_goes_by() -> None:
    detector = MessageDetector(rules=[(3, 10.0)])
    for i in range(50):
        detector.observe(f"old{i}", "l", i, 0.0)
    for i in range(50):
        detector.observe(f"new{i}", "l", i, 100.0)
    assert len(detector) == 50


def test_it_is_thread_safe() -> None:
    detector = MessageDetector(max_keys=10_000)
    results: list[tuple[str | None, tuple[object, ...]]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        local = [detector.observe(f"scanner{n}", f"l{i}", (n, i), 1.0) for i in range(5)]
        local += [detector.observe(f"person{n}-{i}", "l", (n, i), 1.0) for i in range(500)]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 * 505
    assert [r for r, _ in results].count("scanner:message") == 8 * 3
    assert sorted(e for _, earlier in results for e in earlier) == sorted(
        (n, i) for n in range(8) for i in range(2)
    )
    assert len(detector) == 8 + 8 * 500


# --- the fast pattern matching agrees with the libraries -----------------------------------------

ALL_USER_AGENTS = (
    [ua for _, ua, _ in HUMANS]
    + [ua for ua, _ in PREVIEWS + SCANNERS + AUTOMATION]
    + CRAWLERS
    + ["Mozilla/5.0 (compatible; YandexBot/3.0)", "YandexSearch/9.0", "Dart/3.2 (dart:io)"]
)


@pytest.mark.parametrize("ua", ALL_USER_AGENTS)
def test_crawler_verdicts_match_crawlerdetect(ua: str) -> None:
    expected = CrawlerDetect().is_crawler(ua) and not ua.startswith("okhttp/")
    assert detect._is_crawler(ua) == expected


def test_the_pure_python_fallback_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    fast_bots = detect._KNOWN_BOTS
    fast_crawlers = detect._crawlers()
    monkeypatch.setattr(detect, "_RUST_EXTRACTOR", None)
    slow_bots = detect._PatternSet(detect._PREVIEW + detect._SCANNER + detect._AUTOMATION)
    slow_crawlers = detect._PatternSet([("crawler", p) for p in CRAWLER_PATTERNS])
    assert slow_bots._fast is None
    for ua in ALL_USER_AGENTS:
        assert slow_bots.first(ua) == fast_bots.first(ua), ua
        assert slow_crawlers.first(ua) == fast_crawlers.first(ua), ua


def test_look_around_patterns_still_apply() -> None:
    # crawlerdetect's "Yandex(?!Search)" cannot run on the Rust engine; re runs it instead.
    assert classify_user_agent("Mozilla/5.0 (compatible; YandexBot/3.0)").bot_reason == "crawler"
    assert not detect._is_crawler("YandexSearch/9.0")


def test_warm_up_builds_the_matchers() -> None:
    warm_up()
    assert detect._crawlers.cache_info().currsize == 1
