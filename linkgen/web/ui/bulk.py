"""Bulk import of links from a CSV, with a progress bar and a per-row error report.

The browser sends the file to `/import/parse` (the server parses it with the same CSV rules as
the API, so nothing is parsed twice in two languages), then posts the rows back in chunks to
`/import/chunk`; each chunk is one transaction, so good rows are kept as the import goes and
the progress bar moves with real work. Without JavaScript the form posts the file to `/import`
and the whole result is shown at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from flask import Response, jsonify, render_template, request
from sqlalchemy import select

from linkgen.domain.bulk import TAG_SEPARATOR, parse_links_csv_with_lines
from linkgen.domain.errors import InvalidParameter, LinkgenError
from linkgen.runtime import get_runtime
from linkgen.services import link_bulk
from linkgen.storage.models import Template
from linkgen.web.ui import bp, current_actor

CHUNK_ROWS = 100
MAX_CHUNK_ROWS = 1000


def _csv_text() -> str:
    upload = request.files.get("file")
    raw = upload.read() if upload is not None else request.get_data()
    if not raw:
        raise InvalidParameter("choose a CSV file to import", field="file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter("the CSV must be UTF-8 text", field="file") from None


def _parse() -> list[tuple[int, dict[str, Any]]]:
    rows = parse_links_csv_with_lines(_csv_text())
    link_bulk.check_bulk_size(len(rows))
    return rows


def _create(rows: list[tuple[int, Any]]) -> dict[str, Any]:
    rt = get_runtime()
    result = link_bulk.create_links_bulk(
        rt.db, rows, scheme_for=rt.settings.scheme_for, created_by=current_actor()
    )
    return result.to_dict()


SAMPLE_COLUMNS = (
    "template_id",
    "channel",
    "campaign",
    "title",
    "tags",
    "media_source",
    "short",
    "ttl",
    "params.deep_link_value",
    "params.af_sub5",
    "notes",
)


@bp.get("/import/sample.csv")
def import_sample() -> Response:
    """A CSV to start from: the columns and three example rows on the first template."""
    with get_runtime().db.session() as db:
        template = db.scalar(select(Template.template_id).order_by(Template.id).limit(1))
    tid = template or "AbCd"
    rows = [
        SAMPLE_COLUMNS,
        (
            tid,
            "email",
            "spring_sale",
            "Spring newsletter: shoes",
            f"spring{TAG_SEPARATOR}shoes",
            "",
            "false",
            "",
            "shoes",
            "{{Profile.objectId}}",
            "Main button of the newsletter",
        ),
        (
            tid,
            "sms",
            "spring_sale",
            "",
            f"spring{TAG_SEPARATOR}sms",
            "",
            "true",
            "31d",
            "shoes",
            "",
            "",
        ),
        (
            tid,
            "qr",
            "poster_paris",
            "Paris store poster",
            "print",
            "",
            "true",
            "",
            "store_paris",
            "",
            "",
        ),
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    resp = Response(out.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="linkgen-sample.csv"'
    return resp


@bp.get("/import")
def import_page() -> str:
    return render_template("links/import.html", result=None, error=None, chunk=CHUNK_ROWS)


@bp.post("/import")
def import_form() -> tuple[str, int]:
    """Without JavaScript: import the whole file in one go."""
    try:
        result = _create(list(_parse()))
    except LinkgenError as exc:
        page = render_template("links/import.html", result=None, error=exc.message, chunk=0)
        return page, exc.status
    return render_template("links/import.html", result=result, error=None, chunk=0), 200


@bp.post("/import/parse")
def import_parse() -> tuple[Response, int]:
    try:
        rows = _parse()
    except LinkgenError as exc:
        return jsonify({"ok": False, "error": exc.message}), 200
    return jsonify({"ok": True, "rows": [[line, body] for line, body in rows]}), 200


@bp.post("/import/chunk")
def import_chunk() -> tuple[Response, int]:
    data = request.get_json(silent=True)
    rows = data.get("rows") if isinstance(data, Mapping) else None
    if not isinstance(rows, list) or not rows or len(rows) > MAX_CHUNK_ROWS:
        raise InvalidParameter(f"send 1 to {MAX_CHUNK_ROWS} rows", field="rows")
    checked: list[tuple[int, Any]] = []
    for item in rows:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
            raise InvalidParameter("each row is [line, link]", field="rows")
        checked.append((item[0], item[1]))
    return jsonify(_create(checked)), 200
