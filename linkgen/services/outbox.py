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
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from linkgen.domain.clevertap import (
    IntegrationSettings,
    resolve_region,
    settings_from_json,
    upload_endpoint,
)
from linkgen.domain.postbacks import Outcome, Send, decide_postback
from linkgen.storage.models import ClevertapIntegration, Postback
from linkgen.storage.rawsql import Executor, Insert, OnSession, dialect
from linkgen.storage.types import utcnow

# No integration row: the partner was never set up, which reads as "inactive".
INACTIVE = IntegrationSettings(active=False)


def postback_linkgen_id(kind: str, app_id: str, source_id: str) -> str:
    """A stable id (at most 64 characters) for the postback of one outcome."""
    digest = hashlib.blake2b(f"{kind}\0{app_id}\0{source_id}".encode(), digest_size=20)
    return f"{kind}-{digest.hexdigest()}"


_POSTBACKS = cast(Table, Postback.__table__)
_INTEGRATIONS = cast(Table, ClevertapIntegration.__table__)
_POSTBACK_COLUMNS = (
    "linkgen_id",
    "app_id",
    "kind",
    "source_id",
    "status",
    "reason",
    "record",
    "account_id",
    "region",
    "endpoint",
    "attempts",
    "next_attempt_at",
    "created_at",
)


@lru_cache(maxsize=4)
def _statements(dialect_name: str) -> tuple[Insert, str]:
    """The postback insert and the settings query of one dialect: the only ones (on the
    driver in a launch or event, through `OnSession` elsewhere)."""
    d = dialect(dialect_name)
    # A row with this linkgen_id already there is the same outcome asked for twice: keep it.
    insert_postback = Insert(
        d, _POSTBACKS, _POSTBACK_COLUMNS, " ON CONFLICT (linkgen_id) DO NOTHING"
    )
    integration = (
        "SELECT clevertap_integrations.settings FROM clevertap_integrations"  # noqa: S608 - constant names
        " JOIN apps ON apps.id = clevertap_integrations.app_pk"
        f" WHERE apps.app_id = {d.p}"
    )
    return insert_postback, integration


def load_integration(tx: Executor, *, app_id: str) -> IntegrationSettings:
    """The app's CleverTap settings; inactive defaults when none are stored."""
    _, sql = _statements(tx.d.name)
    row = tx.fetchone(sql, (app_id,))
    if row is None:
        return INACTIVE
    return settings_from_json(tx.d.reader(_INTEGRATIONS.c.settings)(row[0]))


def postback_values(
    settings: IntegrationSettings,
    outcome: Outcome,
    *,
    app_id: str,
    source_id: str | None,
    api_base: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The outbox row of an outcome: `queued` with its record, or `skipped` with the reason."""
    decision = decide_postback(settings, outcome)
    values: dict[str, Any] = {
        "linkgen_id": outcome.linkgen_id,
        "app_id": app_id,
        "kind": outcome.kind,
        "source_id": (source_id or outcome.linkgen_id)[:200],
        "status": "skipped",
        "reason": None,
        "record": None,
        "account_id": None,
        "region": None,
        "endpoint": None,
        "attempts": 0,
        "next_attempt_at": None,
        "created_at": now,
    }
    if isinstance(decision, Send):
        region = resolve_region(settings.region)
        values.update(
            status="queued",
            record=decision.record,
            account_id=settings.account_id,
            region=region,
            endpoint=upload_endpoint(region, api_base),
            next_attempt_at=now,
        )
    else:
        values["reason"] = decision.reason
    return values


def enqueue_postback(
    tx: Executor,
    settings: IntegrationSettings,
    outcome: Outcome,
    *,
    app_id: str,
    source_id: str | None,
    api_base: str | None,
    now: datetime,
) -> None:
    """Decide whether an outcome goes to CleverTap and write its outbox row (queued or skipped)
    in the caller's transaction.

    `outcome.linkgen_id` is the row's unique id (see `postback_linkgen_id`): when a row with it
    exists already, INSERT ... ON CONFLICT DO NOTHING keeps that one, in one statement.
    `api_base` is `Settings.clevertap_api_base`.
    """
    insert_postback, _ = _statements(tx.d.name)
    values = postback_values(
        settings, outcome, app_id=app_id, source_id=source_id, api_base=api_base, now=now
    )
    tx.execute(insert_postback.sql, insert_postback.params(values))


def queue_postback(
    session: Session,
    *,
    app_id: str,
    outcome: Outcome,
    source_id: str | None = None,
    api_base: str | None = None,
    now: datetime | None = None,
) -> Postback:
    """`enqueue_postback` in an ORM session with the app's stored settings, and the row it
    wrote (or the one already there): for tools and tests that queue an outcome by hand."""
    tx = OnSession(session)
    enqueue_postback(
        tx,
        load_integration(tx, app_id=app_id),
        outcome,
        app_id=app_id,
        source_id=source_id,
        api_base=api_base,
        now=now or utcnow(),
    )
    row = session.scalar(select(Postback).where(Postback.linkgen_id == outcome.linkgen_id))
    assert row is not None, "inserted or already there"
    return row
