"""User-agent classification (platform, bots, previews) and burst-based scanner detection."""

from __future__ import annotations

import threading

import pytest
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS

from linkgen.clicks import detect
from linkgen.clicks.detect import (
    MAX_USER_AGENT_LENGTH,
    BurstDetector,
    DeviceInfo,
    classify_user_agent,
    client_key,
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


def test_client_key_combines_ip_and_a_hash_of_the_user_agent() -> None:
    key = client_key("203.0.113.7", IPHONE_IOS17)
    assert key.startswith("203.0.113.7|")
    assert IPHONE_IOS17 not in key
    assert key == client_key("203.0.113.7", IPHONE_IOS17)
    assert key != client_key("203.0.113.7", PIXEL_CHROME)
    assert client_key("203.0.113.7", None) == client_key("203.0.113.7", "")


# --- BurstDetector -----------------------------------------------------------------------------


def test_three_links_within_the_window_are_fine_the_fourth_is_a_burst() -> None:
    detector = BurstDetector()
    assert detector.observe("c", "l1", 100.0) is None
    assert detector.observe("c", "l2", 101.0) is None
    assert detector.observe("c", "l3", 102.0) is None
    assert detector.observe("c", "l4", 103.0) == "scanner:burst"
    # Still inside the window of the burst: the client stays flagged.
    assert detector.observe("c", "l1", 104.0) == "scanner:burst"


def test_repeat_clicks_on_one_link_are_not_a_burst() -> None:
    detector = BurstDetector()
    assert all(detector.observe("c", "same", 100.0 + i / 10) is None for i in range(50))


def test_links_spread_beyond_the_window_are_not_a_burst() -> None:
    detector = BurstDetector(max_links=3, window_seconds=10)
    assert [detector.observe("c", f"l{i}", 100.0 + 4 * i) for i in range(10)] == [None] * 10


def test_the_flag_clears_once_the_window_has_passed() -> None:
    detector = BurstDetector()
    for i in range(4):
        detector.observe("c", f"l{i}", 100.0)
    assert detector.observe("c", "l9", 111.0) is None


def test_clients_are_counted_separately() -> None:
    detector = BurstDetector(max_links=1)
    assert detector.observe("a", "l1", 1.0) is None
    assert detector.observe("b", "l2", 1.0) is None
    assert detector.observe("a", "l3", 1.0) == "scanner:burst"


def test_thresholds_are_configurable() -> None:
    detector = BurstDetector(max_links=5, window_seconds=2)
    assert [detector.observe("c", f"l{i}", 1.0) for i in range(6)] == [None] * 5 + ["scanner:burst"]


@pytest.mark.parametrize("kwargs", [{"max_links": 0}, {"window_seconds": 0}, {"max_clients": 0}])
def test_nonsense_settings_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        BurstDetector(**kwargs)


def test_memory_is_bounded_by_max_clients() -> None:
    detector = BurstDetector(max_clients=100)
    for i in range(10_000):
        detector.observe(f"client{i}", "l", 1000.0)
    assert len(detector) == 100
    # The most recent clients are the ones kept.
    for i in range(3):
        detector.observe("client9999", f"x{i}", 1000.0)
    assert detector.observe("client9999", "x9", 1000.0) == "scanner:burst"


def test_links_per_client_are_bounded() -> None:
    detector = BurstDetector(max_links=3)
    for i in range(1000):
        detector.observe("c", f"l{i}", 1.0)
    assert len(detector._clients["c"]) == 4


def test_idle_clients_are_pruned_as_time_goes_by() -> None:
    detector = BurstDetector(window_seconds=10)
    for i in range(50):
        detector.observe(f"old{i}", "l", 0.0)
    for i in range(50):
        detector.observe(f"new{i}", "l", 100.0)
    assert len(detector) == 50


def test_it_is_thread_safe() -> None:
    detector = BurstDetector(max_links=3, max_clients=10_000)
    results: list[str | None] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        local = [detector.observe("shared", f"t{n}-l{i}", 1.0) for i in range(100)]
        local += [detector.observe(f"own{n}-{i}", "l", 1.0) for i in range(500)]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 * 600
    assert results.count("scanner:burst") >= 8 * 100 - 3
    assert len(detector) == 1 + 8 * 500


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
