"""Links as CSV: the bulk import format (one link per row) and the export.

Pure Python (stdlib only). Import columns are the JSON fields of POST /api/v1/links plus
`params.<name>` columns; each row becomes the JSON-shaped body `parse_link_request` validates, so
a bad cell is reported per row with the same field names as the JSON API. A `tags` cell holds
the link's tags separated by `|` (`spring|shoes`), in the import and the export alike. Only
problems with the file itself (no header, unknown column, too many cells) raise
`InvalidParameter(field="csv")`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.links import split_tags

IMPORT_FIELDS = (
    "template_id",
    "channel",
    "campaign",
    "media_source",
    "short",
    "shortlink_id",
    "ttl",
    "renew_ttl",
    "title",
    "tags",
    "notes",
)
# `|`, not `,` or `;`: those also separate the cells of a CSV (many spreadsheets save with `;`),
# so a tags cell would need quoting; a tag never holds `|`.
TAG_SEPARATOR = "|"
# Columns of our own export that an import skips, so an exported file can be re-imported.
EXPORT_ONLY_FIELDS = frozenset({"id", "short_url", "long_url", "expires_at", "created_at"})
EXPORT_FIELDS = (
    "id",
    "template_id",
    "channel",
    "media_source",
    "campaign",
    "title",
    "tags",
    "notes",
    "short_url",
    "long_url",
    "shortlink_id",
    "expires_at",
    "created_at",
)
PARAM_PREFIX = "params."
_BOOL_FIELDS = frozenset({"short", "renew_ttl"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})

# Spreadsheet formula injection: a cell starting with one of these runs as a formula when the
# export is opened in Excel or Sheets, so it is prefixed with `'` (and the prefix is removed
# again on import). Plain numbers such as `-5` are left alone. The full-width forms count too:
# spreadsheets in East Asian locales read a cell starting with U+FF1D (full-width equals) as a
# formula, and a cell may start with a line break.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_NUMBER_RE = re.compile(r"\A-?[0-9]+(?:\.[0-9]+)?\Z")


def _delimiter(header_line: str) -> str:
    # Spreadsheets in many locales save CSV with `;` (or tabs); the header has no quoted
    # commas in practice, so the most frequent candidate there is the delimiter.
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _unneutralize(cell: str) -> str:
    if len(cell) > 1 and cell[0] == "'" and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


def parse_links_csv_with_lines(text: str) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a links CSV as (line number, JSON-shaped link body); blank rows are skipped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=True
    )
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise InvalidParameter("the CSV has no header row", field="csv")
        columns = _columns(header)
        rows: list[tuple[int, dict[str, Any]]] = []
        for cells in reader:
            line = reader.line_num
            if len(cells) > len(columns):
                extra = cells[len(columns) :]
                if any(extra):
                    raise InvalidParameter(
                        f"line {line} has {len(cells)} cells but the header has {len(columns)}",
                        field="csv",
                    )
            row = _row(columns, cells)
            if row is not None:
                rows.append((line, row))
    except csv.Error as exc:
        raise InvalidParameter(f"the CSV cannot be read: {exc}", field="csv") from None
    return rows


def parse_links_csv(text: str) -> list[dict[str, Any]]:
    """A links CSV as a list of JSON-shaped POST /api/v1/links bodies (empty cells omitted)."""
    return [row for _, row in parse_links_csv_with_lines(text)]


def _columns(header: list[str]) -> list[str | None]:
    # None marks a column to skip (export-only, or an unnamed trailing column).
    columns: list[str | None] = []
    seen: set[str] = set()
    for cell in header:
        name = cell.strip()
        if name in seen and name:
            raise InvalidParameter(f"the CSV has two {name!r} columns", field="csv")
        seen.add(name)
        if not name or name in EXPORT_ONLY_FIELDS:
            columns.append(None)
        elif name in IMPORT_FIELDS or _is_param_column(name):
            columns.append(name)
        else:
            raise InvalidParameter(
                f"unknown CSV column {name!r}: use {', '.join(IMPORT_FIELDS)} or params.<name>",
                field="csv",
            )
    return columns


def _is_param_column(name: str) -> bool:
    return name.startswith(PARAM_PREFIX) and len(name) > len(PARAM_PREFIX)


def _row(columns: list[str | None], cells: list[str]) -> dict[str, Any] | None:
    row: dict[str, Any] = {}
    params: dict[str, str] = {}
    for name, cell in zip(columns, cells, strict=False):
        if name is None or cell == "":
            continue
        value = _unneutralize(cell)
        if name.startswith(PARAM_PREFIX):
            params[name[len(PARAM_PREFIX) :]] = value
        elif name in _BOOL_FIELDS:
            word = value.strip().lower()
            # An unrecognised word is passed on as is: validation then refuses it for this
            # row only, naming the field, instead of failing the whole file.
            row[name] = True if word in _TRUE else False if word in _FALSE else value
        elif name == "tags":
            row[name] = split_tags(value, TAG_SEPARATOR)
        else:
            row[name] = value
    if params:
        row["params"] = params
    return row or None


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # a link's tags
        value = TAG_SEPARATOR.join(str(item) for item in value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER_RE.match(text):
        return "'" + text
    return text


def links_to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Links as CSV: EXPORT_FIELDS, then one `params.<name>` column per param (first seen order)."""
    materialized = list(rows)
    param_names: dict[str, None] = {}
    for row in materialized:
        for name in row.get("params") or {}:
            param_names.setdefault(name, None)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*EXPORT_FIELDS, *(PARAM_PREFIX + name for name in param_names)])
    for row in materialized:
        params: Mapping[str, Any] = row.get("params") or {}
        writer.writerow(
            [
                *(_cell(row.get(field)) for field in EXPORT_FIELDS),
                *(_cell(params.get(name)) for name in param_names),
            ]
        )
    return out.getvalue()


def table_to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Any table as CSV, with the same neutralised cells as the link export (reports)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()
