"""The postback log: each postback with the record sent and CleverTap's answer, or the plain
reason it was skipped; failed ones can be retried."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from linkgen.runtime import get_runtime
from linkgen.services import postbacks as service
from linkgen.storage.models import App, Postback
from linkgen.storage.types import utcnow
from linkgen.web.pagination import decode_int_cursor, encode_cursor
from linkgen.web.ui import bp, format_when

PAGE_SIZE = 30

# Each skip reason as a sentence a campaign manager understands.
SKIP_REASONS = {
    "partner_inactive": "The CleverTap integration is not active for this app, so nothing was "
    "sent. Turn on “Activate partner” in the app's CleverTap settings.",
    "no_credentials": "No account ID, passcode or token is set for CleverTap, so there was "
    "nowhere to send it.",
    "no_customer_user_id": "The app did not report a Customer User ID for this user, and "
    "CleverTap needs one to find the profile.",
    "restricted_media_source": "The user came from a media source that does not allow sharing "
    "its data with CleverTap (see Restricted media sources).",
    "default_postbacks_off": "Default postbacks (installs and re-engagements) are turned off in "
    "the CleverTap settings.",
    "not_this_partner": "Postbacks are set to “this partner only”, and this user did not come "
    "from a link made in linkgen.",
    "in_app_postbacks_disabled": "In-app event postbacks are turned off in the CleverTap settings.",
    "event_not_mapped": "This in-app event is not in the event mapping, so it is not sent to "
    "CleverTap.",
    "outside_postback_window": "The event happened after the in-app event postback window (days "
    "since install) had closed.",
    "install_postback_disabled_on_link": "The link this user installed from asked for no install "
    "postback (af_installpostback=false).",
}
STATUS_LABELS = {
    "queued": "Queued",
    "retrying": "Retrying",
    "sending": "Sending",
    service.IN_DOUBT: "Unconfirmed",
    "sent": "Sent",
    "failed": "Failed",
    "skipped": "Not sent",
}


@dataclass(frozen=True)
class Entry:
    """One postback, ready for display."""

    id: int
    kind: str
    status: str
    app_id: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_status: int | None
    last_error: str | None
    reason: str | None
    reason_text: str | None
    record: str | None
    response: str | None
    endpoint: str | None
    linkgen_id: str
    note: str | None = None
    event_name: str | None = None
    customer_user_id: str | None = None
    link_id: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def shown_status(self) -> str:
        """`retrying` for a queued postback that has failed before (it waits for its next
        attempt), else the stored status."""
        return "retrying" if self.status == "queued" and self.attempts else self.status


def status_note(p: Postback) -> str | None:
    """A plain sentence for the two states a worker crash or a lost answer can leave."""
    if p.status == service.IN_DOUBT:
        when = format_when(p.next_attempt_at) if p.next_attempt_at else "soon"
        return (
            "The call to CleverTap got no answer (a timeout, or the worker stopped mid-call), so "
            "it is not known yet whether CleverTap stored this event. linkgen asks CleverTap's "
            f"events API at {when} and sends it again only if CleverTap does not have it."
        )
    if p.status == "sent" and isinstance(p.response, dict) and p.response.get("confirmed_by"):
        return (
            "Confirmed by CleverTap's events API after the answer to its call was lost (a "
            "worker crash or a timeout): CleverTap had it, so it was not sent again."
        )
    return None


def _pretty(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def reason_sentence(reason: str | None) -> str | None:
    """The plain-language sentence of a skip reason (the code itself when unknown)."""
    if reason is None:
        return None
    return SKIP_REASONS.get(reason, f"Not sent ({reason}).")


def _entry(p: Postback, source: service.PostbackSource | None = None) -> Entry:
    return Entry(
        id=p.id,
        kind=p.kind,
        status=p.status,
        app_id=p.app_id,
        created_at=p.created_at,
        sent_at=p.sent_at,
        attempts=p.attempts,
        last_status=p.last_status,
        last_error=p.last_error,
        reason=p.reason,
        reason_text=reason_sentence(p.reason),
        record=_pretty(p.record),
        response=_pretty(p.response),
        endpoint=p.endpoint,
        linkgen_id=p.linkgen_id,
        note=status_note(p),
        event_name=source.event_name if source else None,
        customer_user_id=source.customer_user_id if source else None,
        link_id=source.link_id if source else None,
        next_attempt_at=p.next_attempt_at if p.status in ("queued", service.IN_DOUBT) else None,
    )


@bp.get("/postbacks")
def postbacks_list() -> str:
    status = request.args.get("status") or None
    kind = request.args.get("kind") or None
    app_id = (request.args.get("app_id") or "")[:160] or None
    before = decode_int_cursor(request.args)
    with get_runtime().db.session() as db:
        rows, last = service.list_postbacks(
            db, app_id=app_id, status=status, kind=kind, before=before, limit=PAGE_SIZE
        )
        sources = service.postback_sources(db, rows)
        app_ids = list(db.scalars(select(App.app_id).order_by(App.app_id)))
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor" and v}
    next_url = url_for("ui.postbacks_list", **args, cursor=encode_cursor(last)) if last else None
    return render_template(
        "postbacks/list.html",
        entries=[_entry(p, sources.get(p.id)) for p in rows],
        app_ids=app_ids,
        status=status,
        kind=kind,
        app_id=app_id,
        statuses=service.STATUSES,
        kinds=service.KINDS,
        status_labels=STATUS_LABELS,
        next_url=next_url,
        first_url=url_for("ui.postbacks_list", **args) if before is not None else None,
        retried=request.args.get("retried"),
    )


@bp.post("/postbacks/<int:postback_id>/retry")
def postback_retry(postback_id: int) -> Response:
    with get_runtime().db.session() as db:
        service.retry_postback(db, postback_id, now=utcnow())
    return redirect(_back_url(request.form.get("back", ""), postback_id))


def _back_url(back: str, postback_id: int) -> str:
    """The log page the retry came from (same filters), saying what was retried."""
    parts = urlsplit(back)
    if parts.scheme or parts.netloc or parts.path != "/postbacks":
        return url_for("ui.postbacks_list", retried=postback_id)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "retried"]
    query.append(("retried", str(postback_id)))
    return f"/postbacks?{urlencode(query)}"
