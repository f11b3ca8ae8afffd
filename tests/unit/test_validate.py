"""The small JSON readers of linkgen/domain/validate.py."""

from __future__ import annotations

import pytest

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.validate import get_int


@pytest.mark.parametrize(
    ("value", "expected"),
    [(90, 90), (90.0, 90), (1, 1), (730.0, 730), (None, None)],
)
def test_get_int_reads_whole_numbers_as_json_schema_does(value: object, expected: int) -> None:
    """JSON has one number type: `90.0` is the integer 90 (what the OpenAPI document's
    `type: integer` accepts), so the code must accept it too."""
    assert get_int({"n": value}, "n", lo=1, hi=730) == expected


@pytest.mark.parametrize("value", [90.5, "90", True, float("inf"), float("nan"), 0, 731, 731.0])
def test_get_int_refuses_what_is_not_a_whole_number_in_range(value: object) -> None:
    with pytest.raises(InvalidParameter) as info:
        get_int({"n": value}, "n", lo=1, hi=730)
    assert info.value.field == "n"
