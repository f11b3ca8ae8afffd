"""The app association files a link domain serves: Apple's `apple-app-site-association`
(Universal Links) and Google's `assetlinks.json` (App Links), built from the templates of that
domain and their apps. The link domain serves them; the template page shows and checks them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkgen.domain.templates import host_of
from linkgen.storage.models import App, Template

AASA_PATH = "/.well-known/apple-app-site-association"
ASSETLINKS_PATH = "/.well-known/assetlinks.json"


def _templates_for_host(session: Session, host: str) -> list[Template]:
    wanted = host_of(host)
    return [t for t in session.scalars(select(Template)) if host_of(t.domain) == wanted]


def apple_app_site_association(session: Session, host: str) -> dict[str, Any]:
    """Universal Links: every template of this domain with Universal Links on."""
    details: dict[str, dict[str, Any]] = {}
    for t in _templates_for_host(session, host):
        if not (t.universal_links and t.ios_app_id):
            continue
        app = session.scalar(select(App).where(App.app_id == t.ios_app_id))
        if app is None or not app.team_id or not app.bundle_id:
            continue
        app_ref = f"{app.team_id}.{app.bundle_id}"
        entry = details.setdefault(app_ref, {"appIDs": [app_ref], "components": []})
        entry["components"].append({"/": f"/{t.template_id}/*"})
        entry["components"].append({"/": f"/{t.template_id}"})
    return {"applinks": {"details": list(details.values())}}


def assetlinks(session: Session, host: str) -> list[dict[str, Any]]:
    """Android App Links: every template of this domain with App Links on."""
    statements: list[dict[str, Any]] = []
    seen: set[str] = set()
    for t in _templates_for_host(session, host):
        if not (t.app_links and t.android_app_id) or t.android_app_id in seen:
            continue
        app = session.scalar(select(App).where(App.app_id == t.android_app_id))
        if app is None or not app.sha256_cert_fingerprints:
            continue
        seen.add(app.app_id)
        statements.append(
            {
                "relation": ["delegate_permission/common.handle_all_urls"],
                "target": {
                    "namespace": "android_app",
                    "package_name": app.app_id,
                    "sha256_cert_fingerprints": list(app.sha256_cert_fingerprints),
                },
            }
        )
    return statements


def template_gaps(session: Session, t: Template) -> list[str]:
    """What keeps this template's Universal Links or App Links from working, in words."""
    gaps: list[str] = []
    if t.universal_links:
        app = (
            session.scalar(select(App).where(App.app_id == t.ios_app_id)) if t.ios_app_id else None
        )
        if app is None:
            gaps.append("Universal Links are on, but the template has no iOS app.")
        elif not (app.team_id and app.bundle_id):
            gaps.append(
                "Universal Links are on, but the iOS app has no team ID and bundle ID "
                "(set them on the app's page): the file lists nothing for it."
            )
    if t.app_links:
        app = (
            session.scalar(select(App).where(App.app_id == t.android_app_id))
            if t.android_app_id
            else None
        )
        if app is None:
            gaps.append("App Links are on, but the template has no Android app.")
        elif not app.sha256_cert_fingerprints:
            gaps.append(
                "App Links are on, but the Android app has no SHA-256 certificate fingerprint "
                "(set it on the app's page): the file lists nothing for it."
            )
    return gaps
