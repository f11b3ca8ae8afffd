"""Settings: apps, OneLink templates and each app's CleverTap integration (with its audit trail).

The CleverTap form mirrors the partner page: the activate toggle, account token / passcode /
account id (secrets are write-only: the page shows only their masked form, an empty field keeps
the stored value and a "clear" box removes it), region, default postbacks, the in-app event
mapping rows with their send-revenue choice and the restricted media sources. Validation and
warnings come from `linkgen.domain.clevertap`, exactly as the JSON API gives them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from flask import redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from linkgen.domain.clevertap import (
    DEFAULT_POSTBACKS_VALUES,
    IDENTITY_FIELD_VALUES,
    REGION_HOSTS,
)
from linkgen.domain.errors import InvalidParameter, LinkgenError
from linkgen.domain.validate import is_digits
from linkgen.runtime import get_runtime
from linkgen.services import association, catalog
from linkgen.web.ui import bp, current_actor
from linkgen.web.ui import integration_store as store

DEFAULT_POSTBACK_LABELS = {
    "off": "Off",
    "this_partner": "This partner only (links made here)",
    "all_sources": "All media sources, including organic",
}
SENDING_OPTION_LABELS = {
    "this_partner": "This partner only",
    "all_sources": "All media sources",
}
SEND_REVENUE_LABELS = {
    "none": "No values & no revenue",
    "values": "Values & no revenue",
    "values_and_revenue": "Values & revenue",
}
POLICY_LABELS = {"drop": "Do not send", "send_as_organic": "Send as organic"}
IDENTITY_LABELS = {"objectId": "CleverTap ID (objectId)", "identity": "Identity"}
MAX_ROWS = 200
TEXT_COLUMNS = ("sdk_event", "partner_event", "media_source")


# --------------------------------------------------------------------------- apps


def _opt(form: MultiDict[str, str], key: str) -> str | None:
    value = form.get(key, "").strip()
    return value or None


def _app_body(form: MultiDict[str, str], *, create: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": form.get("name", "").strip() or None}
    if create:
        body["app_id"] = form.get("app_id", "").strip() or None
        if form.get("store_url", "").strip():
            body["store_url"] = form.get("store_url", "").strip()
        return body
    for key in ("bundle_id", "team_id", "store_url"):
        body[key] = _opt(form, key)
    body["click_lookback"] = form.get("click_lookback", "").strip() or None
    body["reengagement_window"] = form.get("reengagement_window", "").strip() or None
    days = form.get("reattribution_window_days", "").strip()
    if days:
        if not is_digits(days):
            raise InvalidParameter(
                "reattribution_window_days must be a whole number",
                field="reattribution_window_days",
            )
        body["reattribution_window_days"] = int(days)
    body["probabilistic_matching"] = form.get("probabilistic_matching") == "on"
    prints = [p.strip() for p in form.get("sha256_cert_fingerprints", "").splitlines()]
    body["sha256_cert_fingerprints"] = [p for p in prints if p]
    return {k: v for k, v in body.items() if v is not None or k in ("bundle_id", "team_id")}


@bp.get("/apps")
def apps_list() -> str:
    return _apps_page({}, {}, None)


def _apps_page(errors: dict[str, str], form: dict[str, str], created: dict[str, Any] | None) -> str:
    with get_runtime().db.session() as db:
        rows, _ = catalog.list_apps(db, after=None, limit=500)
        apps = [catalog.app_to_dict(a) for a in rows]
        configured = store.configured_app_ids(db)
    return render_template(
        "settings/apps.html",
        apps=apps,
        errors=errors,
        form=form,
        created=created,
        configured=configured,
    )


@bp.post("/apps")
def apps_create() -> tuple[str, int]:
    try:
        body = _app_body(request.form, create=True)
        with get_runtime().db.session() as db:
            app, sdk_key = catalog.create_app_record(db, body)
            created = catalog.app_to_dict(app, sdk_key=sdk_key)
    except LinkgenError as exc:
        form = {k: request.form.get(k, "") for k in ("app_id", "name", "store_url")}
        return _apps_page({exc.field or "form": exc.message}, form, None), exc.status
    return _apps_page({}, {}, created), 201


@bp.get("/apps/<app_id>")
def app_edit(app_id: str) -> str:
    with get_runtime().db.session() as db:
        app = catalog.app_to_dict(catalog.get_app(db, app_id))
    return render_template(
        "settings/app_edit.html", app=app, errors={}, saved=request.args.get("saved"), sdk_key=None
    )


@bp.post("/apps/<app_id>")
def app_update(app_id: str) -> Response | tuple[str, int]:
    rotate = request.form.get("rotate_sdk_key") == "1"
    try:
        body: dict[str, Any] = (
            {"rotate_sdk_key": True} if rotate else _app_body(request.form, create=False)
        )
        with get_runtime().db.session() as db:
            app, sdk_key = catalog.update_app_record(db, app_id, body)
            out = catalog.app_to_dict(app, sdk_key=sdk_key)
    except LinkgenError as exc:
        with get_runtime().db.session() as db:
            current = catalog.app_to_dict(catalog.get_app(db, app_id))
        current.update({k: v for k, v in request.form.items() if k in current})
        page = render_template(
            "settings/app_edit.html",
            app=current,
            errors={exc.field or "form": exc.message},
            saved=None,
            sdk_key=None,
        )
        return page, exc.status
    if sdk_key is not None:
        # The new key is shown once, on this answer only.
        page = render_template(
            "settings/app_edit.html", app=out, errors={}, saved="1", sdk_key=sdk_key
        )
        return page, 200
    return redirect(url_for("ui.app_edit", app_id=app_id, saved=1))


# --------------------------------------------------------------------------- templates


def _template_body(form: MultiDict[str, str], *, create: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if create and form.get("template_id", "").strip():
        body["template_id"] = form.get("template_id", "").strip()
    body["domain"] = form.get("domain", "").strip() or None
    for key in (
        "ios_app_id",
        "android_app_id",
        "uri_scheme",
        "web_fallback_url",
        "not_found_url",
    ):
        body[key] = _opt(form, key)
    body["universal_links"] = form.get("universal_links") == "on"
    body["app_links"] = form.get("app_links") == "on"
    hosts = form.get("redirect_allowlist", "").replace(",", "\n").splitlines()
    body["redirect_allowlist"] = [h.strip() for h in hosts if h.strip()]
    if create:
        body = {k: v for k, v in body.items() if v is not None or k == "domain"}
    return body


def _templates_page(errors: dict[str, str], form: dict[str, str]) -> str:
    rt = get_runtime()
    with rt.db.session() as db:
        rows, _ = catalog.list_templates(db, after=None, limit=500)
        templates = [catalog.template_to_dict(t) for t in rows]
        app_rows, _ = catalog.list_apps(db, after=None, limit=500)
        apps = [(a.app_id, a.name, a.platform) for a in app_rows]
    return render_template(
        "settings/templates.html",
        templates=templates,
        apps=apps,
        errors=errors,
        form=form,
        domains=_link_domains(),
    )


def _link_domains() -> list[str]:
    """The domains a template may pick: the settings' and the branded ones."""
    from linkgen.services.domains import allowed_domains

    rt = get_runtime()
    with rt.db.session() as db:
        return allowed_domains(db, rt.settings.link_domains)


@bp.get("/templates")
def templates_list() -> str:
    return _templates_page({}, {})


@bp.post("/templates")
def templates_create() -> Response | tuple[str, int]:
    rt = get_runtime()
    try:
        body = _template_body(request.form, create=True)
        with rt.db.session() as db:
            t = catalog.create_template_record(db, body, rt.settings.link_domains)
            template_id = t.template_id
    except LinkgenError as exc:
        form = dict(request.form.items())
        return _templates_page({exc.field or "form": exc.message}, form), exc.status
    return redirect(url_for("ui.template_edit", template_id=template_id, saved=1))


# A person waits for the check: a short timeout for each file.
ASSOCIATION_CHECK_TIMEOUT = 5.0


def _association(db: Any, template: Any) -> dict[str, Any]:
    """The association files this template's domain serves, their public URLs and gaps."""
    base = f"{get_runtime().settings.scheme_for(template.domain)}://{template.domain}"
    return {
        "files": [
            {
                "name": "Universal Links (iOS)",
                "url": base + association.AASA_PATH,
                "body": association.apple_app_site_association(db, template.domain),
            },
            {
                "name": "App Links (Android)",
                "url": base + association.ASSETLINKS_PATH,
                "body": association.assetlinks(db, template.domain),
            },
        ],
        "gaps": association.template_gaps(db, template),
    }


def _check_file(url: str, expected: Any) -> dict[str, Any]:
    """Fetch one association file from the link domain as a phone would and compare it."""
    try:
        resp = httpx.get(url, timeout=ASSOCIATION_CHECK_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        return {
            "ok": False,
            "message": f"could not be fetched ({exc.__class__.__name__}): "
            "check the DNS record and that the proxy passes /.well-known/ to linkgen",
        }
    if resp.status_code != 200:
        return {
            "ok": False,
            "message": f"answered HTTP {resp.status_code}, not 200 "
            "(phones do not follow redirects for this file)",
        }
    try:
        body = resp.json()
    except ValueError:
        return {"ok": False, "message": "answered something that is not JSON"}
    if body != expected:
        return {
            "ok": False,
            "message": "answered another file than linkgen serves: is another "
            "server answering for this domain?",
        }
    return {"ok": True, "message": "answered with what linkgen serves"}


def _template_page(
    template_id: str,
    *,
    errors: dict[str, str],
    saved: str | None = None,
    checks: list[dict[str, Any]] | None = None,
) -> str:
    rt = get_runtime()
    with rt.db.session() as db:
        record = catalog.get_template(db, template_id)
        t = catalog.template_to_dict(record)
        files = _association(db, record)
        app_rows, _ = catalog.list_apps(db, after=None, limit=500)
        apps = [(a.app_id, a.name, a.platform) for a in app_rows]
    for entry in files["files"]:
        entry["pretty"] = json.dumps(entry["body"], indent=2)
    return render_template(
        "settings/template_edit.html",
        t=t,
        apps=apps,
        errors=errors,
        saved=saved,
        domains=_link_domains(),
        association=files,
        checks=checks,
    )


@bp.get("/templates/<template_id>")
def template_edit(template_id: str) -> str:
    return _template_page(template_id, errors={}, saved=request.args.get("saved"))


@bp.post("/templates/<template_id>/check")
def template_check(template_id: str) -> str:
    """Fetch the template's association files from its link domain and say what came back."""
    with get_runtime().db.session() as db:
        files = _association(db, catalog.get_template(db, template_id))["files"]
    checks = [{"url": f["url"], **_check_file(f["url"], f["body"])} for f in files]
    return _template_page(template_id, errors={}, checks=checks)


@bp.post("/templates/<template_id>")
def template_update(template_id: str) -> Response | tuple[str, int]:
    rt = get_runtime()
    try:
        body = _template_body(request.form, create=False)
        with rt.db.session() as db:
            catalog.update_template_record(db, template_id, body, rt.settings.link_domains)
    except LinkgenError as exc:
        return _template_page(template_id, errors={exc.field or "form": exc.message}), exc.status
    return redirect(url_for("ui.template_edit", template_id=template_id, saved=1))


# --------------------------------------------------------------------------- CleverTap


def _rows(form: MultiDict[str, str], prefix: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    columns = {n: form.getlist(f"{prefix}_{n}")[:MAX_ROWS] for n in names}
    count = max((len(c) for c in columns.values()), default=0)
    rows = []
    for i in range(count):
        row = {n: (columns[n][i] if i < len(columns[n]) else "") for n in names}
        # A row whose text fields are all empty was added and left blank: ignore it.
        if any(row[n].strip() for n in names if n in TEXT_COLUMNS):
            rows.append(row)
    return rows


def clevertap_body(form: MultiDict[str, str]) -> dict[str, Any]:
    """The PUT .../integrations/clevertap body the form stands for."""
    body: dict[str, Any] = {"active": form.get("active") == "on"}
    if "account_id" in form:
        body["account_id"] = form.get("account_id", "").strip() or None
    # Fields the form did not send are left out, so the stored values stay.
    for key in (
        "region",
        "default_postbacks",
        "install_event_name",
        "reengagement_event_name",
        "identity_field",
    ):
        if key in form:
            body[key] = form.get(key, "")
    for secret in ("account_passcode", "account_token"):
        if form.get(f"clear_{secret}") == "on":
            body[secret] = None
        elif form.get(secret, "").strip():
            body[secret] = form.get(secret, "")
        # else: omitted, so the stored value is kept
    window = form.get("postback_window_days", "").strip()
    in_app: dict[str, Any] = {
        "enabled": form.get("in_app_enabled") == "on",
        "mappings": [
            {k: v.strip() for k, v in row.items()}
            for row in _rows(
                form, "map", ("sdk_event", "partner_event", "sending_option", "send_revenue")
            )
        ],
    }
    if window:
        in_app["postback_window_days"] = int(window) if is_digits(window) else window
    body["in_app_events"] = in_app
    body["restricted_media_sources"] = [
        {"media_source": row["media_source"].strip(), "policy": row["policy"]}
        for row in _rows(form, "restricted", ("media_source", "policy"))
    ]
    return body


def _clevertap_page(
    app_id: str,
    *,
    errors: dict[str, str],
    values: dict[str, Any] | None = None,
    saved: bool = False,
    check: dict[str, Any] | None = None,
) -> str:
    with get_runtime().db.session() as db:
        app = catalog.app_to_dict(catalog.get_app(db, app_id))
        public = store.get_public(db, app_id)
        audit = store.audit_entries(db, app_id)
    shown = dict(public)
    if values is not None:  # re-show what was posted (never the secrets)
        for key, value in values.items():
            if key not in ("account_passcode", "account_token"):
                shown[key] = value
    return render_template(
        "settings/clevertap.html",
        app=app,
        s=shown,
        stored=public,
        errors=errors,
        saved=saved,
        audit=audit,
        regions=[
            (code, f"{code} ({host.split('.')[0]}.dashboard.clevertap.com)")
            for code, host in REGION_HOSTS.items()
        ],
        check=check,
        default_postbacks=[(v, DEFAULT_POSTBACK_LABELS[v]) for v in DEFAULT_POSTBACKS_VALUES],
        identity_fields=[(v, IDENTITY_LABELS.get(v, v)) for v in IDENTITY_FIELD_VALUES],
        sending_options=list(SENDING_OPTION_LABELS.items()),
        send_revenue=list(SEND_REVENUE_LABELS.items()),
        policies=list(POLICY_LABELS.items()),
    )


@bp.get("/apps/<app_id>/clevertap")
def clevertap_edit(app_id: str) -> str:
    return _clevertap_page(app_id, errors={}, saved=request.args.get("saved") == "1")


@bp.post("/apps/<app_id>/clevertap/test")
def clevertap_test(app_id: str) -> str:
    """The Test connection button: CleverTap's answer to the stored credentials."""
    from linkgen.web.api.integrations import check_connection

    return _clevertap_page(app_id, errors={}, check=check_connection(app_id, None))


@bp.post("/apps/<app_id>/clevertap")
def clevertap_update(app_id: str) -> Response | tuple[str, int]:
    body = clevertap_body(request.form)
    try:
        with get_runtime().db.session() as db:
            store.put(db, app_id, body, actor=current_actor())
    except LinkgenError as exc:
        values = dict(body)
        values["in_app_events"] = {
            "enabled": body["in_app_events"]["enabled"],
            "postback_window_days": body["in_app_events"].get("postback_window_days", ""),
            "mappings": body["in_app_events"]["mappings"],
        }
        page = _clevertap_page(app_id, errors={exc.field or "form": exc.message}, values=values)
        return page, exc.status
    return redirect(url_for("ui.clevertap_edit", app_id=app_id, saved=1))
