"""A long URL names its link (`lg_link`), and QR links never expire unless a ttl is asked for."""

from __future__ import annotations

import random
import secrets
from urllib.parse import quote

import pytest

from linkgen.domain.links import (
    DEFAULT_TTL_SECONDS,
    LINK_REF_LENGTH,
    LINK_REF_PARAM,
    TemplateInfo,
    build_long_url,
    link_id_of_ref,
    link_ref,
    link_ref_in_query,
    parse_link_request,
    with_qr_flag,
)

TEMPLATE = TemplateInfo("AbCd", "go.example.com", "https", ())
LINK_ID = "018c2b3f4e5a000001a1b2c3d4e5f607"


def query(url: str) -> str:
    return url.partition("?")[2]


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    "link_id",
    # Seeded, so every xdist worker collects the same ids.
    [
        LINK_ID,
        "0" * 32,
        "f" * 32,
        *(f"{random.Random(i).getrandbits(128):032x}" for i in range(50)),
    ],
)
def test_a_ref_names_its_link_id_and_back(link_id: str) -> None:
    ref = link_ref(link_id)
    assert ref is not None
    assert len(ref) == LINK_REF_LENGTH
    assert ref.isascii() and ref.isalnum()  # no percent-encoding, survives any rewriter
    assert link_id_of_ref(ref) == link_id


def test_distinct_ids_have_distinct_refs() -> None:
    ids = {secrets.token_hex(16) for _ in range(500)}
    assert len({link_ref(i) for i in ids}) == len(ids)


@pytest.mark.parametrize("link_id", ["l1", "ABCDEF" * 5 + "ab", "g" * 32, "0" * 31, "0" * 33])
def test_ids_linkgen_did_not_generate_have_no_ref(link_id: str) -> None:
    assert link_ref(link_id) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0" * (LINK_REF_LENGTH - 1),
        "0" * (LINK_REF_LENGTH + 1),
        "0" * (LINK_REF_LENGTH - 1) + "-",
        "0" * (LINK_REF_LENGTH - 1) + "%",
        "z" * LINK_REF_LENGTH,  # above 2**128
        "{{Profile.objectId}}",
    ],
)
def test_values_no_ref_looks_like_name_no_link(value: str) -> None:
    assert link_id_of_ref(value) is None


def test_the_long_url_carries_the_ref_right_after_the_fixed_params() -> None:
    ref = link_ref(LINK_ID)
    params = {
        "pid": "Email",
        "c": "spring",
        "af_channel": "email",
        "af_sub5": "{{Profile.objectId}}",
    }
    url = build_long_url(TEMPLATE, params, ref=ref)
    assert (
        query(url)
        == f"pid=Email&c=spring&af_channel=email&lg_link={ref}&af_sub5={{{{Profile.objectId}}}}"
    )
    assert build_long_url(TEMPLATE, {}, ref=ref) == f"https://go.example.com/AbCd?lg_link={ref}"
    # Before a placeholder even in the campaign: no substituted value can come first.
    personal = {"pid": "Email", "c": "spring_{{Profile.city}}", "af_channel": "email"}
    assert query(build_long_url(TEMPLATE, personal, ref=ref)).startswith(
        f"pid=Email&lg_link={ref}&c="
    )


def test_the_ref_survives_substitution_and_appended_params() -> None:
    ref = link_ref(LINK_ID)
    params = {"pid": "Email", "af_channel": "email", "af_sub5": "{{Profile.objectId}}"}
    sent = build_long_url(TEMPLATE, params, ref=ref)
    # CleverTap fills the placeholder (a hostile value even tries to add a second lg_link),
    # then a mail client appends its utm_* parameters.
    other = link_ref("f" * 32)
    clicked = sent.replace("{{Profile.objectId}}", quote(f"__g1&lg_link={other}", safe="&="))
    clicked += "&utm_source=clevertap&utm_medium=email&lg_link=" + str(other)
    assert link_id_of_ref(str(link_ref_in_query(query(clicked)))) == LINK_ID
    assert link_id_of_ref(str(link_ref_in_query(query(with_qr_flag(sent))))) == LINK_ID


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ("", None),
        ("pid=Email", None),
        ("pid=Email&xlg_link=abc", None),
        ("xlg_link=abc&c=1", None),
        ("lg_link=", ""),
        ("lg_link=abc", "abc"),
        ("pid=Email&lg_link=abc&c=1&lg_link=def", "abc"),
        ("a=1&lg_link=%30", "%30"),
    ],
)
def test_the_first_lg_link_pair_is_read(raw: str, found: str | None) -> None:
    assert link_ref_in_query(raw) == found
    if found is not None:
        assert link_id_of_ref(found) is None  # none of these is a ref linkgen made


def test_lg_link_is_not_an_appsflyer_parameter_name() -> None:
    assert not LINK_REF_PARAM.startswith("af_")
    assert LINK_REF_PARAM not in {"pid", "c", "is_retargeting", "clickid", "advertising_id"}


# --------------------------------------------------------------------------- QR expiry


def test_qr_links_never_expire_unless_a_ttl_is_asked_for() -> None:
    spec = parse_link_request({"channel": "qr"}, TEMPLATE)
    assert spec.short is True
    assert spec.ttl_seconds is None
    asked = parse_link_request({"channel": "qr", "ttl": "14d"}, TEMPLATE)
    assert asked.ttl_seconds == 14 * 86400


@pytest.mark.parametrize("channel", ["email", "sms", "push", "custom"])
def test_other_channels_keep_the_default_ttl(channel: str) -> None:
    body = {"channel": channel, "media_source": "partner"}
    assert parse_link_request(body, TEMPLATE).ttl_seconds == DEFAULT_TTL_SECONDS
