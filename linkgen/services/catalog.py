"""Apps and templates: create, read, update, list (storage + domain validation)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkgen.domain.apps import default_store_url, parse_app
from linkgen.domain.errors import Conflict, InvalidParameter, NotFound
from linkgen.domain.templates import parse_template
from linkgen.services.accounts import hash_key
from linkgen.storage.epochs import APPS, bump_epoch
from linkgen.storage.models import App, Template


def new_sdk_key() -> str:
    """A fresh SDK key for an app."""
    return "sdk_" + secrets.token_urlsafe(24)


def app_to_dict(app: App, *, sdk_key: str | None = None) -> dict[str, Any]:
    """The API shape of an app; the SDK key only in full when just created or rotated."""
    out: dict[str, Any] = {
        "app_id": app.app_id,
        "name": app.name,
        "platform": app.platform,
        "bundle_id": app.bundle_id,
        "team_id": app.team_id,
        "sha256_cert_fingerprints": list(app.sha256_cert_fingerprints or []),
        "store_url": app.store_url or default_store_url(app.app_id, app.platform),
        "sdk_key_hint": "…" + app.sdk_key_last4,
        "click_lookback": app.click_lookback,
        "reengagement_window": app.reengagement_window,
        "reattribution_window_days": app.reattribution_window_days,
        "probabilistic_matching": app.probabilistic_matching,
        "created_at": iso(app.created_at),
        "updated_at": iso(app.updated_at),
    }
    if sdk_key is not None:
        out["sdk_key"] = sdk_key
    return out


def iso(value: Any) -> str | None:
    """ISO 8601 UTC with a Z, seconds precision."""
    if value is None:
        return None
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def get_app(session: Session, app_id: str) -> App:
    """An app by its public id, or 404."""
    app = session.scalar(select(App).where(App.app_id == app_id))
    if app is None:
        raise NotFound(f"no app {app_id!r}", field="app_id")
    return app


def create_app_record(session: Session, body: dict[str, Any]) -> tuple[App, str]:
    """Create an app; returns it with its one-time SDK key."""
    changes = parse_app(body, create=True)
    values = changes.values
    if session.scalar(select(App.id).where(App.app_id == values["app_id"])) is not None:
        raise Conflict(f"app {values['app_id']!r} already exists", field="app_id")
    sdk_key = new_sdk_key()
    app = App(sdk_key_hash=hash_key(sdk_key), sdk_key_last4=sdk_key[-4:], **values)
    session.add(app)
    session.flush()
    return app, sdk_key


def update_app_record(
    session: Session, app_id: str, body: dict[str, Any]
) -> tuple[App, str | None]:
    """Apply a PATCH to an app; returns it and a new SDK key when one was rotated."""
    app = get_app(session, app_id)
    changes = parse_app(body, create=False)
    for key, value in changes.values.items():
        setattr(app, key, value)
    if "store_url" in changes.values:
        bump_epoch(session)  # templates cache their apps' store pages
    bump_epoch(session, APPS)  # the SDK endpoints cache apps by key (services/attribution.py)
    sdk_key = None
    if changes.rotate_sdk_key:
        sdk_key = new_sdk_key()
        app.sdk_key_hash = hash_key(sdk_key)
        app.sdk_key_last4 = sdk_key[-4:]
    session.flush()
    return app, sdk_key


class _ById(Protocol):
    id: Any


ModelT = TypeVar("ModelT", bound=_ById)


def page_by_id(
    session: Session, model: type[ModelT], *, after: int | None, limit: int
) -> tuple[list[ModelT], int | None]:
    """A page of rows in id (creation) order and the cursor of the next page (None at the end)."""
    id_column: Any = model.id
    query = select(model).order_by(id_column).limit(limit + 1)
    if after is not None:
        query = query.where(id_column > after)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def list_apps(session: Session, *, after: int | None, limit: int) -> tuple[list[App], int | None]:
    """A page of apps ordered by creation."""
    return page_by_id(session, App, after=after, limit=limit)


def template_to_dict(t: Template) -> dict[str, Any]:
    """The API shape of a template."""
    return {
        "template_id": t.template_id,
        "domain": t.domain,
        "ios_app_id": t.ios_app_id,
        "android_app_id": t.android_app_id,
        "uri_scheme": t.uri_scheme,
        "universal_links": t.universal_links,
        "app_links": t.app_links,
        "web_fallback_url": t.web_fallback_url,
        "not_found_url": t.not_found_url,
        "redirect_allowlist": list(t.redirect_allowlist or []),
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }


def get_template(session: Session, template_id: str) -> Template:
    """A template by id, or 404."""
    t = session.scalar(select(Template).where(Template.template_id == template_id))
    if t is None:
        raise NotFound(f"no template {template_id!r}", field="template_id")
    return t


def _check_apps(session: Session, values: dict[str, Any]) -> None:
    for key, platform in (("ios_app_id", "ios"), ("android_app_id", "android")):
        app_id = values.get(key)
        if app_id is None:
            continue
        app = session.scalar(select(App).where(App.app_id == app_id))
        if app is None:
            raise InvalidParameter(f"{key}: no app {app_id!r} (create it first)", field=key)
        if app.platform != platform:
            raise InvalidParameter(f"{key}: {app_id!r} is not an {platform} app", field=key)


def create_template_record(
    session: Session, body: dict[str, Any], link_domains: Sequence[str]
) -> Template:
    """Create a template (on a LINKGEN_LINK_DOMAINS or branded domain)."""
    from linkgen.services.domains import allowed_domains

    values = parse_template(body, create=True, link_domains=allowed_domains(session, link_domains))
    _check_apps(session, values)
    existing = session.scalar(
        select(Template.id).where(Template.template_id == values["template_id"])
    )
    if existing is not None:
        raise Conflict(f"template {values['template_id']!r} already exists", field="template_id")
    t = Template(**values)
    session.add(t)
    session.flush()
    bump_epoch(session)
    return t


def update_template_record(
    session: Session, template_id: str, body: dict[str, Any], link_domains: Sequence[str]
) -> Template:
    """Apply a PATCH to a template."""
    t = get_template(session, template_id)
    from linkgen.services.domains import allowed_domains

    values = parse_template(body, create=False, link_domains=allowed_domains(session, link_domains))
    _check_apps(session, values)
    for key, value in values.items():
        setattr(t, key, value)
    session.flush()
    bump_epoch(session)
    return t


def list_templates(
    session: Session, *, after: int | None, limit: int
) -> tuple[list[Template], int | None]:
    """A page of templates ordered by creation."""
    return page_by_id(session, Template, after=after, limit=limit)
