"""Properties of the link builder: URLs parse back to their params; only InvalidParameter escapes."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.links import (
    KNOWN_PARAMS,
    LINK_FIELDS,
    MAX_URL_LENGTH,
    SHORTLINK_ID_RE,
    TemplateInfo,
    build_long_url,
    build_short_url,
    check_redirect_url,
    clevertap_block,
    encode_component,
    encode_query,
    generate_shortlink_id,
    has_placeholder,
    is_allowed_host,
    link_ref,
    ordered_params,
    parse_link_request,
    parse_ttl,
    with_qr_flag,
)
from linkgen.services.link_views import NewLink, canonical_params, link_to_dict, link_urls

TEMPLATE = TemplateInfo("AbCd", "go.example.com", "https", ("example.com",))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RESERVED = list(";*!@#?$^:&~\\=+'></{}% ")
# Reserved characters, spaces, Unicode (accents, CJK, emoji, RTL) and controls: all encoded.
awkward_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            [*RESERVED, "é", "日", "😀", "ש", "\n", "\t", "a", "Z", "0", "-", "_", "."]
        ),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=30,
)
plain_text = awkward_text.filter(lambda s: not has_placeholder(s))
# Text around a placeholder: no braces, so the placeholder span is exactly the one generated.
around = st.text(
    alphabet=st.one_of(
        st.sampled_from([c for c in RESERVED if c not in "{}"] + ["é", " ", "a"]),
        st.characters(exclude_categories=["Cs"], exclude_characters="{}"),
    ),
    max_size=12,
)
# Liquid content: what CleverTap templates use (names, filters, quotes, pipes, comparisons).
# `&`, `#`, `+` and `%` are left out because a raw one would change how the *template* URL
# itself parses; CleverTap substitutes the span before anyone clicks.
liquid_inner = st.text(
    alphabet=st.sampled_from([*"abcXYZ019 ._|:'\",=<>!()[]-/?@$", "é", "日"]),
    min_size=1,
    max_size=25,
)
placeholder = st.one_of(
    liquid_inner.map(lambda s: "{{" + s + "}}"),
    liquid_inner.map(lambda s: "{% " + s + " %}"),
)


@st.composite
def placeholder_values(draw: st.DrawFn) -> tuple[str, str]:
    """A value with a placeholder somewhere in it, and that placeholder."""
    ph = draw(placeholder)
    return draw(around) + ph + draw(around), ph


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


@SETTINGS
@given(st.dictionaries(plain_text.filter(bool), plain_text, max_size=6))
def test_long_url_parses_back_to_the_params(params: dict[str, str]) -> None:
    url = build_long_url(TEMPLATE, params)
    assert urlsplit(url).netloc == "go.example.com"
    assert urlsplit(url).path == "/AbCd"
    assert query_of(url) == list(params.items())
    assert "#" not in url and " " not in url


@SETTINGS
@given(st.dictionaries(plain_text.filter(bool), plain_text, max_size=6))
def test_encoded_query_uses_only_safe_characters(params: dict[str, str]) -> None:
    query = encode_query(params)
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._%&=")
    assert set(query) <= allowed


@SETTINGS
@given(
    st.dictionaries(plain_text.filter(bool), plain_text, max_size=3),
    st.dictionaries(plain_text.filter(bool), placeholder_values(), min_size=1, max_size=3),
)
def test_placeholders_stay_raw_and_the_rest_round_trips(
    static: dict[str, str], dynamic: dict[str, tuple[str, str]]
) -> None:
    params = {**static, **{k: v for k, (v, _) in dynamic.items()}}
    url = build_long_url(TEMPLATE, params)
    for key, (_value, ph) in dynamic.items():
        if key not in static:
            assert ph in url
    assert query_of(url) == list(params.items())
    # The short URL carries exactly the placeholder params, raw, in the same order.
    short = build_short_url(TEMPLATE, "x7Gk2pQa", params)
    expected = [(k, v) for k, v in params.items() if has_placeholder(v)]
    assert query_of(short) == expected
    assert query_of(with_qr_flag(short)) == [("af_qr", "true"), *expected]


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    awkward_text,
    st.sampled_from(["email", "sms", "push", "qr", "custom", "7d", "lifetime", "30", "10m"]),
    st.sampled_from(["https://example.com/x", "https://evil.com", "{{Profile.objectId}}"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
param_keys = st.one_of(st.sampled_from(KNOWN_PARAMS), awkward_text)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.one_of(
            st.sampled_from(["email", "sms", "push", "qr", "custom"]), json_values
        ),
        "media_source": st.one_of(st.sampled_from(["Email", "newsletter", "x_int"]), json_values),
        "campaign": json_values,
        "params": st.one_of(st.dictionaries(param_keys, json_values, max_size=6), json_values),
        "short": json_values,
        "shortlink_id": st.one_of(st.sampled_from(["Abc123", "x" * 51]), json_values),
        "ttl": json_values,
        "renew_ttl": json_values,
        "template_id": json_values,
    },
).flatmap(
    lambda body: st.dictionaries(st.text(max_size=8), json_values, max_size=1).map(
        lambda extra: {**extra, **body}
    )
)


# Mostly valid bodies, so the success path (and URL building) is exercised too.
plausible_bodies = st.fixed_dictionaries(
    {"channel": st.sampled_from(["email", "sms", "push", "qr"])},
    optional={
        "campaign": plain_text,
        "params": st.dictionaries(
            st.one_of(st.sampled_from(KNOWN_PARAMS), plain_text),
            st.one_of(plain_text, placeholder_values().map(lambda pair: pair[0]), st.integers()),
            max_size=6,
        ),
        "short": st.booleans(),
        "ttl": st.one_of(st.integers(-2, 400), st.sampled_from(["10m", "20h", "14d", "0d"])),
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(bodies, plausible_bodies))
def test_builder_raises_only_invalid_parameter(body: dict[str, Any]) -> None:
    try:
        spec = parse_link_request(body, TEMPLATE)
    except InvalidParameter as exc:
        assert exc.message
        assert exc.field is None or isinstance(exc.field, str)
        return
    assert set(body) <= LINK_FIELDS
    params = ordered_params(spec)
    url = build_long_url(TEMPLATE, params)
    assert len(url) <= MAX_URL_LENGTH
    if not any(has_placeholder(v) or has_placeholder(k) for k, v in params.items()):
        assert query_of(url) == list(params.items())
    short = build_short_url(TEMPLATE, "x7Gk2pQa", params)
    block = clevertap_block(short if spec.short else url, spec.channel)
    assert block["push_payload"]["wzrk_dl"] in (short, url)
    assert "af_qr=true" in with_qr_flag(url)


url_ish = st.one_of(
    awkward_text,
    st.builds(
        lambda scheme, host, rest: f"{scheme}{host}{rest}",
        st.sampled_from(["https://", "HTTPS://", "http://", "https:/", "//", "https:\\\\", ""]),
        st.one_of(
            st.sampled_from(
                [
                    "example.com",
                    "a.example.com",
                    "evil.com",
                    "example.com.evil.com",
                    "example.com@evil.com",
                    "evil.com\\@example.com",
                    "example.com:8443",
                    "[::1]",
                    "ｅｘａｍｐｌｅ.com",
                ]
            ),
            awkward_text,
        ),
        st.one_of(
            st.just(""), st.sampled_from(["/", "/p?q=1", "#x", "?x=example.com"]), awkward_text
        ),
    ),
)


@settings(max_examples=400, deadline=None)
@given(url_ish)
def test_an_accepted_redirect_goes_to_an_allowed_host(url: str) -> None:
    reason = check_redirect_url(url, ["example.com"])
    if reason is not None:
        assert isinstance(reason, str)
        return
    # An independent parser must agree on where the browser would go.
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert "@" not in parts.netloc
    assert not parts.fragment
    assert parts.hostname is not None
    assert is_allowed_host(parts.hostname, ["example.com"])
    assert parts.hostname.rstrip(".").endswith("example.com")
    assert url.isascii() or urlsplit(url).netloc.isascii()


@SETTINGS
@given(st.integers(min_value=1, max_value=365), st.sampled_from(["", "d"]))
def test_ttl_days(days: int, unit: str) -> None:
    assert parse_ttl(f"{days}{unit}") == parse_ttl(days) == days * 86400


@SETTINGS
@given(st.integers(min_value=-(10**6), max_value=10**12), st.sampled_from(["m", "h", "d", ""]))
def test_ttl_range(amount: int, unit: str) -> None:
    seconds = amount * {"m": 60, "h": 3600, "d": 86400, "": 86400}[unit]
    try:
        assert parse_ttl(f"{amount}{unit}") == seconds
    except InvalidParameter as exc:
        assert exc.field == "ttl"
        assert not 60 <= seconds <= 365 * 86400 or amount <= 0


@SETTINGS
@given(st.one_of(plain_text, st.text(alphabet="AZaz09_.-~ é", max_size=20)))
def test_encoding_equals_quote_with_the_tilde_encoded(text: str) -> None:
    # The shortcut for text that needs no encoding must not change a single URL.
    assert encode_component(text) == quote(text, safe="").replace("~", "%7E")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible_bodies)
def test_a_stored_link_has_the_urls_its_request_builds(body: dict[str, Any]) -> None:
    try:
        spec = parse_link_request(body, TEMPLATE)
    except InvalidParameter:
        return
    now = datetime(2025, 1, 2, tzinfo=UTC)
    stored = NewLink(
        id="0" * 32,
        template_id=TEMPLATE.template_id,
        channel=spec.channel,
        media_source=spec.media_source,
        campaign=spec.campaign,
        params=canonical_params(spec.params),
        short=spec.short,
        shortlink_id="x7Gk2pQa" if spec.short else None,
        ttl_seconds=spec.ttl_seconds,
        renew_ttl=spec.renew_ttl,
        expires_at=None,
        created_at=now,
        updated_at=now,
        created_by=None,
    )
    canonical = replace(spec, params=canonical_params(spec.params))
    urls = link_urls(stored, TEMPLATE)
    assert urls.long_url == build_long_url(
        TEMPLATE, ordered_params(canonical), ref=link_ref(stored.id)
    )
    if spec.short:
        assert urls.short_url == build_short_url(TEMPLATE, "x7Gk2pQa", canonical.params)
    out = link_to_dict(stored, TEMPLATE)
    assert out["long_url"] == urls.long_url
    assert out["clevertap"] == clevertap_block(urls.shared_url, spec.channel)


def test_generated_shortlink_ids_use_the_whole_alphabet() -> None:
    ids = [generate_shortlink_id() for _ in range(2000)]
    assert all(SHORTLINK_ID_RE.match(i) and len(i) == 8 for i in ids)
    assert set("".join(ids)) == set(string.ascii_letters + string.digits)
    assert len(set(ids)) == len(ids)
