"""The API's description, generated: the document `GET /api/v1/openapi.json` serves.

The schemas come from the models in `linkgen/web/apimodels.py` (pydantic's JSON Schema, so the
document is OpenAPI 3.1); this module adds the table of operations (path, method, summary,
parameters, request model, answers). `linkgen/web/apiref.py` serves it and renders it as a
page, importing this module on the first such request only: pydantic and the models are
about 10 MB of a web process that may never be asked for them.
`tests/integration/test_openapi.py` keeps the table and the URL map in step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from linkgen import __version__
from linkgen.domain import apps as app_rules
from linkgen.domain.bulk import TAG_SEPARATOR
from linkgen.domain.domains import MAX_DOMAIN_CHARS
from linkgen.services import qr as qr_rules
from linkgen.services import rollups as rollup_rules
from linkgen.services import stats as stat_rules
from linkgen.services.links import MAX_BULK_ROWS
from linkgen.web import apimodels as m

JSON = "application/json"
Schema = dict[str, Any]
REF_PREFIX: Final = "#/components/schemas/"

# Request examples of the SDK calls (docs/sdk-contract.md explains every field).
LAUNCH_EXAMPLE: Final = {
    "device_id": "5b0f3c0e-8a4e-4c53-9d3e-2f1d8f0b6a11",
    "first_launch": True,
    "install_referrer": "af_tranid=ck_01HZX3&pid=Email&c=spring_sale",
    "customer_user_id": "__h1a2b3c",
    "ts": "2026-12-02T10:00:00.123Z",
}
EVENT_EXAMPLE: Final = {
    "event_id": "order-1042",
    "device_id": "5b0f3c0e-8a4e-4c53-9d3e-2f1d8f0b6a11",
    "customer_user_id": "__h1a2b3c",
    "event_name": "af_purchase",
    "event_values": {"af_revenue": "9.99", "af_currency": "USD"},
}

ERROR_RESPONSES: Final = {
    "400": ("BadRequest", "Bad input; `field` names the request field."),
    "401": ("Unauthorized", "No key, or an unknown or revoked key."),
    "403": ("Forbidden", "The key may not do this (read-only keys may only GET)."),
    "404": ("NotFound", "Unknown object."),
    "409": ("Conflict", "Conflicts with an existing object."),
    "429": ("RateLimited", "Throttled (`rate_limited`); retry after the given number of seconds."),
}
READ: Final = ("400", "401", "429")
READ_ONE: Final = ("400", "401", "404", "429")
WRITE: Final = ("400", "401", "403", "429")
WRITE_ONE: Final = ("400", "401", "403", "404", "409", "429")


@dataclass(frozen=True)
class Param:
    """A path or query parameter."""

    name: str
    where: str
    schema: Schema
    description: str = ""
    required: bool = False

    def to_openapi(self) -> Schema:
        out: Schema = {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "schema": self.schema,
        }
        if self.description:
            out["description"] = self.description
        return out


def _string(max_length: int | None = None, **extra: Any) -> Schema:
    out: Schema = {"type": "string", **extra}
    if max_length is not None:
        out["maxLength"] = max_length
    return out


def _path(name: str, schema: Schema, description: str) -> Param:
    return Param(name, "path", schema, description, required=True)


APP_ID = _path(
    "app_id",
    _string(app_rules.MAX_APP_ID_CHARS, minLength=1),
    "the app's id (`id123456789` or `com.example.shop`)",
)
TEMPLATE_ID = _path("template_id", _string(16, minLength=1), "the template's 4-character id")
LINK_ID = _path("link_id", _string(32, minLength=1), "the link's id")
POSTBACK_ID = _path("postback_id", _string(minLength=1), "the postback's id")
DOMAIN = _path("domain", _string(MAX_DOMAIN_CHARS, minLength=1), "the branded domain")
LIMIT = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": m.PAGE_LIMIT_MAX, "default": 50},
    "page size",
)
CURSOR = Param(
    "cursor", "query", {"type": "string", "pattern": m.NO_NUL}, "the `next` of the previous page"
)
PAGE = (LIMIT, CURSOR)
LINK_FILTERS = tuple(
    Param(name, "query", _string(200, pattern=m.NO_NUL), description)
    for name, description in (
        ("campaign", "only this campaign"),
        ("channel", "only this channel"),
        ("template_id", "only this template's links"),
        ("q", "search in campaign, title, media source and ids"),
        ("tag", "only links with this tag (case-insensitive)"),
    )
)
QR_PARAMS = (
    LINK_ID,
    Param(
        "size",
        "query",
        {
            "type": "integer",
            "minimum": qr_rules.MIN_SIZE,
            "maximum": qr_rules.MAX_SIZE,
            "default": 600,
        },
        "pixels",
    ),
    Param(
        "margin",
        "query",
        {
            "type": "integer",
            "minimum": qr_rules.MIN_MARGIN,
            "maximum": qr_rules.MAX_MARGIN,
            "default": 4,
        },
        "quiet zone, in modules",
    ),
    Param(
        "ec",
        "query",
        {"type": "string", "enum": ["L", "M", "Q", "H"], "default": "M"},
        "error correction",
    ),
    Param(
        "fg",
        "query",
        {"type": "string", "pattern": qr_rules.COLOUR_PATTERN, "default": "#000000"},
        "colour of the modules, `#rrggbb` (`%23` in a URL) or `rrggbb`: darker than `bg`, with "
        "a WCAG contrast of at least 3:1, else 400 naming `fg`",
    ),
    Param(
        "bg",
        "query",
        {"type": "string", "pattern": qr_rules.COLOUR_PATTERN, "default": "#ffffff"},
        "background colour, `#rrggbb` or `rrggbb`",
    ),
)


@dataclass(frozen=True)
class Body:
    """A request body other than one JSON model (the bulk call's JSON list or CSV)."""

    content: Schema


@dataclass(frozen=True)
class Answer:
    """One success answer: a model, or a media type with a plain schema."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str = JSON
    schema: Schema | None = None


@dataclass(frozen=True)
class Operation:
    """One row of the table the document is built from."""

    path: str
    method: str
    summary: str
    tag: str
    answers: Mapping[str, Answer]
    errors: tuple[str, ...]
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | Body | None = None
    example: Any = None
    description: str = ""
    security: list[dict[str, list[str]]] | None = None
    extra: Schema = field(default_factory=dict)


def _ok(model: type[BaseModel], description: str = "OK") -> dict[str, Answer]:
    return {"200": Answer(description, model)}


def _created(model: type[BaseModel]) -> dict[str, Answer]:
    return {"201": Answer("Created", model)}


DELETED: Final = {"204": Answer("Deleted")}
SDK: Final[list[dict[str, list[str]]]] = [{"sdkKey": []}]
SDK_ERRORS: Final = ("400", "401", "404", "429")
CSV_STRING: Final = {"type": "string"}
BINARY: Final = {"type": "string", "format": "binary"}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "/api/v1/openapi.json",
        "get",
        "This document",
        "meta",
        {"200": Answer("OK", schema={"type": "object"})},
        (),
        security=[],
    ),
    Operation(
        "/api/v1/docs",
        "get",
        "This document as a page",
        "meta",
        {"200": Answer("HTML", media_type="text/html", schema={"type": "string"})},
        (),
        security=[],
    ),
    Operation(
        "/api/v1/apps",
        "post",
        "Register an app (answers its SDK key, once)",
        "apps",
        _created(m.App),
        WRITE_ONE,
        body=m.AppCreate,
        example={"app_id": "com.example.shop", "name": "Shop"},
    ),
    Operation("/api/v1/apps", "get", "List apps", "apps", _ok(m.AppList), READ, PAGE),
    Operation(
        "/api/v1/apps/{app_id}", "get", "Get an app", "apps", _ok(m.App), READ_ONE, (APP_ID,)
    ),
    Operation(
        "/api/v1/apps/{app_id}",
        "patch",
        "Change an app's settings",
        "apps",
        _ok(m.App),
        WRITE_ONE,
        (APP_ID,),
        body=m.AppPatch,
        example={"click_lookback": "1d", "reattribution_window_days": 30},
    ),
    Operation(
        "/api/v1/apps/{app_id}/integrations/clevertap",
        "get",
        "The CleverTap integration (secrets masked)",
        "integrations",
        _ok(m.ClevertapSettings),
        READ_ONE,
        (APP_ID,),
    ),
    Operation(
        "/api/v1/apps/{app_id}/integrations/clevertap",
        "put",
        "Set the CleverTap integration",
        "integrations",
        _ok(m.ClevertapSettings),
        WRITE_ONE,
        (APP_ID,),
        body=m.ClevertapSettingsInput,
        example={"active": True, "account_id": "W6K-556-4K6Z", "region": "EU1"},
        description="Secrets are write-only: a PUT that omits `account_passcode` or "
        '`account_token` keeps the stored value; `""` or null clears it. The answer carries '
        "the resolved `endpoint` and `warnings` in plain sentences.",
    ),
    Operation(
        "/api/v1/apps/{app_id}/integrations/clevertap/test",
        "post",
        "Check the stored credentials against the region",
        "integrations",
        _ok(m.ClevertapTestResult),
        WRITE_ONE,
        (APP_ID,),
    ),
    Operation(
        "/api/v1/apps/{app_id}/integrations/clevertap/audit",
        "get",
        "Who changed the integration, when, and what (secrets never shown)",
        "integrations",
        _ok(m.AuditList),
        READ_ONE,
        (APP_ID, *PAGE),
    ),
    Operation(
        "/api/v1/apps/{app_id}/devices",
        "get",
        "A test device: its clicks, launches (the match each got and why the other clicks "
        "were passed over), events and postbacks",
        "apps",
        _ok(m.DeviceReport),
        READ_ONE,
        (
            APP_ID,
            Param(
                "q",
                "query",
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": m.DEVICE_QUERY_MAX,
                    "pattern": m.NO_NUL_NOT_BLANK,
                },
                "the app's install id (the SDK's device_id), an advertising id (GAID, IDFA), "
                "the IDFV or the customer user id (the CleverTap ID)",
                required=True,
            ),
            Param(
                "days",
                "query",
                {"type": "integer", "minimum": 1, "maximum": m.DEVICE_DAYS_MAX, "default": 30},
                "how far back launches and events are read",
            ),
        ),
    ),
    Operation(
        "/api/v1/domains",
        "post",
        "Add a branded link domain (templates may use it at once, in every process)",
        "domains",
        _created(m.Domain),
        WRITE_ONE,
        body=m.DomainCreate,
        example={"domain": "go.brand.com"},
    ),
    Operation(
        "/api/v1/domains", "get", "List branded domains", "domains", _ok(m.DomainList), READ, PAGE
    ),
    Operation(
        "/api/v1/domains/{domain}",
        "get",
        "Get a branded domain",
        "domains",
        _ok(m.Domain),
        READ_ONE,
        (DOMAIN,),
    ),
    Operation(
        "/api/v1/domains/{domain}",
        "delete",
        "Remove a branded domain (409 while a template uses it)",
        "domains",
        DELETED,
        WRITE_ONE,
        (DOMAIN,),
    ),
    Operation(
        "/api/v1/templates",
        "post",
        "Create a OneLink template",
        "templates",
        _created(m.Template),
        WRITE_ONE,
        body=m.TemplateCreate,
        example={
            "domain": "go.example.com",
            "uri_scheme": "myapp://",
            "web_fallback_url": "https://example.com/app",
            "redirect_allowlist": ["example.com"],
        },
    ),
    Operation(
        "/api/v1/templates", "get", "List templates", "templates", _ok(m.TemplateList), READ, PAGE
    ),
    Operation(
        "/api/v1/templates/{template_id}",
        "get",
        "Get a template",
        "templates",
        _ok(m.Template),
        READ_ONE,
        (TEMPLATE_ID,),
    ),
    Operation(
        "/api/v1/templates/{template_id}",
        "patch",
        "Change a template",
        "templates",
        _ok(m.Template),
        WRITE_ONE,
        (TEMPLATE_ID,),
        body=m.TemplatePatch,
        example={"universal_links": True},
    ),
    Operation(
        "/api/v1/links",
        "post",
        "Create a link",
        "links",
        _created(m.Link),
        WRITE_ONE,
        body=m.LinkCreate,
        example={
            "template_id": "AbCd",
            "channel": "email",
            "campaign": "spring_sale",
            "params": {"deep_link_value": "shoes", "af_sub5": "{{Profile.objectId}}"},
        },
    ),
    Operation(
        "/api/v1/links", "get", "List links", "links", _ok(m.LinkList), READ, (*PAGE, *LINK_FILTERS)
    ),
    Operation(
        "/api/v1/links/bulk",
        "post",
        "Create many links: a JSON list or a CSV; per-row results",
        "links",
        {
            "200": Answer("Every row created", m.BulkResult),
            "207": Answer("Some rows failed (each names its error)", m.BulkResult),
        },
        WRITE,
        (
            Param(
                "template_id",
                "query",
                _string(16, pattern=m.NO_NUL),
                "the template of rows that name none",
            ),
        ),
        body=Body(
            {
                JSON: {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": REF_PREFIX + "LinkCreate"},
                        "minItems": 1,
                        "maxItems": MAX_BULK_ROWS,
                    }
                },
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "one link per row, the same fields as columns, "
                        "`params.*` columns for params; a `tags` cell separates tags with "
                        f"`{TAG_SEPARATOR}`",
                    }
                },
            }
        ),
    ),
    Operation(
        "/api/v1/links.csv",
        "get",
        "Export links as CSV",
        "links",
        {"200": Answer("CSV", media_type="text/csv", schema=CSV_STRING)},
        READ,
        LINK_FILTERS,
    ),
    Operation(
        "/api/v1/links/qr.zip",
        "post",
        "A ZIP of QR codes of links (by ids or campaign)",
        "links",
        {"200": Answer("ZIP", media_type="application/zip", schema=BINARY)},
        WRITE_ONE,
        body=m.QrZipRequest,
        example={"campaign": "spring_sale", "format": "svg"},
    ),
    Operation(
        "/api/v1/links/{link_id}", "get", "Get a link", "links", _ok(m.Link), READ_ONE, (LINK_ID,)
    ),
    Operation(
        "/api/v1/links/{link_id}",
        "patch",
        "Change a link (short links are dynamic)",
        "links",
        _ok(m.Link),
        WRITE_ONE,
        (LINK_ID,),
        body=m.LinkPatch,
        example={"campaign": "summer_sale"},
    ),
    Operation(
        "/api/v1/links/{link_id}",
        "delete",
        "Delete a link",
        "links",
        DELETED,
        WRITE_ONE,
        (LINK_ID,),
    ),
    Operation(
        "/api/v1/links/{link_id}/qr.png",
        "get",
        "QR code (PNG) of the link, with af_qr=true",
        "links",
        {"200": Answer("the QR code", media_type="image/png", schema=BINARY)},
        READ_ONE,
        QR_PARAMS,
    ),
    Operation(
        "/api/v1/links/{link_id}/qr.svg",
        "get",
        "QR code (SVG) of the link, with af_qr=true",
        "links",
        {"200": Answer("the QR code", media_type="image/svg+xml", schema={"type": "string"})},
        READ_ONE,
        QR_PARAMS,
    ),
    Operation(
        "/api/v1/postbacks",
        "get",
        "The postback log",
        "postbacks",
        _ok(m.PostbackList),
        READ,
        (
            *PAGE,
            Param(
                "app_id",
                "query",
                _string(app_rules.MAX_APP_ID_CHARS, pattern=m.NO_NUL),
                "only this app",
            ),
            Param(
                "status",
                "query",
                {
                    "type": "string",
                    "enum": ["queued", "sending", "in_doubt", "sent", "failed", "skipped"],
                },
                "only this status",
            ),
            Param(
                "kind",
                "query",
                {"type": "string", "enum": ["install", "reengagement", "event"]},
                "only this kind",
            ),
        ),
    ),
    Operation(
        "/api/v1/postbacks/{postback_id}",
        "get",
        "Get one postback",
        "postbacks",
        _ok(m.Postback),
        READ_ONE,
        (POSTBACK_ID,),
    ),
    Operation(
        "/api/v1/postbacks/{postback_id}/retry",
        "post",
        "Queue a postback again",
        "postbacks",
        _ok(m.Postback),
        WRITE_ONE,
        (POSTBACK_ID,),
    ),
    Operation(
        "/api/v1/stats",
        "get",
        "Clicks, installs, re-engagements, events and revenue by group",
        "stats",
        _ok(m.StatsList),
        READ,
        (
            Param(
                "group_by",
                "query",
                {
                    "type": "string",
                    "enum": ["link", "campaign", "channel", "media_source"],
                    "default": "link",
                },
                "what one row counts",
            ),
            Param("from", "query", _string(format="date"), "first day (UTC), inclusive"),
            Param("to", "query", _string(format="date"), "last day (UTC), inclusive"),
        ),
    ),
    Operation(
        "/api/v1/stats/breakdowns",
        "get",
        "Clicks by platform, OS, country and referrer",
        "stats",
        _ok(m.BreakdownList),
        READ,
        (
            Param(
                "by",
                "query",
                {"type": "string", "enum": list(rollup_rules.DIMENSIONS)},
                "one breakdown (all four when absent)",
            ),
            Param("from", "query", _string(format="date"), "first day (UTC), inclusive"),
            Param("to", "query", _string(format="date"), "last day (UTC), inclusive"),
            *(
                Param(name, "query", _string(longest, pattern=m.NO_NUL), f"only this {words}")
                for (name, longest), words in zip(
                    stat_rules.FILTERS.items(),
                    ("campaign's clicks", "channel's clicks", "media source's clicks"),
                    strict=True,
                )
            ),
        ),
        description="Counted by the worker from clicks a minute old and older, so the last "
        "minute's clicks are not in it yet. At most one of `campaign`, `channel`, "
        "`media_source`.",
    ),
    Operation(
        "/api/v1/sdk/{app_id}/launches",
        "post",
        "An app launch: attribution and deferred deep link",
        "sdk",
        {
            "200": Answer("Attributed (or a retry of one)", m.Launch),
            "201": Answer("Attributed", m.Launch),
        },
        SDK_ERRORS,
        (APP_ID,),
        body=m.LaunchRequest,
        example=LAUNCH_EXAMPLE,
        security=SDK,
        description="Every app start (`first_launch: true` with the raw Play Install Referrer "
        "string as `install_referrer` on the first one) and every open from a Universal Link, "
        "App Link or push (`deep_link_url`). A repeated first launch of a `device_id` gets the "
        "same answer. See docs/sdk-contract.md.",
    ),
    Operation(
        "/api/v1/sdk/{app_id}/events",
        "post",
        "An in-app event (stored and sent once per event_id)",
        "sdk",
        {
            "201": Answer("Stored", m.Event),
            "200": Answer("Seen before: the same answer", m.Event),
        },
        SDK_ERRORS,
        (APP_ID,),
        body=m.EventRequest,
        example=EVENT_EXAMPLE,
        security=SDK,
        description="Retry network errors, 429 and 5xx with the same `event_id`; a repeat "
        "answers 200 and is stored and sent to CleverTap once. See docs/sdk-contract.md.",
    ),
)

TAGS: Final = (
    "apps",
    "integrations",
    "domains",
    "templates",
    "links",
    "postbacks",
    "stats",
    "sdk",
    "meta",
)


def _tidy(schema: Any) -> Any:
    """pydantic's JSON Schema without its generated titles and `default: null` (absent)."""
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _tidy(sub) for name, sub in value.items()}
        else:
            out[key] = _tidy(value)
    return out


def component_schemas() -> dict[str, Schema]:
    """Every model's schema, named as the document's components."""
    pairs = [(model, "validation") for model in m.REQUEST_MODELS]
    pairs += [(model, "serialization") for model in m.RESPONSE_MODELS]
    _, top = models_json_schema(pairs, ref_template=REF_PREFIX + "{model}")  # type: ignore[arg-type]
    defs: dict[str, Schema] = _tidy(top["$defs"])
    return dict(sorted(defs.items()))


def _ref(model: type[BaseModel]) -> Schema:
    return {"$ref": REF_PREFIX + model.__name__}


def _answer(answer: Answer) -> Schema:
    out: Schema = {"description": answer.description}
    if answer.model is not None:
        out["content"] = {answer.media_type: {"schema": _ref(answer.model)}}
    elif answer.schema is not None:
        out["content"] = {answer.media_type: {"schema": answer.schema}}
    return out


def _operation(op: Operation) -> Schema:
    out: Schema = {"summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [p.to_openapi() for p in op.params]
    if isinstance(op.body, Body):
        out["requestBody"] = {"required": True, "content": op.body.content}
    elif op.body is not None:
        media: Schema = {"schema": _ref(op.body)}
        if op.example is not None:
            media["example"] = op.example
        out["requestBody"] = {"required": True, "content": {JSON: media}}
    responses = {status: _answer(a) for status, a in op.answers.items()}
    for status in op.errors:
        responses[status] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    out["responses"] = responses
    if op.security is not None:
        out["security"] = op.security
    return out


def _error_responses() -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for name, description in ERROR_RESPONSES.values():
        out[name] = {"description": description, "content": {JSON: {"schema": _ref(m.Error)}}}
    out["RateLimited"]["headers"] = {
        "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
    }
    return out


@cache
def build_document() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    paths: dict[str, Schema] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "linkgen API",
            "version": __version__,
            "description": "OneLink-style links, attribution and CleverTap postbacks. "
            'Errors are `{"error": {"code", "message", "field"}}`; lists are '
            '`{"items": [...], "next": cursor | null}`. '
            "Wiring an app (Android, iOS, the React Native / TypeScript SDK, server-to-server "
            "events, the CleverTap side): the integration guide, `docs/integrate/README.md` in "
            "the linkgen repository; every SDK call, field, answer and retry rule: "
            "`docs/sdk-contract.md`. A readable version of this document: `/api/v1/docs`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name} for name in TAGS],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key (`linkgen create-api-key NAME`); "
                    "read-scope keys may only GET",
                },
                "sdkKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-SDK-Key",
                    "description": "the app's sdk_key (shown once, when the app is created)",
                },
            },
            "schemas": component_schemas(),
            "responses": _error_responses(),
        },
    }
    # A plain JSON value (tuples become lists), so the cached copy equals what is served.
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded
