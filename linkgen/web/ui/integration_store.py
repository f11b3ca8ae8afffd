"""The CleverTap integration as the settings pages need it, over `linkgen.services.integrations`:
read (masked, with warnings), save (validated, audited) and the audit trail for display.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkgen.runtime import get_runtime
from linkgen.services import integrations
from linkgen.storage.models import App, ClevertapIntegration

AUDIT_ROWS = 50
# The settings page's own names for the stored fields (the API keeps the field names).
FIELD_LABELS = {
    "active": "Activate partner",
    "account_id": "Account ID",
    "account_passcode": "Account passcode",
    "account_token": "Account token",
    "region": "Region",
    "default_postbacks": "Default postbacks",
    "install_event_name": "Install event name",
    "reengagement_event_name": "Re-engagement event name",
    "identity_field": "Profile found by",
    "in_app_events": "In-app event postbacks",
    "restricted_media_sources": "Restricted media sources",
}
CHANGE_WORDS = {"set": "set", "changed": "changed (not shown)", "cleared": "cleared"}


@dataclass(frozen=True)
class AuditEntry:
    """One change of the integration, for display."""

    at: datetime
    actor: str
    changes: list[tuple[str, str]]  # (label, "from -> to" or "set"/"changed"/"cleared")


def _api_base() -> str | None:
    return get_runtime().settings.clevertap_api_base


def get_public(db: Session, app_id: str) -> dict[str, Any]:
    """The settings as the API answers them: secrets masked, endpoint and warnings included."""
    return integrations.get_integration(db, app_id, api_base=_api_base())


def put(db: Session, app_id: str, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """Validate and store a PUT body; returns the public shape (with warnings)."""
    return integrations.put_integration(db, app_id, body, actor=actor, api_base=_api_base())


def _describe(change: Any) -> str:
    if isinstance(change, Mapping) and "to" in change:
        return f"{_short(change.get('from'))} → {_short(change.get('to'))}"
    return CHANGE_WORDS.get(str(change), str(change))


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        parts = [f"{k}: {_short(v)}" for k, v in value.items()]
        return "{" + ", ".join(parts) + "}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def audit_entries(db: Session, app_id: str) -> list[AuditEntry]:
    """The app's latest integration changes, newest first."""
    rows, _ = integrations.list_audit(db, app_id, before=None, limit=AUDIT_ROWS)
    return [
        AuditEntry(
            at=r.at,
            actor=r.actor,
            changes=[(FIELD_LABELS.get(k, k), _describe(v)) for k, v in (r.changes or {}).items()],
        )
        for r in rows
    ]


def configured_app_ids(db: Session) -> set[str]:
    """App ids that have a CleverTap integration row."""
    query = select(App.app_id).join(ClevertapIntegration, ClevertapIntegration.app_pk == App.id)
    return set(db.scalars(query))
