"""Per-app CleverTap integration: read (masked), PUT (validated, audited), audit trail.

Stored as one `clevertap_integrations` row per app holding `settings_to_json` (what
`linkgen.services.outbox.load_integration` reads). Every change that alters something writes an
`integration_audit` row with `audit_diff`, which names secrets only as set / changed / cleared.
An app without a row answers the defaults (inactive, with warnings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkgen.domain.clevertap import (
    IntegrationSettings,
    apply_integration_put,
    audit_diff,
    settings_from_json,
    settings_to_json,
    settings_to_public_dict,
)
from linkgen.services.catalog import get_app, iso
from linkgen.storage.epochs import APPS, bump_epoch
from linkgen.storage.models import App, ClevertapIntegration, IntegrationAudit

MAX_ACTOR_CHARS = 200


def _row(session: Session, app_pk: int) -> ClevertapIntegration | None:
    return session.scalar(select(ClevertapIntegration).where(ClevertapIntegration.app_pk == app_pk))


def stored_settings(session: Session, app_id: str) -> IntegrationSettings | None:
    """The app's stored settings (None when never set); 404 for an unknown app."""
    app = get_app(session, app_id)
    row = _row(session, app.id)
    return settings_from_json(row.settings) if row is not None else None


def effective_settings(session: Session, app_id: str) -> IntegrationSettings:
    """The app's settings, or the defaults (inactive) when none are stored."""
    return stored_settings(session, app_id) or IntegrationSettings()


def public_settings(
    settings: IntegrationSettings, *, api_base: str | None, configured: bool
) -> dict[str, Any]:
    """The API shape: secrets masked, endpoint resolved, warnings listed."""
    out = settings_to_public_dict(settings, api_base=api_base)
    out["configured"] = configured
    return out


def get_integration(session: Session, app_id: str, *, api_base: str | None) -> dict[str, Any]:
    """GET: the stored settings, or the defaults when the integration was never set."""
    current = stored_settings(session, app_id)
    settings = current if current is not None else IntegrationSettings()
    return public_settings(settings, api_base=api_base, configured=current is not None)


def put_integration(
    session: Session,
    app_id: str,
    body: Mapping[str, Any],
    *,
    actor: str,
    api_base: str | None,
) -> dict[str, Any]:
    """PUT: merge the body over the stored settings, store them and audit what changed.

    Validation happens before any write, so a 400 stores nothing.
    """
    # Lock the app row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) so
    # two concurrent first PUTs cannot both insert the integration row.
    app = session.scalar(select(App).where(App.app_id == app_id).with_for_update())
    if app is None:
        get_app(session, app_id)  # raises the 404
        raise AssertionError("unreachable")
    row = _row(session, app.id)
    current = settings_from_json(row.settings) if row is not None else None
    new = apply_integration_put(current, body)
    diff = audit_diff(current, new)
    if row is None:
        session.add(ClevertapIntegration(app_pk=app.id, settings=settings_to_json(new)))
    elif diff:
        row.settings = settings_to_json(new)
    if diff:
        session.add(IntegrationAudit(app_pk=app.id, actor=actor[:MAX_ACTOR_CHARS], changes=diff))
    if row is None or diff:
        bump_epoch(session, APPS)  # launches and events cache the settings (services/attribution)
    session.flush()
    return public_settings(new, api_base=api_base, configured=True)


def audit_to_dict(entry: IntegrationAudit) -> dict[str, Any]:
    """The API shape of one audit row."""
    return {"id": entry.id, "actor": entry.actor, "at": iso(entry.at), "changes": entry.changes}


def list_audit(
    session: Session, app_id: str, *, before: int | None, limit: int
) -> tuple[list[IntegrationAudit], int | None]:
    """A page of the app's integration changes, newest first; the cursor is the last id."""
    app = get_app(session, app_id)
    query = (
        select(IntegrationAudit)
        .where(IntegrationAudit.app_pk == app.id)
        .order_by(IntegrationAudit.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(IntegrationAudit.id < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def settings_to_test(
    session: Session, app_id: str, body: Mapping[str, Any] | None
) -> IntegrationSettings:
    """The settings a credentials test uses: the stored ones, with an optional body's changes
    applied on top (validated like a PUT, never stored) so a form can test before saving."""
    current = effective_settings(session, app_id)
    if body:
        return apply_integration_put(current, body)
    return current
