"""Links CSV: import rows become JSON link bodies; the export is a readable, safe CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from linkgen.domain.bulk import (
    EXPORT_FIELDS,
    links_to_csv,
    parse_links_csv,
    parse_links_csv_with_lines,
)
from linkgen.domain.errors import InvalidParameter
from linkgen.domain.links import TemplateInfo, parse_link_request

TEMPLATE = TemplateInfo("AbCd", "go.example.com", "https", ("example.com",))


def test_rows_become_json_bodies() -> None:
    text = (
        "template_id,channel,campaign,media_source,short,shortlink_id,ttl,renew_ttl,"
        "params.af_sub1,params.deep_link_value\r\n"
        "AbCd,email,spring,Email,false,,31d,,a,shoes\r\n"
        "AbCd,sms,spring,,yes,Spring26,7d,no,,\r\n"
    )
    assert parse_links_csv(text) == [
        {
            "template_id": "AbCd",
            "channel": "email",
            "campaign": "spring",
            "media_source": "Email",
            "short": False,
            "ttl": "31d",
            "params": {"af_sub1": "a", "deep_link_value": "shoes"},
        },
        {
            "template_id": "AbCd",
            "channel": "sms",
            "campaign": "spring",
            "short": True,
            "shortlink_id": "Spring26",
            "ttl": "7d",
            "renew_ttl": False,
        },
    ]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        (" Yes ", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("maybe", "maybe"),
    ],
)
def test_boolean_cells(cell: str, value: object) -> None:
    assert parse_links_csv(f"channel,short\nsms,{cell}\n") == [{"channel": "sms", "short": value}]


def test_unrecognised_boolean_is_refused_per_row_by_validation() -> None:
    (row,) = parse_links_csv("channel,short\nsms,maybe\n")
    with pytest.raises(InvalidParameter) as info:
        parse_link_request(row, TEMPLATE)
    assert info.value.field == "short"


def test_utf8_bom_is_stripped() -> None:
    assert parse_links_csv("\ufeffchannel,campaign\nemail,été\n") == [
        {"channel": "email", "campaign": "été"}
    ]


def test_quoted_cells_keep_commas_newlines_and_placeholders() -> None:
    text = 'channel,params.af_sub5,params.note\nemail,{{Profile.objectId}},"a, b\nc ""d"""\n'
    assert parse_links_csv(text) == [
        {"channel": "email", "params": {"af_sub5": "{{Profile.objectId}}", "note": 'a, b\nc "d"'}}
    ]


def test_semicolon_and_tab_delimiters() -> None:
    expected = [{"channel": "email", "campaign": "a,b"}]
    assert parse_links_csv("channel;campaign\nemail;a,b\n") == expected
    assert parse_links_csv("channel\tcampaign\nemail\ta,b\n") == expected


def test_blank_rows_are_skipped_and_lines_are_reported() -> None:
    text = "channel,campaign\n\nemail,a\n,\nsms,b\n"
    assert parse_links_csv_with_lines(text) == [
        (3, {"channel": "email", "campaign": "a"}),
        (5, {"channel": "sms", "campaign": "b"}),
    ]


def test_short_rows_are_padded() -> None:
    assert parse_links_csv("channel,campaign,ttl\nemail\n") == [{"channel": "email"}]


def test_export_only_columns_are_ignored_on_import() -> None:
    text = "id,channel,short_url,long_url,expires_at,created_at\n7,sms,https://x,https://y,,\n"
    assert parse_links_csv(text) == [{"channel": "sms"}]


def test_header_is_trimmed() -> None:
    assert parse_links_csv(" channel , params.af_sub1 \nemail,x\n") == [
        {"channel": "email", "params": {"af_sub1": "x"}}
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ufeff",
        "\n\n",
        " , \nemail,x\n",
        "channel,campain\nemail,x\n",
        "channel,params.\nemail,x\n",
        "channel,channel\nemail,sms\n",
        "channel,campaign\nemail,a,extra\n",
        'channel,campaign\nemail,"unterminated\n',
    ],
)
def test_unreadable_csv_is_refused_with_field_csv(text: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_links_csv(text)
    assert info.value.field == "csv"


def test_header_only_gives_no_rows() -> None:
    assert parse_links_csv("channel,campaign\n") == []


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_export_columns_and_params_union_in_first_seen_order() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = links_to_csv(
        [
            {
                "id": "l1",
                "template_id": "AbCd",
                "channel": "email",
                "media_source": "Email",
                "campaign": "spring",
                "short_url": None,
                "long_url": "https://go.example.com/AbCd?pid=Email",
                "shortlink_id": None,
                "expires_at": None,
                "created_at": created,
                "params": {"af_sub5": "{{Profile.objectId}}", "b": "1"},
            },
            {
                "id": "l2",
                "channel": "sms",
                "params": {"a": "x, y", "b": "2"},
                "expires_at": "2026-12-30T10:00:00Z",
            },
        ]
    )
    rows = rows_of(text)
    assert rows[0] == [*EXPORT_FIELDS, "params.af_sub5", "params.b", "params.a"]
    assert rows[1][0] == "l1"
    assert rows[1][EXPORT_FIELDS.index("created_at")] == "2026-01-02T03:04:05Z"
    assert rows[1][-3:] == ["{{Profile.objectId}}", "1", ""]
    assert rows[2][-3:] == ["", "2", "x, y"]
    assert rows[2][EXPORT_FIELDS.index("expires_at")] == "2026-12-30T10:00:00Z"


def test_export_with_no_rows_is_just_the_header() -> None:
    assert rows_of(links_to_csv([])) == [list(EXPORT_FIELDS)]


def test_export_neutralises_formulas_and_import_restores_them() -> None:
    text = links_to_csv(
        [{"id": "1", "channel": "email", "campaign": "=HYPERLINK(1)", "params": {"n": "-5"}}]
    )
    row = rows_of(text)[1]
    assert row[EXPORT_FIELDS.index("campaign")] == "'=HYPERLINK(1)"
    assert row[-1] == "-5"
    assert parse_links_csv(text) == [
        {"channel": "email", "campaign": "=HYPERLINK(1)", "params": {"n": "-5"}}
    ]


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        "+1+1",
        "-1+1",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "\n=HYPERLINK(1)",
        "＝HYPERLINK(1)",
        "＋1",
        "－1",
        "＠SUM(A1)",
    ],
)
def test_every_formula_start_is_neutralised_and_restored(value: str) -> None:
    text = links_to_csv([{"id": "1", "channel": "email", "campaign": value}])
    assert rows_of(text)[1][EXPORT_FIELDS.index("campaign")] == "'" + value
    assert parse_links_csv(text)[0]["campaign"] == value


@pytest.mark.parametrize("value", ["-5", "-0.25", "12", "'quoted", "a=b"])
def test_plain_values_are_exported_as_they_are(value: str) -> None:
    text = links_to_csv([{"id": "1", "channel": "email", "campaign": value}])
    assert rows_of(text)[1][EXPORT_FIELDS.index("campaign")] == value


def test_export_reimports() -> None:
    original = {
        "template_id": "AbCd",
        "channel": "sms",
        "media_source": "SMS",
        "campaign": "spring",
        "shortlink_id": "Spring26",
        "params": {"af_sub1": "a b", "af_sub5": "{{Profile.objectId}}"},
    }
    assert parse_links_csv(links_to_csv([original])) == [original]
