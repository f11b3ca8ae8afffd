"""Links: the list (search, filters, pagination), the builder with its live preview, the
per-link page (totals, chart, QR, copy buttons), edit, delete and the CSV export."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

from flask import Response, abort, jsonify, redirect, render_template, request, url_for
from flask import Response as FlaskResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from linkgen.domain.errors import InvalidParameter, LinkgenError
from linkgen.domain.links import (
    build_long_url,
    build_short_url,
    clevertap_block,
    has_placeholder,
    link_ref,
    ordered_params,
    parse_link_request,
    with_qr_flag,
)
from linkgen.runtime import get_runtime
from linkgen.services import link_export, link_queries, link_templates, link_views
from linkgen.services import links as service
from linkgen.services.catalog import list_templates
from linkgen.services.qr import (
    FORMATS,
    MAX_LOGO_BYTES,
    QrOptions,
    parse_qr_options,
    qr_zip,
    render_png,
    render_svg,
)
from linkgen.services.stats import (
    currency_label,
    format_revenue,
    parse_report,
    revenue_by_currency,
)
from linkgen.storage.models import Link, LinkTag, Template
from linkgen.storage.types import utcnow
from linkgen.web.pagination import decode_cursor, encode_cursor
from linkgen.web.ui import bp, current_actor
from linkgen.web.ui.forms import (
    DETAIL_FIELDS,
    DETAIL_LIMITS,
    PERSONALISE_TARGETS,
    PLACEHOLDERS,
    LinkForm,
    channel_choices,
    details_body,
    form_field,
    tags_text,
)
from linkgen.web.ui.reports import PRESETS, chart_range, charts, with_range
from linkgen.web.ui.stats import Totals, sum_totals, totals_by_link

PAGE_SIZE = 25
PENDING_SHORT_ID = "XXXXXXXX"  # stands in for the id a short link gets when it is saved
# Stands in for the `lg_link` a new link's long URL gets when it is saved (names no link).
PENDING_LINK_REF = "X" * 22
CHART_DAYS = 30
MIN_CHART_DAYS = 7


def plain_url(url: str) -> str:
    """The URL without the query pairs that hold CleverTap placeholders (for use elsewhere)."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    kept = [pair for pair in query.split("&") if pair and not has_placeholder(pair)]
    return f"{base}?{'&'.join(kept)}" if kept else base


def expiry_note(*, short: bool, ttl: str | None, renew_ttl: bool) -> tuple[str, bool]:
    """What the builder and the link page say about expiry, and whether a printed QR code of
    the link would stop working (then the text is a warning)."""
    if not short:
        return "A long link never expires.", False
    if ttl is None:
        return "This link never expires: its QR code can be printed.", False
    since = "its last click" if renew_ttl else "it was saved"
    return (
        f"This short link expires {ttl} after {since}: a printed QR code of it stops working "
        "then, and its scans lose the campaign and the deep link. For print, leave the time "
        "to live empty on a QR link: it never expires.",
        True,
    )


def _templates(db: Session) -> list[Template]:
    rows, _ = list_templates(db, after=None, limit=500)
    return rows


def _campaigns(db: Session) -> list[str]:
    query = select(Link.campaign).where(Link.campaign.is_not(None)).distinct().limit(500)
    return sorted(c for c in db.scalars(query) if c)


def _tags(db: Session) -> list[str]:
    # The index ix_link_tags_tag holds them in order: a bounded read whatever the link count.
    return list(db.scalars(select(LinkTag.tag).distinct().order_by(LinkTag.tag).limit(500)))


@bp.get("/links")
def links_list() -> str:
    rt = get_runtime()
    filters = link_queries.LinkFilter.from_args(request.args)
    cursor = decode_cursor(request.args)
    with rt.db.session() as db:
        items, last = link_queries.list_links(
            db, filters, cursor=cursor, limit=PAGE_SIZE, scheme_for=rt.settings.scheme_for
        )
        totals = totals_by_link(db, [item["id"] for item in items])
        earning = [link_id for link_id, t in totals.items() if t.revenue_micros]
        currencies = revenue_by_currency(db, link_ids=earning) if earning else {}
        templates = _templates(db)
        campaigns = _campaigns(db)
        tags = _tags(db)
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor" and v}
    next_url = url_for("ui.links_list", **args, cursor=encode_cursor(last)) if last else None
    first_url = url_for("ui.links_list", **args) if cursor else None
    return render_template(
        "links/list.html",
        items=items,
        totals=totals,
        page_total=sum_totals(totals.values()),
        revenue_text={
            link_id: format_revenue(totals[link_id].revenue_micros, currencies.get(link_id))
            for link_id in earning
        },
        empty=Totals(),
        filters=filters,
        templates=templates,
        campaigns=campaigns,
        tags=tags,
        channels=channel_choices(),
        next_url=next_url,
        first_url=first_url,
        export_url=url_for("ui.links_export", **args),
    )


def _builder(form: LinkForm, errors: dict[str, str], *, link: dict[str, Any] | None = None) -> str:
    with get_runtime().db.session() as db:
        templates = _templates(db)
    if not form.template_id and templates:
        form.template_id = templates[0].template_id
    return render_template(
        "links/builder.html",
        form=form,
        errors=errors,
        link=link,
        templates=templates,
        template_options=[(t.template_id, f"{t.template_id} · {t.domain}") for t in templates],
        channels=channel_choices(),
        placeholders=PLACEHOLDERS,
        targets=PERSONALISE_TARGETS,
        limits=DETAIL_LIMITS,
    )


@bp.get("/links/new")
def links_new() -> str:
    form = LinkForm()
    for name in ("template_id", "channel", "campaign"):
        value = request.args.get(name)
        if value:
            setattr(form, name, value[:200])
    return _builder(form, {})


@bp.post("/links/new")
def links_create() -> WerkzeugResponse | tuple[str, int]:
    rt = get_runtime()
    form = LinkForm.from_form(request.form)
    try:
        body = form.to_body()
        with rt.db.session() as db:
            out = service.create_link(
                db, body, scheme_for=rt.settings.scheme_for, created_by=current_actor()
            )
    except LinkgenError as exc:
        return _builder(form, {form_field(exc.field): exc.message}), exc.status
    return redirect(url_for("ui.link_detail", link_id=out["id"], created=1))


@bp.post("/links/preview")
def links_preview() -> tuple[FlaskResponse, int]:
    """The builder's live preview: validate and build the URLs without storing anything."""
    rt = get_runtime()
    form = LinkForm.from_form(request.form)
    link_id = request.form.get("link_id") or None
    try:
        with rt.db.session() as db:
            if link_id is not None:
                stored = link_queries.get_link(db, link_id)
                form.template_id = stored.template_id
                body = form.to_body(with_short=False)
                body["short"] = stored.short
                if stored.shortlink_id:
                    body["shortlink_id"] = stored.shortlink_id
            else:
                body = form.to_body()
            info = link_templates.TemplateLookup(db, rt.settings.scheme_for).get(form.template_id)
        if info is None:
            raise InvalidParameter(
                "choose a template (create one under Templates first)", field="template_id"
            )
        spec = parse_link_request(body, info)
    except LinkgenError as exc:
        error = {"field": form_field(exc.field), "message": exc.message}
        return jsonify({"ok": False, "error": error}), 200
    ref = link_ref(link_id) if link_id is not None else PENDING_LINK_REF
    long_url = build_long_url(info, ordered_params(spec), ref=ref)
    short_url = None
    pending = False
    if spec.short:
        pending = spec.shortlink_id is None
        short_url = build_short_url(info, spec.shortlink_id or PENDING_SHORT_ID, spec.params)
    shared = short_url or long_url
    qr_data = with_qr_flag(shared)
    try:
        svg = render_svg(qr_data, QrOptions(size=220, margin=2, ec="M"))
        qr = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    except InvalidParameter:
        qr = None
    note, qr_expires = expiry_note(
        short=spec.short, ttl=link_views.ttl_text(spec.ttl_seconds), renew_ttl=spec.renew_ttl
    )
    out = {
        "ok": True,
        "long_url": long_url,
        "short_url": short_url,
        "plain_url": plain_url(shared),
        "pending_short_id": pending,
        "pending_marker": PENDING_SHORT_ID,
        # A new link's long URL names the link (lg_link) only once it is saved.
        "pending_link_ref": link_id is None,
        "expiry_note": note,
        "qr_expires": qr_expires,
        "media_source": spec.media_source,
        "length": len(long_url),
        "clevertap": clevertap_block(
            shared, spec.channel, text=request.form.get("link_text", "").strip()[:200] or None
        ),
        "qr": qr,
    }
    return jsonify(out), 200


def _chart_range(created_day: Any) -> tuple[Any, Any]:
    """The default: the last 30 days, or since the link was made (at least 7 days)."""
    last = utcnow().date()
    first = max(created_day, last - timedelta(days=CHART_DAYS - 1))
    if (last - first).days < MIN_CHART_DAYS - 1:
        first = last - timedelta(days=MIN_CHART_DAYS - 1)
    return first, last


def _asked_range(created_day: Any) -> tuple[Any, Any, bool, dict[str, str]]:
    """The chart's days from `days=7|30|90` or `from` / `to` (checked), else the default."""
    args = {k: v for k, v in request.args.items() if k in ("days", "from", "to") and v}
    if not args:
        first, last = _chart_range(created_day)
        return first, last, False, {}
    _, day_from, day_to = parse_report(with_range(args))
    first, last, cut = chart_range(day_from, day_to)
    return first, last, cut, args


@bp.get("/links/<link_id>")
def link_detail(link_id: str) -> str:
    return _detail_page(link_id)


def _detail_page(
    link_id: str, errors: dict[str, str] | None = None, details: dict[str, str] | None = None
) -> str:
    """The link page; after a refused details form, its errors and what was typed."""
    rt = get_runtime()
    with rt.db.session() as db:
        link = link_queries.get_link_dict(db, link_id, scheme_for=rt.settings.scheme_for)
        stored = link_queries.get_link(db, link_id)
        totals = totals_by_link(db, [link_id]).get(link_id, Totals())
        first, last, cut, asked = _asked_range(stored.created_at.date())
        wide, narrow = charts(db, first, last, link_id=link_id)
        currencies = revenue_by_currency(db, link_ids=[link_id]).get(link_id, {})
    note, qr_expires = expiry_note(
        short=link["short"], ttl=link["ttl"], renew_ttl=link["renew_ttl"]
    )
    return render_template(
        "links/detail.html",
        link=link,
        plain=plain_url(link["short_url"] or link["long_url"]),
        push_payload=json.dumps(link["clevertap"]["push_payload"], indent=2, ensure_ascii=False),
        totals=totals,
        revenue=format_revenue(totals.revenue_micros, currencies),
        currency=currency_label(currencies),
        chart=wide,
        chart_narrow=narrow,
        chart_cut=cut,
        asked=asked,
        presets=PRESETS,
        created=request.args.get("created") == "1",
        updated=request.args.get("updated") == "1",
        expiry_note=note,
        qr_expires=qr_expires,
        errors=errors or {},
        details=details
        or {
            "title": link["title"] or "",
            "tags": tags_text(link["tags"]),
            "notes": link["notes"] or "",
        },
        details_saved=request.args.get("details") == "1",
        limits=DETAIL_LIMITS,
    )


@bp.post("/links/<link_id>/details")
def link_details_update(link_id: str) -> WerkzeugResponse | tuple[str, int]:
    """The link page's details form: title, tags and notes, nothing else of the link."""
    rt = get_runtime()
    typed = {name: request.form.get(name, "") for name in DETAIL_FIELDS}
    try:
        with service.write_transaction(rt.db) as db:
            service.update_link(db, link_id, details_body(typed), scheme_for=rt.settings.scheme_for)
    except InvalidParameter as exc:
        # The whole link is checked again: a refusal of another field (the template's allow-list
        # changed since) is said above the form, which has no input for it.
        field = form_field(exc.field)
        errors = {field if field in DETAIL_FIELDS else "form": exc.message}
        return _detail_page(link_id, errors, typed), exc.status
    return redirect(url_for("ui.link_detail", link_id=link_id, details=1, _anchor="details-h"))


@bp.get("/links/<link_id>/edit")
def link_edit(link_id: str) -> str:
    rt = get_runtime()
    with rt.db.session() as db:
        link = link_queries.get_link_dict(db, link_id, scheme_for=rt.settings.scheme_for)
    return _builder(LinkForm.from_link(link), {}, link=link)


@bp.post("/links/<link_id>/edit")
def link_update(link_id: str) -> WerkzeugResponse | tuple[str, int]:
    rt = get_runtime()
    form = LinkForm.from_form(request.form)
    with rt.db.session() as db:
        link = link_queries.get_link_dict(db, link_id, scheme_for=rt.settings.scheme_for)
    form.template_id = link["template_id"]
    form.short = "short" if link["short"] else "long"
    try:
        body = form.to_body(with_template=False, with_short=False)
        if body.get("ttl") == link.get("ttl"):
            body.pop("ttl", None)  # unchanged: do not restart the expiry
        elif "ttl" not in body and body["channel"] == "qr" and link.get("ttl") is not None:
            body["ttl"] = None  # emptied on a QR link: it never expires from now on
        body.setdefault("params", {})
        body.setdefault("campaign", None)
        body.setdefault("media_source", None)
        for name in DETAIL_FIELDS:
            body.setdefault(name, None)  # emptied in the form: the link has none any more
        with rt.db.session() as db:
            service.update_link(db, link_id, body, scheme_for=rt.settings.scheme_for)
    except LinkgenError as exc:
        return _builder(form, {form_field(exc.field): exc.message}, link=link), exc.status
    return redirect(url_for("ui.link_detail", link_id=link_id, updated=1))


@bp.post("/links/<link_id>/delete")
def link_delete(link_id: str) -> WerkzeugResponse:
    with get_runtime().db.session() as db:
        service.delete_link(db, link_id)
    return redirect(url_for("ui.links_list", deleted=1))


QR_STYLE_FIELDS = ("size", "margin", "ec", "fg", "bg")
_UNSAFE_FILE_RE = re.compile(r"[^A-Za-z0-9._-]+")


def qr_style() -> QrOptions:
    """The QR style a page asks for: the query of a GET, or a POST form with an optional logo."""
    if request.method != "POST":
        return parse_qr_options(request.args)
    args = {name: request.form.get(name, "") for name in QR_STYLE_FIELDS}
    upload = request.files.get("logo")
    logo = None
    if upload is not None and upload.filename:
        logo = upload.read(MAX_LOGO_BYTES + 1)  # one byte more is enough to say "too big"
    return parse_qr_options(args, logo=logo)


def _qr_refusal(exc: LinkgenError) -> tuple[FlaskResponse, int]:
    """A refused style: the error page (400 naming the field), or for the page's script, like
    the builder's preview, 200 `{"ok": false, "error": ...}` (a 4xx is a console error)."""
    if request.headers.get("X-Requested-With") != "fetch":
        raise exc
    return jsonify({"ok": False, "status": exc.status, **exc.to_dict()}), 200


@bp.route("/links/<link_id>/qr.<fmt>", methods=["GET", "POST"])
def link_qr(link_id: str, fmt: str) -> FlaskResponse | tuple[FlaskResponse, int]:
    """One link's QR code; POST carries the QR panel's form (colours, margin, EC, logo)."""
    if fmt not in FORMATS:
        abort(404)
    rt = get_runtime()
    with rt.db.session() as db:
        data = link_export.link_qr_data(db, link_id, scheme_for=rt.settings.scheme_for)
        stored = link_queries.get_link(db, link_id)
    try:
        opts = qr_style()
        image = render_png(data, opts) if fmt == "png" else render_svg(data, opts)
    except LinkgenError as exc:
        return _qr_refusal(exc)
    mimetype = "image/png" if fmt == "png" else "image/svg+xml"
    resp = Response(image, mimetype=mimetype)
    if request.args.get("download"):
        name = f"qr-{stored.shortlink_id or stored.id}.{fmt}"
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "private, max-age=60" if request.method == "GET" else "no-store"
    return resp


@bp.post("/links/qr-codes.zip")
def links_qr_zip() -> FlaskResponse | tuple[FlaskResponse, int]:
    """A campaign's QR codes, one file per link, in the style of the form."""
    rt = get_runtime()
    campaign = (request.form.get("campaign") or "").strip()
    fmt = request.form.get("format") or "png"
    try:
        if not campaign:
            raise InvalidParameter("choose a campaign", field="campaign")
        if fmt not in FORMATS:
            raise InvalidParameter("format must be png or svg", field="format")
        opts = qr_style()
        with rt.db.session() as db:
            targets = link_export.qr_targets(
                db, ids=None, campaign=campaign, scheme_for=rt.settings.scheme_for
            )
        body = qr_zip(targets, fmt, opts)
    except LinkgenError as exc:
        return _qr_refusal(exc)
    resp = Response(body, mimetype="application/zip")
    stem = _UNSAFE_FILE_RE.sub("_", campaign).strip("._")[:80] or "campaign"
    resp.headers["Content-Disposition"] = f'attachment; filename="qr-{stem}.zip"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/links/export.csv")
def links_export() -> FlaskResponse:
    rt = get_runtime()
    filters = link_queries.LinkFilter.from_args(request.args)

    def generate() -> Any:
        with rt.db.session() as db:
            yield from link_export.export_csv_chunks(db, filters, scheme_for=rt.settings.scheme_for)

    resp = Response(generate(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="links.csv"'
    return resp
