"""The redirect decision: precedence per platform, store URLs, deep links, open-redirect refusals."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkgen.domain.routing import (
    Redirect,
    TemplateRouting,
    decide_redirect,
    force_deeplink_html,
    preview_html,
)

TEMPLATE = TemplateRouting(
    template_id="AbCd",
    ios_app_id="id123456789",
    android_app_id="com.example.app",
    ios_store_url=None,
    android_store_url=None,
    uri_scheme="myapp://",
    universal_links=True,
    app_links=True,
    web_fallback_url="https://www.example.com/landing",
    redirect_allowlist=("example.com",),
)
BARE = dataclasses.replace(
    TEMPLATE,
    ios_app_id=None,
    android_app_id=None,
    uri_scheme=None,
    web_fallback_url=None,
)
APP_STORE = "https://apps.apple.com/app/id123456789"
CLICK = "c1ick-ID_42"

IOS_URL = "https://ios.example.com/promo"
ANDROID_URL = "https://android.example.com/promo"
WEB_DP = "https://www.example.com/web"
AF_R = "https://shop.example.com/sale"
ALL_URLS = {
    "af_ios_url": IOS_URL,
    "af_android_url": ANDROID_URL,
    "af_web_dp": WEB_DP,
    "af_r": AF_R,
}


def decide(platform: str, template: TemplateRouting = TEMPLATE, /, **params: str) -> Redirect:
    return decide_redirect(
        platform, {"pid": "Email", "c": "spring_sale", **params}, template, CLICK
    )


def play_referrer(url: str) -> dict[str, list[str]]:
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "play.google.com",
        "/store/apps/details",
    )
    query = parse_qs(parts.query)
    assert query["id"] == ["com.example.app"]
    return parse_qs(query["referrer"][0])


# --- precedence per platform -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "url", "outcome"),
    [
        ((), IOS_URL, "ios_url"),
        (("af_ios_url",), AF_R, "af_r"),
        (("af_ios_url", "af_r"), APP_STORE, "app_store"),
    ],
)
def test_ios_precedence(drop: tuple[str, ...], url: str, outcome: str) -> None:
    params = {k: v for k, v in ALL_URLS.items() if k not in drop}
    assert decide("ios", **params) == Redirect(url, outcome)


@pytest.mark.parametrize(
    ("drop", "url", "outcome"),
    [
        ((), ANDROID_URL, "android_url"),
        (("af_android_url",), AF_R, "af_r"),
    ],
)
def test_android_precedence(drop: tuple[str, ...], url: str, outcome: str) -> None:
    params = {k: v for k, v in ALL_URLS.items() if k not in drop}
    assert decide("android", **params) == Redirect(url, outcome)


def test_android_without_redirects_goes_to_google_play() -> None:
    params = {k: v for k, v in ALL_URLS.items() if k not in ("af_android_url", "af_r")}
    redirect = decide("android", **params)
    assert redirect.outcome == "google_play"
    assert redirect.html is None
    assert play_referrer(redirect.url)["af_tranid"] == [CLICK]


@pytest.mark.parametrize("platform", ["desktop", "other", "", "windows-phone"])
@pytest.mark.parametrize(
    ("drop", "url", "outcome"),
    [
        ((), WEB_DP, "web_dp"),
        (("af_web_dp",), AF_R, "af_r"),
        (("af_web_dp", "af_r"), "https://www.example.com/landing", "web_fallback"),
    ],
)
def test_desktop_and_other_precedence(
    platform: str, drop: tuple[str, ...], url: str, outcome: str
) -> None:
    params = {k: v for k, v in ALL_URLS.items() if k not in drop}
    assert decide(platform, **params) == Redirect(url, outcome)


def test_platform_specific_urls_do_not_leak_across_platforms() -> None:
    assert decide("desktop", af_ios_url=IOS_URL, af_android_url=ANDROID_URL).outcome == (
        "web_fallback"
    )
    assert decide("ios", af_android_url=ANDROID_URL, af_web_dp=WEB_DP).outcome == "app_store"
    assert decide("android", af_ios_url=IOS_URL, af_web_dp=WEB_DP).outcome == "google_play"


@pytest.mark.parametrize("platform", ["ios", "android"])
def test_mobile_without_an_app_falls_back_to_the_web_fallback(platform: str) -> None:
    template = dataclasses.replace(BARE, web_fallback_url="https://www.example.com/landing")
    assert decide(platform, template) == Redirect("https://www.example.com/landing", "web_fallback")


@pytest.mark.parametrize("platform", ["ios", "android", "desktop", "other"])
def test_nothing_to_redirect_to_is_no_target(platform: str) -> None:
    assert decide(platform, BARE) == Redirect("", "no_target")


def test_af_r_still_works_without_apps() -> None:
    for platform in ("ios", "android", "desktop"):
        assert decide(platform, BARE, af_r=AF_R) == Redirect(AF_R, "af_r")


def test_template_store_urls_win_over_built_ones() -> None:
    template = dataclasses.replace(
        TEMPLATE,
        ios_store_url="https://apps.apple.com/us/app/example/id123456789",
        android_store_url="https://play.google.com/store/apps/details?id=com.example.app&hl=en",
    )
    assert decide("ios", template).url == "https://apps.apple.com/us/app/example/id123456789"
    play = decide("android", template, af_dp="").url
    assert parse_qs(urlsplit(play).query)["hl"] == ["en"]
    assert play_referrer(play)["af_tranid"] == [CLICK]


def test_a_non_play_android_store_is_used_as_is() -> None:
    template = dataclasses.replace(
        TEMPLATE, android_store_url="https://galaxystore.samsung.com/detail/com.example.app"
    )
    assert decide("android", template) == Redirect(
        "https://galaxystore.samsung.com/detail/com.example.app", "google_play"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"ios_app_id": "123456789"},
        {"ios_app_id": "id123/../../evil"},
        {"ios_store_url": "http://apps.apple.com/app/id1"},
        {"ios_store_url": "javascript:alert(1)"},
    ],
)
def test_malformed_template_ios_settings_are_not_used(changes: dict[str, str]) -> None:
    template = dataclasses.replace(
        TEMPLATE, ios_app_id=changes.get("ios_app_id"), ios_store_url=changes.get("ios_store_url")
    )
    assert decide("ios", template).outcome == "web_fallback"


def test_a_malformed_package_is_not_used() -> None:
    template = dataclasses.replace(TEMPLATE, android_app_id="com.example&id=evil")
    assert decide("android", template).outcome == "web_fallback"


def test_a_non_https_web_fallback_is_not_used() -> None:
    template = dataclasses.replace(BARE, web_fallback_url="http://www.example.com/")
    assert decide("desktop", template).outcome == "no_target"


# --- Google Play referrer ------------------------------------------------------------------------


def test_google_play_referrer_carries_the_click_id_and_campaign() -> None:
    url = decide(
        "android", pid="Email", c="spring sale & more", af_adset="a=b", is_retargeting="true"
    ).url
    assert play_referrer(url) == {
        "af_tranid": [CLICK],
        "pid": ["Email"],
        "c": ["spring sale & more"],
        "af_adset": ["a=b"],
        "is_retargeting": ["true"],
    }
    # The whole referrer is one encoded query value: the contract's af_tranid%3D{click_id}.
    assert f"referrer=af_tranid%3D{CLICK}" in url


def test_google_play_referrer_leaves_out_other_parameters() -> None:
    url = decide("android", af_sub1="secret", deep_link_value="shoes", idfa="x").url
    assert set(play_referrer(url)) == {"af_tranid", "pid", "c"}


def test_an_existing_referrer_on_the_template_store_url_is_replaced() -> None:
    template = dataclasses.replace(
        TEMPLATE,
        android_store_url="https://play.google.com/store/apps/details?id=com.example.app"
        "&referrer=utm_source%3Dold",
    )
    query = parse_qs(urlsplit(decide("android", template).url).query)
    assert len(query["referrer"]) == 1
    assert parse_qs(query["referrer"][0])["af_tranid"] == [CLICK]


# --- intent:// for App Links ---------------------------------------------------------------------


INTENT_RE = re.compile(
    r"intent://(?P<path>[^#]*)#Intent;scheme=(?P<scheme>[^;]+);package=(?P<package>[^;]+);"
    r"S\.browser_fallback_url=(?P<fallback>[^;]+);end\Z"
)


def test_app_links_with_af_dp_give_an_intent_url_falling_back_to_google_play() -> None:
    redirect = decide("android", af_dp="myapp://product/12?color=red")
    assert redirect.outcome == "intent"
    match = INTENT_RE.match(redirect.url)
    assert match is not None
    # The app gets the link's parameters and the click id after af_dp's own.
    assert match["path"] == f"product/12?color=red&pid=Email&c=spring_sale&af_tranid={CLICK}"
    assert match["scheme"] == "myapp"
    assert match["package"] == "com.example.app"
    fallback = unquote(match["fallback"])
    assert play_referrer(fallback)["af_tranid"] == [CLICK]


def test_intent_path_cannot_break_out_of_the_intent_syntax() -> None:
    redirect = decide("android", af_dp="myapp://p;x#Intent;package=evil;end")
    match = INTENT_RE.match(redirect.url)
    assert match is not None
    assert match["package"] == "com.example.app"
    assert "#" not in match["path"]
    assert ";" not in match["path"]


def test_intent_uses_the_scheme_case_insensitively() -> None:
    assert decide("android", af_dp="MyApp://home").outcome == "intent"


def test_no_intent_without_app_links() -> None:
    template = dataclasses.replace(TEMPLATE, app_links=False)
    assert decide("android", template, af_dp="myapp://home").outcome == "google_play"


def test_no_intent_without_af_dp() -> None:
    assert decide("android").outcome == "google_play"


@pytest.mark.parametrize(
    "af_dp",
    [
        "otherapp://home",
        "https://www.example.com/home",
        "javascript:alert(1)",
        "myapp",
        "myapp ://home",
        "myapp://ho me",
        "myapp://home\n",
    ],
)
def test_af_dp_on_another_scheme_gives_no_intent(af_dp: str) -> None:
    assert decide("android", af_dp=af_dp).outcome == "google_play"


def test_af_dp_is_refused_when_the_template_has_no_scheme() -> None:
    template = dataclasses.replace(TEMPLATE, uri_scheme=None)
    assert decide("android", template, af_dp="myapp://home").outcome == "google_play"


@pytest.mark.parametrize("bad_scheme", ["javascript://", "https://", "data:", "file"])
def test_a_dangerous_template_scheme_is_never_used(bad_scheme: str) -> None:
    template = dataclasses.replace(TEMPLATE, uri_scheme=bad_scheme)
    scheme = bad_scheme.split(":")[0]
    redirect = decide("android", template, af_dp=f"{scheme}:alert(1)", af_force_deeplink="true")
    assert redirect.outcome == "google_play"
    redirect = decide("ios", template, af_dp=f"{scheme}:alert(1)", af_force_deeplink="true")
    assert redirect == Redirect(APP_STORE, "app_store")


def test_af_redirects_win_over_the_intent() -> None:
    assert decide("android", af_r=AF_R, af_dp="myapp://home").outcome == "af_r"


# --- af_force_deeplink --------------------------------------------------------------------------


def _script_strings(page: str) -> list[str]:
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    return [json.loads(s) for s in re.findall(r'"(?:[^"\\]|\\.)*"', script)]


def test_force_deeplink_on_ios_tries_the_scheme_then_the_app_store() -> None:
    redirect = decide("ios", af_dp="myapp://product/12", af_force_deeplink="true")
    assert redirect.outcome == "deeplink_scheme"
    assert redirect.url == APP_STORE
    assert redirect.html is not None
    strings = _script_strings(redirect.html)
    assert f"myapp://product/12?pid=Email&c=spring_sale&af_tranid={CLICK}" in strings
    assert APP_STORE in strings
    assert redirect.csp is not None and "'sha256-" in redirect.csp
    assert 'content="noindex"' in redirect.html


def test_force_deeplink_falls_back_to_the_redirect_that_would_have_applied() -> None:
    redirect = decide("ios", af_dp="myapp://home", af_force_deeplink="TRUE", af_ios_url=IOS_URL)
    assert (redirect.outcome, redirect.url) == ("deeplink_scheme", IOS_URL)


def test_force_deeplink_on_android_without_app_links_is_an_intent_to_google_play() -> None:
    # Chrome lets a redirect open an intent but not a page's script without a user gesture.
    template = dataclasses.replace(TEMPLATE, app_links=False)
    redirect = decide("android", template, af_dp="myapp://home", af_force_deeplink="true")
    assert redirect.outcome == "intent"
    match = INTENT_RE.match(redirect.url)
    assert match is not None and match["path"].startswith("home?")
    assert play_referrer(unquote(match["fallback"]))["af_tranid"] == [CLICK]


def test_force_deeplink_with_app_links_keeps_the_intent() -> None:
    redirect = decide("android", af_dp="myapp://home", af_force_deeplink="true")
    assert redirect.outcome == "intent"
    assert redirect.html is None


def test_force_deeplink_needs_true() -> None:
    assert decide("ios", af_force_deeplink="false", af_dp="myapp://home") == Redirect(
        APP_STORE, "app_store"
    )


@pytest.mark.parametrize("af_dp", [None, "javascript:alert(1)", "otherapp://home"])
def test_force_deeplink_without_a_usable_af_dp_opens_the_schemes_root(af_dp: str | None) -> None:
    params = {"af_force_deeplink": "true", **({"af_dp": af_dp} if af_dp else {})}
    redirect = decide("ios", **params)
    assert redirect.outcome == "deeplink_scheme" and redirect.html is not None
    assert f"myapp://?pid=Email&c=spring_sale&af_tranid={CLICK}" in _script_strings(redirect.html)
    assert "javascript" not in redirect.html and "otherapp" not in redirect.html


def test_force_deeplink_does_not_apply_on_desktop() -> None:
    redirect = decide("desktop", af_dp="myapp://home", af_force_deeplink="true")
    assert redirect.outcome == "web_fallback"


def test_force_deeplink_without_any_fallback_is_no_target() -> None:
    template = dataclasses.replace(BARE, uri_scheme="myapp://")
    redirect = decide("ios", template, af_dp="myapp://home", af_force_deeplink="true")
    assert redirect == Redirect("", "no_target")


def test_force_deeplink_html_escapes_html_and_javascript() -> None:
    scheme_url = "myapp://x\"</script><script>alert(1)</script>'\u2028"
    page = force_deeplink_html(scheme_url, "https://www.example.com/?a=1&b=<2>")
    body = page.split("<script>", 1)[1].split("</script>", 1)[0]
    assert "</" not in body
    assert "<script>alert" not in page
    assert "\u2028" not in body  # a raw line separator ends a JS string in older engines
    assert _script_strings(page)[:2] == [scheme_url, "https://www.example.com/?a=1&b=<2>"]
    assert f'href="{html.escape(scheme_url)}"' in page


def test_force_deeplink_html_takes_a_csp_nonce() -> None:
    page = force_deeplink_html("myapp://x", APP_STORE, nonce='n"1')
    assert '<script nonce="n&quot;1">' in page


@pytest.mark.parametrize(
    ("scheme_url", "fallback"),
    [
        ("javascript:alert(1)", APP_STORE),
        ("JavaScript:alert(1)", APP_STORE),
        ("data:text/html,<script>", APP_STORE),
        ("vbscript:x", APP_STORE),
        ("file:///etc/passwd", APP_STORE),
        ("https://evil.com", APP_STORE),
        ("myapp://x", "javascript:alert(1)"),
        ("myapp://x", "http://www.example.com"),
    ],
)
def test_force_deeplink_html_refuses_dangerous_urls(scheme_url: str, fallback: str) -> None:
    with pytest.raises(ValueError):
        force_deeplink_html(scheme_url, fallback)


# --- open redirects ------------------------------------------------------------------------------


OPEN_REDIRECTS = [
    "https://evil.com",
    "https://evil.com/",
    "https://example.com.evil.com/",
    "https://notexample.com/",
    "https://evil.com/?example.com",
    "https://evil.com/example.com",
    "https://example.com@evil.com/",
    "https://user:pass@example.com/",
    "https://example.com:443@evil.com/",
    "https://example.com%2F@evil.com/",
    "https://example.com%2f.evil.com/",
    "https://example.com%00.evil.com/",
    "//evil.com",
    "//example.com",
    "http://example.com/",
    "HTTP://example.com/",
    "https:/\\evil.com",
    "https:\\\\evil.com",
    "https://example.com\\@evil.com",
    "https:evil.com",
    "https:/example.com",
    "https:///example.com",
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)//https://example.com",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "https://evil.com#example.com",
    "https://example.com/#frag",
    "https://example.com/#",
    "https://EVIL.COM/",
    "https://ex\u0430mple.com/",  # Cyrillic a
    "https://xn--exmple-4nf.com/",  # the punycode of the lookalike above
    "https://ｅｘａｍｐｌｅ.com/",  # fullwidth letters
    "https://example.com。evil.com/",  # ideographic full stop
    "https://example.com\u2025evil.com/",
    "https://example.com\uff03@evil.com",
    " https://evil.com",
    "https://example.com /@evil.com",
    "\thttps://example.com",
    "https://example.com\n.evil.com",
    "https://ex\tample.com",
    "https://example.com\r\n",
    "https://example.com\x00",
    "https://[::1]/",
    "https://127.0.0.1/",
    "https://example.com:99999/",
    "https://example.com:evil.com/",
    "https://example.com../",
    "https://.example.com/",
    "https://-example.com/",
    "https://example.com/" + "a" * 2000,
    "",
]


@pytest.mark.parametrize("url", OPEN_REDIRECTS)
@pytest.mark.parametrize(
    ("platform", "param"),
    [
        ("ios", "af_ios_url"),
        ("ios", "af_r"),
        ("android", "af_android_url"),
        ("android", "af_r"),
        ("desktop", "af_web_dp"),
        ("desktop", "af_r"),
    ],
)
def test_open_redirect_attempts_are_ignored(platform: str, param: str, url: str) -> None:
    redirect = decide(platform, **{param: url})
    assert redirect.outcome in ("app_store", "google_play", "web_fallback")
    assert url not in redirect.url or not url


@pytest.mark.parametrize("url", OPEN_REDIRECTS)
def test_no_attempt_reaches_anything_but_the_known_targets(url: str) -> None:
    for platform in ("ios", "android", "desktop"):
        for param in ("af_ios_url", "af_android_url", "af_web_dp", "af_r", "af_dp"):
            redirect = decide(platform, **{param: url, "af_force_deeplink": "true"})
            target = redirect.url
            if target.startswith("intent://"):  # the app's own scheme, else its fallback
                match = INTENT_RE.match(target)
                assert match is not None and match["scheme"] == "myapp"
                target = unquote(match["fallback"])
            host = urlsplit(target).hostname
            assert host in ("apps.apple.com", "play.google.com", "www.example.com")


_URLISH = st.one_of(
    st.text(max_size=60),
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(
                [
                    "https:",
                    "//",
                    "/",
                    "\\",
                    "@",
                    ":",
                    "#",
                    "?",
                    ".",
                    "%2F",
                    "%40",
                    "\t",
                    "\n",
                    " ",
                    "example.com",
                    "evil.com",
                    "EXAMPLE.COM",
                    "xn--",
                    "\u0430",
                    "\uff0e",
                    "\u3002",
                    "443",
                    "javascript:",
                    "@evil.com",
                    ".evil.com",
                ]
            ),
            max_size=10,
        ),
    ),
)


@given(_URLISH)
def test_any_af_r_lands_on_the_allowlist_or_is_ignored(url: str) -> None:
    redirect = decide("desktop", af_r=url)
    if redirect.outcome == "af_r":
        parts = urlsplit(redirect.url)
        host = (parts.hostname or "").rstrip(".")
        assert parts.scheme == "https"
        assert host == "example.com" or host.endswith(".example.com")
        assert parts.username is None
        assert parts.fragment == ""
        assert "\\" not in redirect.url
        assert redirect.url.isascii() and redirect.url.isprintable()
    else:
        assert redirect == Redirect("https://www.example.com/landing", "web_fallback")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "https://example.com/",
        "https://shop.example.com/sale?x=1&y=%2F",
        "https://a.b.example.com/path",
        "https://EXAMPLE.com/Path",
        "https://Shop.Example.COM/",
        "HTTPS://example.com/",
        "https://example.com./",
        "https://example.com:8443/x",
    ],
)
def test_allow_listed_https_urls_are_used(url: str) -> None:
    assert decide("desktop", af_r=url) == Redirect(url, "af_r")


def test_non_ascii_in_the_path_is_percent_encoded() -> None:
    assert decide("desktop", af_r="https://example.com/café").url == (
        "https://example.com/caf%C3%A9"
    )


@pytest.mark.parametrize(
    "allowlist",
    [("EXAMPLE.COM",), ("example.com.",), (" example.com ",)],
)
def test_allowlist_entries_are_normalised(allowlist: tuple[str, ...]) -> None:
    template = dataclasses.replace(TEMPLATE, redirect_allowlist=allowlist)
    assert decide("desktop", template, af_r=AF_R).outcome == "af_r"


def test_unicode_hosts_are_never_followed() -> None:
    # Templates store allow-list entries as ASCII host names (the API refuses others), so an
    # IDN destination must be given in punycode; a raw Unicode host is ignored.
    template = dataclasses.replace(TEMPLATE, redirect_allowlist=("xn--bcher-kva.de",))
    assert decide("desktop", template, af_r="https://xn--bcher-kva.de/").outcome == "af_r"
    assert decide("desktop", template, af_r="https://bücher.de/").outcome == "web_fallback"
    assert decide("desktop", template, af_r="https://bucher.de/").outcome == "web_fallback"


def test_ss_is_not_folded_into_eszett() -> None:
    # IDNA 2003 maps ß to ss; browsers (IDNA 2008) do not, so the two must stay different.
    template = dataclasses.replace(TEMPLATE, redirect_allowlist=("straße.de",))
    assert decide("desktop", template, af_r="https://strasse.de/").outcome == "web_fallback"


def test_ip_addresses_never_match_an_allowlist() -> None:
    template = dataclasses.replace(TEMPLATE, redirect_allowlist=("0.1", "1", "127.0.0.1"))
    assert decide("desktop", template, af_r="https://127.0.0.1/").outcome == "web_fallback"


def test_an_empty_allowlist_allows_nothing() -> None:
    template = dataclasses.replace(TEMPLATE, redirect_allowlist=())
    assert decide("desktop", template, af_r=AF_R).outcome == "web_fallback"


def test_an_allowlist_entry_does_not_allow_its_parent() -> None:
    template = dataclasses.replace(TEMPLATE, redirect_allowlist=("shop.example.com",))
    assert decide("desktop", template, af_r="https://example.com/").outcome == "web_fallback"
    assert decide("desktop", template, af_r="https://shop.example.com/").outcome == "af_r"


# --- preview_html ------------------------------------------------------------------------------


def _meta(page: str, prop: str) -> str | None:
    match = re.search(rf'<meta property="{re.escape(prop)}" content="([^"]*)">', page)
    return html.unescape(match[1]) if match else None


def test_preview_page_carries_the_open_graph_tags() -> None:
    page = preview_html(
        {
            "af_og_title": "Spring sale",
            "af_og_description": "Up to 50% off",
            "af_og_image": "https://cdn.example.com/og.png",
        },
        title_fallback="Example",
        url="https://go.example.com/AbCd/x7Gk2pQa",
    )
    assert _meta(page, "og:title") == "Spring sale"
    assert _meta(page, "og:description") == "Up to 50% off"
    assert _meta(page, "og:image") == "https://cdn.example.com/og.png"
    assert _meta(page, "og:url") == "https://go.example.com/AbCd/x7Gk2pQa"
    assert '<meta name="robots" content="noindex">' in page


def test_preview_page_falls_back_to_the_given_title() -> None:
    page = preview_html({}, title_fallback="Example app", url="https://go.example.com/AbCd")
    assert _meta(page, "og:title") == "Example app"
    assert _meta(page, "og:description") is None
    assert _meta(page, "og:image") is None


@pytest.mark.parametrize(
    "image",
    [
        "http://cdn.example.com/og.png",
        "javascript:alert(1)",
        'https://cdn.example.com/a.png" onerror="alert(1)',
        "//cdn.example.com/og.png",
        "data:image/png;base64,AAAA",
    ],
)
def test_preview_image_must_be_clean_https(image: str) -> None:
    page = preview_html({"af_og_image": image}, title_fallback="T", url="https://go.example.com/")
    assert _meta(page, "og:image") is None
    assert "onerror" not in page


@pytest.mark.parametrize(
    "value",
    [
        "<script>alert(1)</script>",
        '"><script>alert(1)</script>',
        "' onmouseover='alert(1)",
        "&lt;already escaped&gt;",
        "</title><script>alert(1)</script>",
    ],
)
def test_preview_page_escapes_every_value(value: str) -> None:
    page = preview_html(
        {"af_og_title": value[:40], "af_og_description": value},
        title_fallback=value,
        url="https://go.example.com/AbCd?x=" + value,
    )
    assert "<script>" not in page
    assert "onmouseover='" not in page
    assert _meta(page, "og:title") == value[:40].strip()
    assert _meta(page, "og:description") == value
    assert _meta(page, "og:url") == "https://go.example.com/AbCd?x=" + value


def test_preview_values_are_cut_to_the_domain_limits() -> None:
    page = preview_html(
        {"af_og_title": "t" * 100, "af_og_description": "d" * 1000},
        title_fallback="T",
        url="https://go.example.com/",
    )
    assert _meta(page, "og:title") == "t" * 40
    assert _meta(page, "og:description") == "d" * 300


# --- push links: the app first ------------------------------------------------------------------


def test_push_link_on_ios_tries_the_scheme_with_the_links_parameters_then_the_store() -> None:
    redirect = decide(
        "ios",
        af_channel="push",
        is_retargeting="true",
        deep_link_value="shoes",
        af_r="https://www.example.com/r",
        idfa="AAAA-1111",
    )
    assert redirect.outcome == "deeplink_scheme" and redirect.url == "https://www.example.com/r"
    assert redirect.html is not None
    app_url, fallback = _script_strings(redirect.html)[:2]
    query = parse_qs(urlsplit(app_url).query)
    assert app_url.startswith("myapp://?")
    assert query["deep_link_value"] == ["shoes"] and query["af_tranid"] == [CLICK]
    assert query["af_channel"] == ["push"] and query["is_retargeting"] == ["true"]
    assert "af_r" not in query and "idfa" not in query  # where the browser goes; the device's id
    assert fallback == "https://www.example.com/r"


def test_the_try_app_page_csp_allows_only_its_own_script() -> None:
    redirect = decide("ios", af_channel="push")
    assert redirect.html is not None and redirect.csp is not None
    script = redirect.html.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in redirect.csp
    assert redirect.csp.startswith("default-src 'none'")
    assert "unsafe-inline" not in redirect.csp


def test_push_link_on_android_is_an_intent_falling_back_to_google_play() -> None:
    template = dataclasses.replace(TEMPLATE, app_links=False)
    redirect = decide("android", template, af_channel="PUSH", deep_link_value="shoes")
    assert redirect.outcome == "intent"
    match = INTENT_RE.match(redirect.url)
    assert match is not None and match["scheme"] == "myapp"
    assert match["package"] == "com.example.app"
    assert "deep_link_value=shoes" in match["path"] and f"af_tranid={CLICK}" in match["path"]
    assert play_referrer(unquote(match["fallback"]))["af_tranid"] == [CLICK]


def test_push_link_on_desktop_is_unchanged() -> None:
    assert decide("desktop", af_channel="push") == decide("desktop")


def test_push_link_without_a_scheme_goes_to_the_store() -> None:
    template = dataclasses.replace(TEMPLATE, uri_scheme=None)
    assert decide("ios", template, af_channel="push") == Redirect(APP_STORE, "app_store")


def test_a_click_time_af_tranid_cannot_name_another_click() -> None:
    redirect = decide("ios", af_channel="push", af_tranid="someone-elses")
    assert redirect.html is not None
    query = parse_qs(urlsplit(_script_strings(redirect.html)[0]).query)
    assert query["af_tranid"] == [CLICK]


def test_a_long_link_keeps_the_deep_link_keys_and_the_click_id_within_2000_characters() -> None:
    redirect = decide("ios", af_channel="push", deep_link_value="shoes", af_sub1="x" * 1990)
    assert redirect.html is not None
    app_url = _script_strings(redirect.html)[0]
    assert len(app_url) <= 2000
    query = parse_qs(urlsplit(app_url).query)
    assert query["deep_link_value"] == ["shoes"] and query["af_tranid"] == [CLICK]
    assert "af_sub1" not in query


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("com", True),
        ("co.uk", True),
        ("github.io", True),
        ("COM.", True),
        ("example.com", False),
        ("shop.example.co.uk", False),
        ("localhost", False),  # not on the list: a name of the operator's own
        ("corp", False),
    ],
)
def test_public_suffixes_are_known_offline(host: str, public: bool) -> None:
    from linkgen.domain.templates import is_public_suffix

    assert is_public_suffix(host) is public
