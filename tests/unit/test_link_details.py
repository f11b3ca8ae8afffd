"""A link's title, tags and notes: what is kept, what is refused (naming the field)."""

from __future__ import annotations

from typing import Any

import pytest

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.links import (
    MAX_NOTES_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    TemplateInfo,
    build_long_url,
    ordered_params,
    parse_link_request,
    split_tags,
)

TEMPLATE = TemplateInfo("AbCd", "go.example.com", "https", ("example.com",))


def parse(**body: Any) -> Any:
    return parse_link_request({"channel": "email", **body}, TEMPLATE)


KEPT: list[tuple[dict[str, Any], str | None, tuple[str, ...], str | None]] = [
    ({}, None, (), None),
    ({"title": None, "tags": None, "notes": None}, None, (), None),
    ({"title": "", "notes": "", "tags": []}, None, (), None),
    ({"title": "   "}, None, (), None),
    ({"title": "  Spring sale: shoes  "}, "Spring sale: shoes", (), None),
    ({"title": "t" * MAX_TITLE_CHARS}, "t" * MAX_TITLE_CHARS, (), None),
    ({"title": "Été ☀️ 夏"}, "Été ☀️ 夏", (), None),
    ({"tags": ["Spring", "shoes", "SPRING"]}, None, ("spring", "shoes"), None),
    ({"tags": ["a-b_c9"]}, None, ("a-b_c9",), None),
    ({"tags": ["t" * MAX_TAG_CHARS]}, None, ("t" * MAX_TAG_CHARS,), None),
    (
        {"tags": [f"t{i}" for i in range(MAX_TAGS)]},
        None,
        tuple(f"t{i}" for i in range(MAX_TAGS)),
        None,
    ),
    ({"notes": "line one\nline two\ttabbed\r\n"}, None, (), "line one\nline two\ttabbed"),
    ({"notes": "n" * MAX_NOTES_CHARS}, None, (), "n" * MAX_NOTES_CHARS),
]


@pytest.mark.parametrize(("body", "title", "tags", "notes"), KEPT)
def test_details_are_kept(
    body: dict[str, Any], title: str | None, tags: tuple[str, ...], notes: str | None
) -> None:
    spec = parse(**body)
    assert (spec.title, spec.tags, spec.notes) == (title, tags, notes)


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"title": 12}, "title", "must be a string"),
    ({"title": ["x"]}, "title", "must be a string"),
    ({"title": "t" * (MAX_TITLE_CHARS + 1)}, "title", f"longer than {MAX_TITLE_CHARS}"),
    ({"title": "two\nlines"}, "title", "control characters"),
    ({"title": "nul\x00"}, "title", "control characters"),
    ({"title": "c1\x85"}, "title", "control characters"),
    ({"title": "\ud800"}, "title", "valid Unicode"),
    ({"tags": "spring"}, "tags", "must be a list"),
    ({"tags": {"a": 1}}, "tags", "must be a list"),
    ({"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]}, "tags", f"at most {MAX_TAGS} tags"),
    ({"tags": ["ok", 3]}, "tags[1]", "must be a string"),
    ({"tags": ["ok", "fine", ""]}, "tags[2]", "must not be empty"),
    ({"tags": ["t" * (MAX_TAG_CHARS + 1)]}, "tags[0]", f"longer than {MAX_TAG_CHARS}"),
    ({"tags": ["ok", "fine", "spring sale"]}, "tags[2]", "letters, digits, - and _"),
    ({"tags": [" spring"]}, "tags[0]", "letters, digits"),
    ({"tags": ["a|b"]}, "tags[0]", "letters, digits"),
    ({"tags": ["été"]}, "tags[0]", "letters, digits"),
    ({"notes": 1.5}, "notes", "must be a string"),
    ({"notes": "n" * (MAX_NOTES_CHARS + 1)}, "notes", f"longer than {MAX_NOTES_CHARS}"),
    ({"notes": "bell\x07"}, "notes", "control characters"),
    ({"notes": "del\x7f"}, "notes", "control characters"),
]


@pytest.mark.parametrize(("body", "field", "words"), REFUSED)
def test_bad_details_are_refused_naming_the_field(
    body: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse(**body)
    assert info.value.field == field
    assert words in info.value.message


def test_details_are_in_no_url() -> None:
    plain = parse(campaign="spring")
    described = parse(campaign="spring", title="Shoes", tags=["shoes"], notes="For the app")
    assert build_long_url(TEMPLATE, ordered_params(described)) == build_long_url(
        TEMPLATE, ordered_params(plain)
    )


@pytest.mark.parametrize(
    ("text", "separator", "tags"),
    [
        ("spring|shoes", "|", ["spring", "shoes"]),
        (" spring | shoes |", "|", ["spring", "shoes"]),
        ("spring||shoes", "|", ["spring", "shoes"]),
        ("", "|", []),
        ("spring, shoes,,", ",", ["spring", "shoes"]),
        ("spring|shoes", ",", ["spring|shoes"]),
    ],
)
def test_tags_typed_as_text_are_split(text: str, separator: str, tags: list[str]) -> None:
    assert split_tags(text, separator) == tags
