"""The postback outbox: one `postbacks` row per install, re-engagement or in-app event.

Rows are written in the transaction of the launch or event that caused them, so a postback is
never lost nor sent for something that was rolled back; the delivery worker claims `queued` rows
whose `next_attempt_at` has come. Outcomes that must not be sent get a `skipped` row naming the
reason, so the postback log can say why nothing went out.

Kinds (our choice where the contract is silent): a new install is `install` (`Install: "Y"`); a
re-engagement and a re-attribution (a reinstall won by a retargeting click: the user is not new)
are `reengagement` (`Install: "N"`); an in-app event is `event`. Reinstalls and plain opens send
nothing. `linkgen_id` is derived from (kind, app, source id), so asking twice for the same
outcome returns the row already there instead of enqueueing a second one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkgen.domain.clevertap import (
    IntegrationSettings,
    resolve_region,
    settings_from_json,
    upload_endpoint,
)
from linkgen.domain.postbacks import Outcome, Send, decide_postback
from linkgen.storage.models import App, ClevertapIntegration, Postback
from linkgen.storage.types import utcnow

# No integration row: the partner was never set up, which reads as "inactive".
INACTIVE = IntegrationSettings(active=False)


def postback_linkgen_id(kind: str, app_id: str, source_id: str) -> str:
    """A stable id (at most 64 characters) for the postback of one outcome."""
    digest = hashlib.blake2b(f"{kind}\0{app_id}\0{source_id}".encode(), digest_size=20)
    return f"{kind}-{digest.hexdigest()}"


def load_integration(session: Session, *, app_id: str) -> IntegrationSettings:
    """The app's CleverTap settings; inactive defaults when none are stored."""
    stored = session.scalar(
        select(ClevertapIntegration.settings)
        .join(App, App.id == ClevertapIntegration.app_pk)
        .where(App.app_id == app_id)
    )
    return settings_from_json(stored) if stored is not None else INACTIVE


def enqueue_postback(
    session: Session,
    *,
    app_id: str,
    outcome: Outcome,
    source_id: str | None = None,
    api_base: str | None = None,
    now: datetime | None = None,
    settings: IntegrationSettings | None = None,
) -> Postback:
    """Decide whether an outcome goes to CleverTap and write its outbox row (queued or skipped).

    `outcome.linkgen_id` is the row's unique id (see `postback_linkgen_id`); when a row with it
    exists already, that row is returned unchanged. `settings` may be passed when the caller has
    loaded them; `api_base` is `Settings.clevertap_api_base`.
    """
    existing = session.scalar(select(Postback).where(Postback.linkgen_id == outcome.linkgen_id))
    if existing is not None:
        return existing
    if settings is None:
        settings = load_integration(session, app_id=app_id)
    now = now or utcnow()
    decision = decide_postback(settings, outcome)
    row = Postback(
        linkgen_id=outcome.linkgen_id,
        app_id=app_id,
        kind=outcome.kind,
        source_id=(source_id or outcome.linkgen_id)[:200],
        attempts=0,
        created_at=now,
    )
    if isinstance(decision, Send):
        region = resolve_region(settings.region)
        row.status = "queued"
        row.record = decision.record
        row.account_id = settings.account_id
        row.region = region
        row.endpoint = upload_endpoint(region, api_base)
        row.next_attempt_at = now
    else:
        row.status = "skipped"
        row.reason = decision.reason
    session.add(row)
    session.flush()
    return row
