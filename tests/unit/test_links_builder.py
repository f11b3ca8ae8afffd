"""The OneLink link builder: validation (each refusal names its field), presets, URLs, snippets."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.links import (
    CHANNELS,
    DEFAULT_MEDIA_SOURCE,
    DEFAULT_TTL_SECONDS,
    MAX_URL_LENGTH,
    PENDING_LINK_REF,
    SHORTLINK_ID_RE,
    LinkSpec,
    TemplateInfo,
    build_long_url,
    build_short_url,
    check_redirect_url,
    clevertap_block,
    encode_query,
    generate_shortlink_id,
    has_placeholder,
    is_allowed_host,
    ordered_params,
    parse_link_request,
    parse_ttl,
    with_qr_flag,
)
from linkgen.domain.windows import CLICK_LOOKBACK, REENGAGEMENT_WINDOW, parse_window

TEMPLATE = TemplateInfo("AbCd", "go.example.com", "https", ("example.com", "shop.example.org"))
ALLOW = ["example.com"]
REF = PENDING_LINK_REF


def parse(**body: Any) -> LinkSpec:
    """Parse a body; the channel is email unless given."""
    return parse_link_request({"channel": "email", **body}, TEMPLATE)


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# --------------------------------------------------------------------------- refusals

REFUSALS: list[tuple[dict[str, Any], str]] = [
    # channel
    ({"channel": "fax"}, "channel"),
    ({"channel": "Email"}, "channel"),
    ({"channel": 3}, "channel"),
    # pid
    ({"channel": "custom"}, "media_source"),
    ({"channel": "custom", "media_source": ""}, "media_source"),
    ({"media_source": "a/b"}, "media_source"),
    ({"media_source": "a<b"}, "media_source"),
    ({"media_source": "a>b"}, "media_source"),
    ({"media_source": "a*b"}, "media_source"),
    ({"media_source": "a&b"}, "media_source"),
    ({"media_source": "a?b"}, "media_source"),
    ({"media_source": "a\\b"}, "media_source"),
    ({"media_source": "newsletter_int"}, "media_source"),
    ({"media_source": "Newsletter_INT"}, "media_source"),
    ({"media_source": "googleadwords_int"}, "media_source"),
    ({"media_source": "Facebook Ads"}, "media_source"),
    ({"media_source": "facebook_ads"}, "media_source"),
    ({"media_source": "Apple Search Ads"}, "media_source"),
    ({"media_source": "apple_search_ads"}, "media_source"),
    ({"media_source": "SNAPCHAT_INT"}, "media_source"),
    ({"media_source": " Email"}, "media_source"),
    ({"media_source": "x" * 151}, "media_source"),
    ({"media_source": {"a": 1}}, "media_source"),
    ({"media_source": "a\x00b"}, "media_source"),
    # campaign
    ({"campaign": " spring"}, "campaign"),
    ({"campaign": "spring "}, "campaign"),
    ({"campaign": "c" * 101}, "campaign"),
    ({"campaign": ["a"]}, "campaign"),
    # params shape and keys
    ({"params": ["a"]}, "params"),
    ({"params": "a=b"}, "params"),
    ({"params": {"": "x"}}, "params"),
    ({"params": {"k" * 101: "x"}}, "params." + "k" * 101),
    ({"params": {"{{Profile.key}}": "x"}}, "params.{{Profile.key}}"),
    ({"params": {"a{%x%}": "x"}}, "params.a{%x%}"),
    ({"params": {" af_sub1": "x"}}, "params. af_sub1"),
    ({"params": {"a\nb": "x"}}, "params.a\nb"),
    ({"params": {"pid": "Email"}}, "params.pid"),
    ({"params": {"c": "spring"}}, "params.c"),
    ({"params": {"af_channel": "email"}}, "params.af_channel"),
    ({"params": {"lg_link": "0123456789abcdefABCDEF"}}, "params.lg_link"),
    ({"params": {"af_sub1": {"nested": "x"}}}, "params.af_sub1"),
    ({"params": {"af_sub1": ["x"]}}, "params.af_sub1"),
    ({"params": {"af_sub1": None}}, "params.af_sub1"),
    ({"params": {"af_sub1": float("nan")}}, "params.af_sub1"),
    ({"params": {"af_sub1": "\ud800"}}, "params.af_sub1"),
    # value length limits
    ({"params": {"af_adset": "x" * 101}}, "params.af_adset"),
    ({"params": {"af_ad": "x" * 101}}, "params.af_ad"),
    ({"params": {"af_keywords": "x" * 101}}, "params.af_keywords"),
    ({"params": {"af_c_id": "1" * 25}}, "params.af_c_id"),
    ({"params": {"af_adset_id": "1" * 25}}, "params.af_adset_id"),
    ({"params": {"af_ad_id": "1" * 25}}, "params.af_ad_id"),
    ({"params": {"af_siteid": "1" * 25}}, "params.af_siteid"),
    ({"params": {"af_sub_siteid": "1" * 51}}, "params.af_sub_siteid"),
    *[({"params": {f"af_sub{i}": "x" * 101}}, f"params.af_sub{i}") for i in range(1, 6)],
    ({"params": {"af_og_title": "x" * 41}}, "params.af_og_title"),
    ({"params": {"af_og_description": "x" * 301}}, "params.af_og_description"),
    # windows
    ({"params": {"af_click_lookback": "24h"}}, "params.af_click_lookback"),
    ({"params": {"af_click_lookback": "31d"}}, "params.af_click_lookback"),
    ({"params": {"af_click_lookback": "0d"}}, "params.af_click_lookback"),
    ({"params": {"af_click_lookback": "7"}}, "params.af_click_lookback"),
    ({"params": {"af_click_lookback": "lifetime"}}, "params.af_click_lookback"),
    ({"params": {"af_reengagement_window": "37h"}}, "params.af_reengagement_window"),
    ({"params": {"af_reengagement_window": "91d"}}, "params.af_reengagement_window"),
    ({"params": {"af_reengagement_window": "1w"}}, "params.af_reengagement_window"),
    # redirects and og image
    ({"params": {"af_r": "http://example.com/"}}, "params.af_r"),
    ({"params": {"af_r": "https://evil.com/"}}, "params.af_r"),
    ({"params": {"af_r": "https://example.com/#top"}}, "params.af_r"),
    ({"params": {"af_r": "/relative"}}, "params.af_r"),
    ({"params": {"af_web_dp": "https://evil.com?x=example.com"}}, "params.af_web_dp"),
    ({"params": {"af_ios_url": "https://example.com@evil.com/"}}, "params.af_ios_url"),
    ({"params": {"af_android_url": "https://example.com.evil.com/"}}, "params.af_android_url"),
    ({"params": {"af_r": "https://{{Profile.host}}/x"}}, "params.af_r"),
    ({"params": {"af_r": "https://example.com{{Profile.path}}"}}, "params.af_r"),
    ({"params": {"af_og_image": "http://cdn.example.net/a.png"}}, "params.af_og_image"),
    ({"params": {"af_og_image": "cdn.example.net/a.png"}}, "params.af_og_image"),
    # push presets
    ({"channel": "push", "params": {"is_retargeting": "false"}}, "params.is_retargeting"),
    # short links and ttl
    ({"short": "yes"}, "short"),
    ({"renew_ttl": 1}, "renew_ttl"),
    ({"shortlink_id": "has-dash"}, "shortlink_id"),
    ({"shortlink_id": ""}, "shortlink_id"),
    ({"shortlink_id": "a" * 51}, "shortlink_id"),
    ({"shortlink_id": "ünï"}, "shortlink_id"),
    ({"shortlink_id": 12345678}, "shortlink_id"),
    ({"shortlink_id": "abc", "short": False}, "shortlink_id"),
    ({"ttl": "0d"}, "ttl"),
    ({"ttl": "366d"}, "ttl"),
    ({"ttl": "30s"}, "ttl"),
    ({"ttl": 0}, "ttl"),
    ({"ttl": 366}, "ttl"),
    ({"ttl": True}, "ttl"),
    ({"ttl": 1.5}, "ttl"),
    ({"ttl": "8761h"}, "ttl"),
    # unknown fields
    ({"campain": "typo"}, "campain"),
]


@pytest.mark.parametrize(("extra", "field"), REFUSALS)
def test_refusal_names_the_field(extra: dict[str, Any], field: str) -> None:
    body = {"template_id": "AbCd", "channel": "email", **extra}
    with pytest.raises(InvalidParameter) as info:
        parse_link_request(body, TEMPLATE)
    assert info.value.field == field
    assert info.value.message


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidParameter):
        parse_link_request(["not", "an", "object"], TEMPLATE)  # type: ignore[arg-type]


ACCEPTED: list[dict[str, Any]] = [
    {"media_source": "newsletter"},
    {"media_source": "x" * 150},
    {"media_source": "Email_internal"},
    {"campaign": "c" * 100},
    {"campaign": "spring sale {{Campaign.name}}"},
    {"params": {"af_og_title": "x" * 40, "af_og_description": "y" * 300}},
    {"params": {"af_click_lookback": "1h"}},
    {"params": {"af_click_lookback": "23h"}},
    {"params": {"af_click_lookback": "30d"}},
    {"params": {"af_reengagement_window": "36h"}},
    {"params": {"af_reengagement_window": "90d"}},
    {"params": {"af_reengagement_window": "lifetime"}},
    {"params": {"af_r": "https://example.com"}},
    {"params": {"af_r": "https://www.example.com/a?b=c"}},
    {"params": {"af_r": "https://SHOP.example.org:8443/p"}},
    {"params": {"af_r": "https://example.com/p/{{Profile.objectId}}?n={{ Profile.Name }}"}},
    {"params": {"af_og_image": "https://cdn.example.net/a.png"}},
    {"params": {"utm_source": "clevertap", "utm_medium": "email", "my custom": "ok"}},
    {"params": {"af_sub5": "{{Profile.objectId}}"}},
    {"params": {"k" * 100: "v"}},
    {"params": {"n": 3, "b": True, "f": 1.5}},
    {"ttl": "1m"},
    {"ttl": "365d"},
    {"ttl": "8760h"},
    {"ttl": 365},
    {"ttl": "14"},
    {"shortlink_id": "a" * 50},
    {"template_id": "Ignored"},
]


@pytest.mark.parametrize("extra", ACCEPTED)
def test_accepted_bodies(extra: dict[str, Any]) -> None:
    parse_link_request({"channel": "email", **extra}, TEMPLATE)


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    ("channel", "pid", "short"),
    [("email", "Email", False), ("sms", "SMS", True), ("push", "Push", False), ("qr", "QR", True)],
)
def test_channel_presets(channel: str, pid: str, short: bool) -> None:
    spec = parse(channel=channel)
    assert spec.media_source == pid == DEFAULT_MEDIA_SOURCE[channel]
    assert spec.short is short
    assert ordered_params(spec)["af_channel"] == channel


def test_push_links_are_retargeting() -> None:
    spec = parse(channel="push", campaign="winback")
    assert spec.params == {"is_retargeting": "true"}
    assert ("is_retargeting", "true") in query_of(build_long_url(TEMPLATE, ordered_params(spec)))
    assert parse(channel="push", params={"is_retargeting": "TRUE"}).params["is_retargeting"] == (
        "true"
    )


def test_short_can_be_overridden_both_ways() -> None:
    assert parse(channel="sms", short=False).short is False
    assert parse(channel="qr", short=False).short is False
    assert parse(channel="email", short=True).short is True


def test_shortlink_id_implies_short() -> None:
    spec = parse(channel="email", shortlink_id="Spring2026")
    assert spec.short is True
    assert spec.shortlink_id == "Spring2026"


def test_custom_channel_takes_its_media_source() -> None:
    spec = parse(channel="custom", media_source="partner_newsletter")
    assert spec.media_source == "partner_newsletter"


def test_channel_defaults_to_custom() -> None:
    spec = parse_link_request({"media_source": "web_banner"}, TEMPLATE)
    assert spec.channel == "custom"


def test_explicit_media_source_wins_over_preset() -> None:
    assert parse(channel="email", media_source="Newsletter").media_source == "Newsletter"


def test_empty_campaign_counts_as_absent() -> None:
    assert parse(campaign="").campaign is None


def test_defaults() -> None:
    spec = parse()
    assert spec.ttl_seconds == DEFAULT_TTL_SECONDS == 31 * 86400
    assert spec.renew_ttl is True
    assert spec.shortlink_id is None
    assert parse(renew_ttl=False).renew_ttl is False


def test_param_values_are_coerced_to_strings() -> None:
    spec = parse(params={"n": 3, "yes": True, "no": False, "f": 1.5})
    assert spec.params == {"n": "3", "yes": "true", "no": "false", "f": "1.5"}


# --------------------------------------------------------------------------- ordering


def test_ordered_params_puts_pid_c_af_channel_first_then_table_order_then_custom() -> None:
    spec = parse(
        channel="email",
        campaign="spring",
        params={
            "zeta": "1",
            "deep_link_value": "shoes",
            "af_sub5": "x",
            "alpha": "2",
            "af_adset": "a",
            "af_sub1": "y",
        },
    )
    assert list(ordered_params(spec)) == [
        "pid",
        "c",
        "af_channel",
        "af_adset",
        "af_sub1",
        "af_sub5",
        "deep_link_value",
        "zeta",
        "alpha",
    ]


def test_no_campaign_no_c() -> None:
    assert "c" not in ordered_params(parse())


# --------------------------------------------------------------------------- encoding


def test_reserved_characters_are_encoded() -> None:
    reserved = ";*!@#?$^:&~\\=+'></{}% "
    query = encode_query({"k": reserved})
    value = query.split("=", 1)[1]
    assert re.fullmatch(r"(%[0-9A-F]{2})+", value)
    assert parse_qsl(query) == [("k", reserved)]


def test_unreserved_characters_stay() -> None:
    assert encode_query({"a_b-c.d": "AZaz09-_."}) == "a_b-c.d=AZaz09-_."


def test_space_is_percent_20_and_unicode_is_utf8() -> None:
    assert encode_query({"k": "a b é"}) == "k=a%20b%20%C3%A9"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("{{Profile.objectId}}", "{{Profile.objectId}}"),
        ("{{ Profile.Name | default:'there' }}", "{{ Profile.Name | default:'there' }}"),
        ('{{ Profile.Name | default:"x y" }}', '{{ Profile.Name | default:"x y" }}'),
        ("{% if a %}b{% endif %}", "{% if a %}b{% endif %}"),
        ("id-{{Profile.objectId}}&x", "id-{{Profile.objectId}}%26x"),
        ("a b{{x}}c d", "a%20b{{x}}c%20d"),
        ("{{ unterminated", "%7B%7B%20unterminated"),
        ("{x}", "%7Bx%7D"),
    ],
)
def test_placeholders_stay_raw_and_the_rest_is_encoded(value: str, encoded: str) -> None:
    assert encode_query({"v": value}) == f"v={encoded}"


def test_has_placeholder() -> None:
    assert has_placeholder("{{a}}")
    assert has_placeholder("x{% if %}y")
    assert not has_placeholder("{{ open")
    assert not has_placeholder("{a}")


def test_long_url_shape() -> None:
    spec = parse(channel="email", campaign="spring_sale", params={"af_sub1": "a b"})
    url = build_long_url(TEMPLATE, ordered_params(spec))
    assert url == (
        "https://go.example.com/AbCd?pid=Email&c=spring_sale&af_channel=email&af_sub1=a%20b"
    )


def test_http_scheme_for_local_templates() -> None:
    local = TemplateInfo("AbCd", "127.0.0.1:8000", "http", ())
    assert build_long_url(local, {"pid": "Email"}) == "http://127.0.0.1:8000/AbCd?pid=Email"


def test_url_too_long_names_the_longest_field() -> None:
    params = {"af_sub1": "x", "deep_link_sub1": "y" * 1990}
    with pytest.raises(InvalidParameter) as info:
        parse(params=params)
    assert info.value.field == "params.deep_link_sub1"
    assert "2000" in info.value.message


def test_url_at_the_limit_is_accepted() -> None:
    # The limit counts the `lg_link` reference the stored link's long URL will carry.
    base = build_long_url(TEMPLATE, {"pid": "Email", "af_channel": "email", "x": ""}, ref=REF)
    spec = parse(params={"x": "y" * (MAX_URL_LENGTH - len(base))})
    assert len(build_long_url(TEMPLATE, ordered_params(spec), ref=REF)) == MAX_URL_LENGTH
    with pytest.raises(InvalidParameter):
        parse(params={"x": "y" * (MAX_URL_LENGTH - len(base) + 1)})


def test_qr_links_keep_room_for_the_qr_flag() -> None:
    base = build_long_url(TEMPLATE, {"pid": "QR", "af_channel": "qr", "x": ""}, ref=REF)
    room = MAX_URL_LENGTH - len(base)
    flag = len("&af_qr=true")
    parse(channel="qr", params={"x": "y" * (room - flag)})
    with pytest.raises(InvalidParameter) as info:
        parse(channel="qr", params={"x": "y" * room})
    assert info.value.field == "params.x"


# --------------------------------------------------------------------------- short URLs


def test_short_url_without_placeholders_has_no_query() -> None:
    spec = parse(channel="sms", params={"af_sub1": "a"})
    assert build_short_url(TEMPLATE, "x7Gk2pQa", ordered_params(spec)) == (
        "https://go.example.com/AbCd/x7Gk2pQa"
    )


def test_short_url_carries_placeholder_params_raw() -> None:
    spec = parse(
        channel="sms",
        params={"af_sub1": "static", "af_sub5": "{{Profile.objectId}}", "n": "a {{x}}"},
    )
    url = build_short_url(TEMPLATE, "x7Gk2pQa", ordered_params(spec))
    assert url == "https://go.example.com/AbCd/x7Gk2pQa?af_sub5={{Profile.objectId}}&n=a%20{{x}}"


def test_with_qr_flag() -> None:
    assert with_qr_flag("https://d/T/abc") == "https://d/T/abc?af_qr=true"
    assert with_qr_flag("https://d/T?pid=QR") == "https://d/T?pid=QR&af_qr=true"
    assert with_qr_flag("https://d/T?pid=QR&af_qr=true") == "https://d/T?pid=QR&af_qr=true"
    assert with_qr_flag("https://d/T?af_qr=false&x=1") == "https://d/T?af_qr=true&x=1"
    assert with_qr_flag("https://d/T/abc?af_sub5={{Profile.objectId}}") == (
        "https://d/T/abc?af_qr=true&af_sub5={{Profile.objectId}}"
    )
    twice = with_qr_flag(with_qr_flag("https://d/T?pid=QR"))
    assert query_of(twice) == [("pid", "QR"), ("af_qr", "true")]


def test_generate_shortlink_id() -> None:
    ids = {generate_shortlink_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 8 and SHORTLINK_ID_RE.match(i) for i in ids)


# --------------------------------------------------------------------------- CleverTap


def test_clevertap_block_shape_and_escaping() -> None:
    url = "https://go.example.com/AbCd?pid=Email&c=a%20b&af_sub5={{Profile.objectId}}"
    block = clevertap_block(url, "email")
    assert set(block) == {"url", "email_html", "sms_text", "push_payload"}
    assert block["url"] == url
    assert block["push_payload"] == {"wzrk_dl": url}
    assert block["sms_text"] == url
    href = "https://go.example.com/AbCd?pid=Email&amp;c=a%20b&amp;af_sub5={{Profile.objectId}}"
    assert block["email_html"] == f'<a href="{href}">{href}</a>'


def test_clevertap_email_keeps_placeholder_quotes_raw() -> None:
    single = "https://d/T?n={{ Profile.Name | default:'there' }}&x=1"
    html = clevertap_block(single, "email")["email_html"]
    assert html.startswith("<a href=\"https://d/T?n={{ Profile.Name | default:'there' }}&amp;x=1\"")
    double = 'https://d/T?n={{ Profile.Name | default:"there" }}'
    html = clevertap_block(double, "email")["email_html"]
    # Double quotes inside the placeholder: the attribute switches to single quotes.
    assert html.startswith("<a href='https://d/T?n={{ Profile.Name | default:\"there\" }}'>")


def test_clevertap_text_is_escaped_outside_placeholders() -> None:
    block = clevertap_block("https://d/T", "sms", text="Hi {{ Profile.Name }} <b>&</b>")
    assert block["email_html"] == (
        '<a href="https://d/T">Hi {{ Profile.Name }} &lt;b&gt;&amp;&lt;/b&gt;</a>'
    )
    assert block["sms_text"] == "Hi {{ Profile.Name }} <b>&</b> https://d/T"


def test_clevertap_block_refuses_unknown_channel() -> None:
    with pytest.raises(InvalidParameter) as info:
        clevertap_block("https://d/T", "fax")
    assert info.value.field == "channel"


@pytest.mark.parametrize("channel", CHANNELS)
def test_clevertap_block_for_every_channel(channel: str) -> None:
    assert clevertap_block("https://d/T", channel)["push_payload"] == {"wzrk_dl": "https://d/T"}


# --------------------------------------------------------------------------- ttl and windows


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1m", 60),
        ("10m", 600),
        ("20h", 72000),
        ("14d", 14 * 86400),
        ("14", 14 * 86400),
        (14, 14 * 86400),
        ("365d", 365 * 86400),
        (365, 365 * 86400),
        ("525600m", 365 * 86400),
    ],
)
def test_parse_ttl(value: object, seconds: int) -> None:
    assert parse_ttl(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["0m", "0", 0, -1, "-1d", "366d", "525601m", "1w", "d", "", " ", "1.5d", 1.5, None, True, []],
)
def test_parse_ttl_refuses(value: object) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_ttl(value, "rows[3].ttl")
    assert info.value.field == "rows[3].ttl"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1h", timedelta(hours=1)), ("23h", timedelta(hours=23)), ("7d", timedelta(days=7))],
)
def test_parse_click_lookback(value: str, expected: timedelta) -> None:
    assert parse_window(value, "click_lookback", CLICK_LOOKBACK) == expected


@pytest.mark.parametrize("value", ["0h", "24h", "0d", "31d", "07d", "7D", "7", "lifetime", ""])
def test_parse_click_lookback_refuses(value: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_window(value, "click_lookback", CLICK_LOOKBACK)
    assert info.value.field == "click_lookback"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("36h", timedelta(hours=36)), ("90d", timedelta(days=90)), ("lifetime", None)],
)
def test_parse_reengagement_window(value: str, expected: timedelta | None) -> None:
    assert parse_window(value, "reengagement_window", REENGAGEMENT_WINDOW) == expected


@pytest.mark.parametrize("value", ["37h", "91d", "forever", "Lifetime", "1 d"])
def test_parse_reengagement_window_refuses(value: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_window(value, "reengagement_window", REENGAGEMENT_WINDOW)
    assert info.value.field == "reengagement_window"


def test_parse_window_setting_refuses_non_strings() -> None:
    with pytest.raises(InvalidParameter):
        parse_window(7, "x", CLICK_LOOKBACK)


# --------------------------------------------------------------------------- allow-list

ATTACKS = [
    "https://evil.com?x=example.com",
    "https://evil.com/?x=https://example.com",
    "https://evil.com/example.com",
    "https://evil.com#example.com",
    "https://example.com#@evil.com",
    "https://example.com.evil.com",
    "https://example.com.evil.com/",
    "https://evilexample.com",
    "https://example.com@evil.com",
    "https://example.com:443@evil.com",
    "https://user:pass@example.com",
    "https://example.com\\@evil.com",
    "https://evil.com\\.example.com",
    "https:\\\\example.com",
    "https:/example.com",
    "https:example.com",
    "//example.com",
    "/example.com",
    "example.com",
    "http://example.com",
    "javascript:alert(1)//example.com",
    "data:text/html,example.com",
    "ftp://example.com",
    "https://",
    "https:///example.com",
    "https://.example.com",
    "https://example..com",
    "https://ex ample.com",
    "https://example.com /x",
    "https://example.com\t",
    "https://exam\nple.com",
    "https://example.com/\x00",
    "https://%65xample.com",
    "https://example%2Ecom",
    "https://example.com%2F@evil.com",
    "https://ｅｘａｍｐｌｅ.com",
    "https://example。com",
    "https://[::1]/",
    "https://127.0.0.1/",
    "https://example.com:99999/",
    "https://example.com:0/",
    "https://example.com:/",
    "https://-example.com",
    " https://example.com",
    "https://example.com/" + "a" * MAX_URL_LENGTH,
]


@pytest.mark.parametrize("url", ATTACKS)
def test_redirect_attacks_are_refused(url: str) -> None:
    assert check_redirect_url(url, ALLOW) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "https://example.com/",
        "https://EXAMPLE.COM/Path?q=1&r=%2F",
        "https://www.example.com/a/b?c=d",
        "https://a.b.example.com:8443/x",
        "https://example.com./x",
        "https://example.com?x=1",
        "HTTPS://example.com/",
    ],
)
def test_redirect_allowed(url: str) -> None:
    assert check_redirect_url(url, ALLOW) is None


def test_empty_allowlist_refuses_everything() -> None:
    reason = check_redirect_url("https://example.com/", [])
    assert reason is not None
    assert "empty" in reason


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("example.com", True),
        ("EXAMPLE.com", True),
        ("a.example.com", True),
        ("example.com.", True),
        ("evilexample.com", False),
        ("example.com.evil.com", False),
        ("com", False),
        ("", False),
    ],
)
def test_is_allowed_host(host: str, allowed: bool) -> None:
    assert is_allowed_host(host, ["Example.com", ""]) is allowed


def test_allowlist_is_per_template() -> None:
    spec = parse(params={"af_r": "https://shop.example.org/x"})
    assert spec.params["af_r"] == "https://shop.example.org/x"
    other = TemplateInfo("AbCd", "go.example.com", "https", ("example.com",))
    with pytest.raises(InvalidParameter) as info:
        parse_link_request(
            {"params": {"af_r": "https://shop.example.org/x"}, "channel": "email"}, other
        )
    assert info.value.field == "params.af_r"
