"""GET /api/v1/openapi.json: the OpenAPI 3.0.3 description of the JSON API, built from code.

The document follows the external contract (`docs`/contract); `tests/integration/test_openapi.py`
keeps it and the URL map in step (every `/api/v1` rule documented, every documented path routed).
The document itself needs no API key: it lives on its own blueprint, outside the `api`
blueprint's Bearer check.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from flask import Blueprint, Flask, Response, jsonify

from linkgen import __version__

bp = Blueprint("openapi", __name__)

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _resp(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _json_body(
    schema: Schema, *, required: bool = True, description: str = "", example: Any = None
) -> Schema:
    body: Schema = {"required": required, "content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    if example is not None:
        body["content"][JSON]["example"] = example
    return body


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


def _ok(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _string(max_length: int | None = None, **extra: Any) -> Schema:
    out: Schema = {"type": "string", **extra}
    if max_length is not None:
        out["maxLength"] = max_length
    return out


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def _errors(*statuses: int) -> dict[str, Schema]:
    names = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        429: "RateLimited",
    }
    return {str(s): _resp(names[s]) for s in statuses}


def _list_of(item: str) -> Schema:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next": _nullable(_string(description="cursor of the next page; null at the end")),
        },
    }


QR_COLOUR: Schema = {"type": "string", "pattern": "^#?[0-9a-fA-F]{6}$"}
WINDOW = _string(16, description="a window: `Nh` or `Nd` (re-engagement also `lifetime`)")

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": _string(
                        description="invalid_parameter, unauthorized, forbidden, not_found, "
                        "conflict, rate_limited, ..."
                    ),
                    "message": _string(),
                    "field": _nullable(
                        _string(description="path of the request field as sent, e.g. params.af_r")
                    ),
                },
            }
        },
    },
    "AppSettings": {
        "type": "object",
        "properties": {
            "name": _string(200),
            "bundle_id": _nullable(_string(160)),
            "team_id": _nullable(_string(20)),
            "sha256_cert_fingerprints": {"type": "array", "items": _string(200)},
            "store_url": _nullable(_string(500, format="uri")),
            "click_lookback": _string(8, example="7d"),
            "reengagement_window": WINDOW,
            "reattribution_window_days": {"type": "integer", "minimum": 0},
            "probabilistic_matching": {"type": "boolean"},
        },
    },
    "AppPatch": {
        "allOf": [
            _ref("AppSettings"),
            {
                "type": "object",
                "properties": {
                    "rotate_sdk_key": {
                        "type": "boolean",
                        "description": "issue a new SDK key (answered once; the old one stops)",
                    }
                },
            },
        ]
    },
    "AppCreate": {
        "allOf": [
            {
                "type": "object",
                "required": ["app_id", "name"],
                "properties": {
                    "app_id": _string(
                        160, description="iOS: `id` + digits; Android: a package name"
                    ),
                },
            },
            _ref("AppSettings"),
        ]
    },
    "App": {
        "type": "object",
        "required": ["app_id", "name", "platform", "store_url"],
        "properties": {
            "app_id": _string(),
            "name": _string(),
            "platform": {"type": "string", "enum": ["ios", "android"]},
            "bundle_id": _nullable(_string()),
            "team_id": _nullable(_string()),
            "sha256_cert_fingerprints": {"type": "array", "items": _string()},
            "store_url": _nullable(_string()),
            "sdk_key": _string(description="only in the answer that created (or rotated) it"),
            "sdk_key_hint": _string(description="the last characters of the SDK key"),
            "click_lookback": _string(),
            "reengagement_window": _string(),
            "reattribution_window_days": {"type": "integer"},
            "probabilistic_matching": {"type": "boolean"},
            "created_at": _string(format="date-time"),
            "updated_at": _string(format="date-time"),
        },
    },
    "AppList": _list_of("App"),
    "TemplateSettings": {
        "type": "object",
        "properties": {
            "domain": _string(255, example="go.example.com"),
            "ios_app_id": _nullable(_string(160)),
            "android_app_id": _nullable(_string(160)),
            "uri_scheme": _nullable(_string(100, example="myapp://")),
            "universal_links": {"type": "boolean"},
            "app_links": {"type": "boolean"},
            "web_fallback_url": _nullable(_string(2000, description="an https URL")),
            "not_found_url": _nullable(
                _string(
                    2000,
                    description="an https URL where an unknown or deleted short link on this"
                    " template redirects; default: web_fallback_url (else a 404 page)",
                )
            ),
            "redirect_allowlist": {"type": "array", "items": _string(255)},
        },
    },
    "TemplateCreate": {
        "allOf": [
            {
                "type": "object",
                "required": ["domain"],
                "properties": {
                    "template_id": _string(
                        4, description="4 letters/digits; generated when omitted"
                    )
                },
            },
            _ref("TemplateSettings"),
        ]
    },
    "Template": {
        "type": "object",
        "required": ["template_id", "domain"],
        "properties": {
            "template_id": _string(),
            "domain": _string(),
            "ios_app_id": _nullable(_string()),
            "android_app_id": _nullable(_string()),
            "uri_scheme": _nullable(_string()),
            "universal_links": {"type": "boolean"},
            "app_links": {"type": "boolean"},
            "web_fallback_url": _nullable(_string()),
            "not_found_url": _nullable(_string()),
            "redirect_allowlist": {"type": "array", "items": _string()},
            "created_at": _string(format="date-time"),
            "updated_at": _string(format="date-time"),
        },
    },
    "TemplateList": _list_of("Template"),
    "DomainCreate": {
        "type": "object",
        "required": ["domain"],
        "additionalProperties": False,
        "properties": {"domain": _string(255, description="host[:port], e.g. go.brand.com")},
    },
    "Domain": {
        "type": "object",
        "required": ["domain", "status", "dns", "created_at"],
        "properties": {
            "domain": _string(255),
            "status": {"type": "string", "enum": ["pending_dns", "active"]},
            "dns": {
                "type": "object",
                "properties": {
                    "type": _string(),
                    "name": _string(),
                    "value": _nullable(_string()),
                    "note": _string(),
                },
            },
            "created_at": _string(format="date-time"),
            "seen_at": _nullable(_string(format="date-time")),
        },
    },
    "DomainList": _list_of("Domain"),
    "EventMapping": {
        "type": "object",
        "properties": {
            "sdk_event": _string(200),
            "partner_event": _string(200),
            "sending_option": {"type": "string", "enum": ["this_partner", "all_sources"]},
            "send_revenue": {"type": "string", "enum": ["none", "values", "values_and_revenue"]},
        },
    },
    "ClevertapSettingsInput": {
        "type": "object",
        "properties": {
            "active": {"type": "boolean"},
            "account_id": _nullable(_string(100, example="W6K-556-4K6Z")),
            "account_passcode": _nullable(
                _string(200, description="write-only; omitted keeps, '' or null clears")
            ),
            "account_token": _nullable(
                _string(200, description="write-only; omitted keeps, '' or null clears")
            ),
            "region": _string(16, example="EU1"),
            "default_postbacks": {
                "type": "string",
                "enum": ["off", "this_partner", "all_sources"],
            },
            "install_event_name": _string(200),
            "reengagement_event_name": _string(200),
            "identity_field": {"type": "string", "enum": ["objectId", "identity"]},
            "in_app_events": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "postback_window_days": {"type": "integer", "minimum": 0},
                    "mappings": {"type": "array", "items": _ref("EventMapping")},
                },
            },
            "restricted_media_sources": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "media_source": _string(150),
                        "policy": {"type": "string", "enum": ["drop", "send_as_organic"]},
                    },
                },
            },
        },
    },
    "ClevertapSettings": {
        "type": "object",
        "description": "The settings as stored, secrets masked (last 3 characters shown).",
        "properties": {
            "active": {"type": "boolean"},
            "account_id": _nullable(_string()),
            "account_passcode": _nullable(_string(description="masked")),
            "account_token": _nullable(_string(description="masked")),
            "has_passcode": {"type": "boolean"},
            "has_token": {"type": "boolean"},
            "region": _nullable(_string()),
            "endpoint": _nullable(_string(example="https://in1.api.clevertap.com/1/upload")),
            "warnings": {"type": "array", "items": _string()},
        },
        "additionalProperties": True,
    },
    "ClevertapTestResult": {
        "type": "object",
        "required": ["ok", "status", "message"],
        "properties": {
            "ok": {"type": "boolean"},
            "status": _nullable({"type": "integer"}),
            "message": _string(),
        },
    },
    "AuditEntry": {
        "type": "object",
        "properties": {
            "actor": _string(),
            "at": _string(format="date-time"),
            "changes": {"type": "object", "additionalProperties": True},
        },
        "additionalProperties": True,
    },
    "AuditList": _list_of("AuditEntry"),
    "DeviceReport": {
        "type": "object",
        "required": ["app_id", "q", "installs", "clicks", "launches", "events", "postbacks"],
        "properties": {
            "app_id": _string(),
            "q": _string(),
            "days": {"type": "integer"},
            "installs": {"type": "array", "items": {"type": "object"}},
            "clicks": {"type": "array", "items": {"type": "object"}},
            "launches": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "launch_id": _string(),
                        "type": _string(),
                        "match_type": _nullable(_string()),
                        "matched": _string(description="how the winning click matched, in words"),
                        "passed_over": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "click_id": _string(),
                                    "reason": _string(example="click_injection"),
                                    "why": _string(description="the reason in words"),
                                },
                            },
                        },
                    },
                },
            },
            "events": {"type": "array", "items": {"type": "object"}},
            "postbacks": {"type": "array", "items": _ref("Postback")},
        },
    },
    "LinkParams": {
        "type": "object",
        "description": "OneLink parameters (af_adset, af_sub1..5, deep_link_value, af_r, ...); "
        "values may hold CleverTap Liquid placeholders; `pid`, `c`, `af_channel` (top-level "
        "fields) and `lg_link` (linkgen names the link with it) are refused",
        "additionalProperties": _string(2000),
    },
    "LinkInput": {
        "type": "object",
        "properties": {
            "template_id": _string(16),
            "channel": {"type": "string", "enum": ["email", "sms", "push", "qr", "custom"]},
            "campaign": _string(100),
            "media_source": _string(150),
            "params": _ref("LinkParams"),
            "short": {"type": "boolean"},
            "shortlink_id": _string(50),
            "ttl": _nullable(
                _string(
                    16,
                    description="`Nm`, `Nh`, `Nd` or bare days; 1 minute to 365 days. Absent or "
                    "null: 31 days, except QR links, which then never expire (`expires_at` null); "
                    "on PATCH, null gives the channel's default again",
                )
            ),
            "renew_ttl": {"type": "boolean"},
        },
    },
    "LinkCreate": {
        "allOf": [
            {"type": "object", "required": ["template_id", "channel"]},
            _ref("LinkInput"),
        ]
    },
    "Link": {
        "type": "object",
        "required": ["id", "template_id", "channel", "media_source", "long_url"],
        "properties": {
            "id": _string(),
            "template_id": _string(),
            "channel": _string(),
            "media_source": _string(),
            "campaign": _nullable(_string()),
            "params": {"type": "object", "additionalProperties": True},
            "partner": _string(example="clevertap"),
            "long_url": _string(
                description="Carries `lg_link` (the link's id, 22 letters and digits), so its "
                "clicks count for this link, also after placeholders are substituted and "
                "parameters appended"
            ),
            "short_url": _nullable(_string()),
            "shortlink_id": _nullable(_string()),
            "expires_at": _nullable(
                _string(
                    format="date-time",
                    description="When the short URL expires (renewed by clicks); null for long "
                    "links and links without a ttl",
                )
            ),
            "ttl": _nullable(_string(description="null: the link never expires")),
            "renew_ttl": {"type": "boolean"},
            "clevertap": {
                "type": "object",
                "properties": {
                    "url": _string(),
                    "email_html": _string(),
                    "sms_text": _string(),
                    "push_payload": {"type": "object", "additionalProperties": True},
                },
            },
            "qr_png_url": _string(),
            "qr_svg_url": _string(),
        },
    },
    "LinkList": _list_of("Link"),
    "BulkResult": {
        "type": "object",
        "required": ["created", "failed", "results"],
        "properties": {
            "created": {"type": "integer"},
            "failed": {"type": "integer"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["row", "ok"],
                    "properties": {
                        "row": {"type": "integer"},
                        "ok": {"type": "boolean"},
                        "link": _ref("Link"),
                        "error": {"$ref": "#/components/schemas/Error/properties/error"},
                    },
                },
            },
        },
    },
    "QrZipRequest": {
        "type": "object",
        "description": "`ids` or `campaign` (not both)",
        "properties": {
            "ids": {"type": "array", "items": _string(32), "minItems": 1},
            "campaign": _string(100),
            "format": {"type": "string", "enum": ["png", "svg"]},
            "size": {"type": "integer", "minimum": 64, "maximum": 4000},
            "margin": {"type": "integer", "minimum": 0, "maximum": 40},
            "ec": {"type": "string", "enum": ["L", "M", "Q", "H"]},
            "fg": {**QR_COLOUR, "default": "#000000"},
            "bg": {**QR_COLOUR, "default": "#ffffff"},
        },
    },
    "Postback": {
        "type": "object",
        "properties": {
            "id": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "app_id": _string(),
            "kind": {"type": "string", "enum": ["install", "reengagement", "event"]},
            "status": {
                "type": "string",
                "enum": ["queued", "sending", "in_doubt", "sent", "failed", "skipped"],
                "description": "in_doubt: the call carrying it got no answer (timeout, or the "
                "worker stopped mid-call); CleverTap's events API is asked whether it arrived "
                "before it is sent again (next_attempt_at says when).",
            },
            "reason": _nullable(_string()),
            "record": _nullable({"type": "object", "additionalProperties": True}),
            "attempts": {"type": "integer"},
            "last_status": _nullable({"type": "integer"}),
            "response": _nullable({"type": "object", "additionalProperties": True}),
        },
        "additionalProperties": True,
    },
    "PostbackList": _list_of("Postback"),
    "StatsRow": {
        "type": "object",
        "properties": {
            "link_id": _nullable(_string()),
            "campaign": _nullable(_string()),
            "channel": _nullable(_string()),
            "media_source": _nullable(_string()),
            "clicks": {"type": "integer"},
            "human_clicks": {"type": "integer"},
            "bot_clicks": {"type": "integer"},
            "installs": {"type": "integer"},
            "reengagements": {"type": "integer"},
            "events": {"type": "integer"},
            "revenue": {"type": "number"},
        },
    },
    "StatsList": _list_of("StatsRow"),
    "LaunchRequest": {
        "type": "object",
        "required": ["device_id"],
        "properties": {
            "device_id": _string(100),
            "customer_user_id": _nullable(_string(200)),
            "first_launch": {"type": "boolean"},
            "install_referrer": _nullable(_string(2000)),
            "deep_link_url": _nullable(_string(2000)),
            "idfa": _nullable(_string(64)),
            "idfv": _nullable(_string(64)),
            "gaid": _nullable(_string(64)),
            "ip": _nullable(_string(64)),
            "user_agent": _nullable(_string(1024)),
            "ts": _nullable(_string(format="date-time")),
            "os": _nullable(
                {
                    "type": "string",
                    "enum": ["ios", "android"],
                    "description": "the device's platform; must be the app's own. "
                    "Default: read from user_agent (CFNetwork/Darwin, Dalvik, okhttp or a "
                    "browser's), else the app's platform.",
                }
            ),
            "os_version": _nullable(
                _string(
                    32,
                    pattern=r"^\s*[0-9]{1,3}(\.[0-9]{1,4}){0,3}\s*$",
                    description="e.g. 17.4; compared with the click's browser, major.minor. "
                    "Default: read from user_agent (Darwin/23.4.0 is 17.4).",
                )
            ),
            "app_version": _nullable(_string(64, description="kept on the launch as sent")),
            "sdk": _nullable(_string(64, description="SDK name and version, kept as sent")),
        },
    },
    "Launch": {
        "type": "object",
        "required": ["launch_id", "type", "attribution", "deep_link"],
        "properties": {
            "launch_id": _string(),
            "type": {
                "type": "string",
                "enum": ["install", "reinstall", "reattribution", "reengagement", "open"],
            },
            "attribution": {
                "type": "object",
                "properties": {
                    "is_organic": {"type": "boolean"},
                    "media_source": _nullable(_string()),
                    "campaign": _nullable(_string()),
                    "channel": _nullable(_string()),
                    "match_type": _nullable(
                        {
                            "type": "string",
                            "enum": [
                                "referrer",
                                "device_id",
                                "customer_user_id",
                                "probabilistic",
                                "deep_link",
                            ],
                        }
                    ),
                    "click_id": _nullable(_string()),
                    "click_time": _nullable(_string()),
                    "link_id": _nullable(_string()),
                },
            },
            "deep_link": {
                "type": "object",
                "properties": {"status": {"type": "string", "enum": ["FOUND", "NOT_FOUND"]}},
                "additionalProperties": True,
            },
        },
    },
    "EventRequest": {
        "type": "object",
        "required": ["event_id", "event_name"],
        "properties": {
            "event_id": _string(200),
            "device_id": _nullable(_string(100)),
            "customer_user_id": _nullable(_string(200)),
            "event_name": _string(200),
            "event_values": {
                "type": "object",
                "description": "`af_revenue` may be a number or a numeric string",
                "additionalProperties": True,
            },
            "ts": _nullable(_string(format="date-time")),
        },
    },
    "Event": {"type": "object", "additionalProperties": True},
}


def _error_response(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    out: Schema = {"description": description, "content": {JSON: {"schema": _ref("Error")}}}
    if headers:
        out["headers"] = headers
    return out


RESPONSES: dict[str, Schema] = {
    "BadRequest": _error_response("Bad input; `field` names the request field."),
    "Unauthorized": _error_response("No key, or an unknown or revoked key."),
    "Forbidden": _error_response("The key may not do this (read-only keys may only GET)."),
    "NotFound": _error_response("Unknown object."),
    "Conflict": _error_response("Conflicts with an existing object."),
    "RateLimited": _error_response(
        "Throttled (`rate_limited`); retry after the given number of seconds.",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    ),
}

PARAMETERS: dict[str, Schema] = {
    "device_q": {
        "name": "q",
        "in": "query",
        "required": True,
        "description": "the app's install id (the SDK's device_id), an advertising id (GAID, "
        "IDFA), the IDFV or the customer user id (the CleverTap ID)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "days": {
        "name": "days",
        "in": "query",
        "required": False,
        "description": "how far back launches and events are read",
        "schema": {"type": "integer", "minimum": 1, "maximum": 90, "default": 30},
    },
    "limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    },
    "cursor": {
        "name": "cursor",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "the `next` of the previous page",
    },
    "app_id": {"name": "app_id", "in": "path", "required": True, "schema": _string(160)},
    "template_id": {"name": "template_id", "in": "path", "required": True, "schema": _string(16)},
    "domain": {"name": "domain", "in": "path", "required": True, "schema": _string(255)},
    "link_id": {"name": "link_id", "in": "path", "required": True, "schema": _string(32)},
    "postback_id": {"name": "postback_id", "in": "path", "required": True, "schema": _string()},
    "size": {
        "name": "size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 64, "maximum": 4000, "default": 600},
    },
    "margin": {
        "name": "margin",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": 40, "default": 4},
    },
    "ec": {
        "name": "ec",
        "in": "query",
        "schema": {"type": "string", "enum": ["L", "M", "Q", "H"], "default": "M"},
    },
    "fg": {
        "name": "fg",
        "in": "query",
        "description": "colour of the modules, #rrggbb (`%23` in a URL) or rrggbb; darker than "
        "`bg` with a WCAG contrast of at least 3:1, else 400 naming `fg`",
        "schema": {**QR_COLOUR, "default": "#000000"},
    },
    "bg": {
        "name": "bg",
        "in": "query",
        "description": "background colour, #rrggbb or rrggbb",
        "schema": {**QR_COLOUR, "default": "#ffffff"},
    },
}

LINK_FILTERS = [
    {"name": name, "in": "query", "required": False, "schema": _string(200)}
    for name in ("campaign", "channel", "template_id", "q")
]

READ = _errors(400, 401, 429)
READ_ONE = _errors(400, 401, 404, 429)
WRITE = _errors(400, 401, 403, 429)
WRITE_ONE = _errors(400, 401, 403, 404, 409, 429)


def _op(
    summary: str, responses: dict[str, Schema], *, tags: list[str], **extra: Any
) -> dict[str, Any]:
    return {"summary": summary, "tags": tags, "responses": responses, **extra}


def _paths() -> dict[str, Any]:
    apps = ["apps"]
    tpl = ["templates"]
    integ = ["integrations"]
    links = ["links"]
    pb = ["postbacks"]
    sdk_security: list[dict[str, list[str]]] = [{"sdkKey": []}]
    sdk_errors = _errors(400, 401, 404, 429)
    qr_image = {
        "200": {
            "description": "the QR code",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        },
        **READ_ONE,
    }
    qr_svg = {
        "200": {
            "description": "the QR code",
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
        },
        **READ_ONE,
    }
    qr_params = [
        _param("link_id"),
        _param("size"),
        _param("margin"),
        _param("ec"),
        _param("fg"),
        _param("bg"),
    ]
    return {
        "/api/v1/openapi.json": {
            "get": _op(
                "This document",
                {"200": _ok({"type": "object"})},
                tags=["meta"],
                security=[],
            )
        },
        "/api/v1/apps": {
            "post": _op(
                "Register an app (answers its SDK key, once)",
                {"201": _ok(_ref("App"), "Created"), **WRITE_ONE},
                tags=apps,
                requestBody=_json_body(_ref("AppCreate")),
            ),
            "get": _op(
                "List apps",
                {"200": _ok(_ref("AppList")), **READ},
                tags=apps,
                parameters=[_param("limit"), _param("cursor")],
            ),
        },
        "/api/v1/apps/{app_id}": {
            "parameters": [_param("app_id")],
            "get": _op("Get an app", {"200": _ok(_ref("App")), **READ_ONE}, tags=apps),
            "patch": _op(
                "Change an app's settings",
                {"200": _ok(_ref("App")), **WRITE_ONE},
                tags=apps,
                requestBody=_json_body(_ref("AppPatch")),
            ),
        },
        "/api/v1/apps/{app_id}/integrations/clevertap": {
            "parameters": [_param("app_id")],
            "get": _op(
                "The CleverTap integration (secrets masked)",
                {"200": _ok(_ref("ClevertapSettings")), **READ_ONE},
                tags=integ,
            ),
            "put": _op(
                "Set the CleverTap integration",
                {"200": _ok(_ref("ClevertapSettings")), **WRITE_ONE},
                tags=integ,
                requestBody=_json_body(_ref("ClevertapSettingsInput")),
            ),
        },
        "/api/v1/apps/{app_id}/integrations/clevertap/test": {
            "parameters": [_param("app_id")],
            "post": _op(
                "Check the stored credentials against the region",
                {"200": _ok(_ref("ClevertapTestResult")), **WRITE_ONE},
                tags=integ,
            ),
        },
        "/api/v1/apps/{app_id}/integrations/clevertap/audit": {
            "parameters": [_param("app_id")],
            "get": _op(
                "Who changed the integration, when, and what (secrets never shown)",
                {"200": _ok(_ref("AuditList")), **READ_ONE},
                tags=integ,
                parameters=[_param("limit"), _param("cursor")],
            ),
        },
        "/api/v1/apps/{app_id}/devices": {
            "parameters": [_param("app_id")],
            "get": _op(
                "A test device: its clicks, launches (the match each got and why the other "
                "clicks were passed over), events and postbacks",
                {"200": _ok(_ref("DeviceReport")), **READ_ONE},
                tags=apps,
                parameters=[_param("device_q"), _param("days")],
            ),
        },
        "/api/v1/domains": {
            "post": _op(
                "Add a branded link domain (templates may use it at once, in every process)",
                {"201": _ok(_ref("Domain"), "Created"), **WRITE_ONE},
                tags=["domains"],
                requestBody=_json_body(_ref("DomainCreate")),
            ),
            "get": _op(
                "List branded domains",
                {"200": _ok(_ref("DomainList")), **READ},
                tags=["domains"],
                parameters=[_param("limit"), _param("cursor")],
            ),
        },
        "/api/v1/domains/{domain}": {
            "parameters": [_param("domain")],
            "get": _op(
                "Get a branded domain", {"200": _ok(_ref("Domain")), **READ_ONE}, tags=["domains"]
            ),
            "delete": _op(
                "Remove a branded domain (409 while a template uses it)",
                {"204": {"description": "Deleted"}, **WRITE_ONE},
                tags=["domains"],
            ),
        },
        "/api/v1/templates": {
            "post": _op(
                "Create a OneLink template",
                {"201": _ok(_ref("Template"), "Created"), **WRITE_ONE},
                tags=tpl,
                requestBody=_json_body(_ref("TemplateCreate")),
            ),
            "get": _op(
                "List templates",
                {"200": _ok(_ref("TemplateList")), **READ},
                tags=tpl,
                parameters=[_param("limit"), _param("cursor")],
            ),
        },
        "/api/v1/templates/{template_id}": {
            "parameters": [_param("template_id")],
            "get": _op("Get a template", {"200": _ok(_ref("Template")), **READ_ONE}, tags=tpl),
            "patch": _op(
                "Change a template",
                {"200": _ok(_ref("Template")), **WRITE_ONE},
                tags=tpl,
                requestBody=_json_body(_ref("TemplateSettings")),
            ),
        },
        "/api/v1/links": {
            "post": _op(
                "Create a link",
                {"201": _ok(_ref("Link"), "Created"), **WRITE_ONE},
                tags=links,
                requestBody=_json_body(_ref("LinkCreate")),
            ),
            "get": _op(
                "List links",
                {"200": _ok(_ref("LinkList")), **READ},
                tags=links,
                parameters=[_param("limit"), _param("cursor"), *LINK_FILTERS],
            ),
        },
        "/api/v1/links/bulk": {
            "post": _op(
                "Create many links: a JSON list or a CSV; per-row results",
                {
                    "200": _ok(_ref("BulkResult"), "Every row created"),
                    "207": _ok(_ref("BulkResult"), "Some rows failed (each names its error)"),
                    **WRITE,
                },
                tags=links,
                parameters=[
                    {
                        "name": "template_id",
                        "in": "query",
                        "required": False,
                        "schema": _string(16),
                        "description": "template of rows that name none",
                    }
                ],
                requestBody={
                    "required": True,
                    "content": {
                        JSON: {"schema": {"type": "array", "items": _ref("LinkCreate")}},
                        "text/csv": {
                            "schema": {
                                "type": "string",
                                "description": "one link per row; `params.*` columns",
                            }
                        },
                    },
                },
            ),
        },
        "/api/v1/links.csv": {
            "get": _op(
                "Export links as CSV",
                {
                    "200": {
                        "description": "CSV",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **READ,
                },
                tags=links,
                parameters=LINK_FILTERS,
            ),
        },
        "/api/v1/links/qr.zip": {
            "post": _op(
                "A ZIP of QR codes of links (by ids or campaign)",
                {
                    "200": {
                        "description": "ZIP",
                        "content": {
                            "application/zip": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **WRITE_ONE,
                },
                tags=links,
                requestBody=_json_body(_ref("QrZipRequest")),
            ),
        },
        "/api/v1/links/{link_id}": {
            "parameters": [_param("link_id")],
            "get": _op("Get a link", {"200": _ok(_ref("Link")), **READ_ONE}, tags=links),
            "patch": _op(
                "Change a link (short links are dynamic)",
                {"200": _ok(_ref("Link")), **WRITE_ONE},
                tags=links,
                requestBody=_json_body(_ref("LinkInput")),
            ),
            "delete": _op(
                "Delete a link",
                {"204": {"description": "Deleted"}, **WRITE_ONE},
                tags=links,
            ),
        },
        "/api/v1/links/{link_id}/qr.png": {
            "get": _op(
                "QR code (PNG) of the link, with af_qr=true",
                qr_image,
                tags=links,
                parameters=qr_params,
            ),
        },
        "/api/v1/links/{link_id}/qr.svg": {
            "get": _op(
                "QR code (SVG) of the link, with af_qr=true",
                qr_svg,
                tags=links,
                parameters=qr_params,
            ),
        },
        "/api/v1/postbacks": {
            "get": _op(
                "The postback log",
                {"200": _ok(_ref("PostbackList")), **READ},
                tags=pb,
                parameters=[
                    _param("limit"),
                    _param("cursor"),
                    {"name": "app_id", "in": "query", "schema": _string(160)},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["queued", "sending", "in_doubt", "sent", "failed", "skipped"],
                        },
                    },
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["install", "reengagement", "event"]},
                    },
                ],
            ),
        },
        "/api/v1/postbacks/{postback_id}": {
            "parameters": [_param("postback_id")],
            "get": _op("Get one postback", {"200": _ok(_ref("Postback")), **READ_ONE}, tags=pb),
        },
        "/api/v1/postbacks/{postback_id}/retry": {
            "parameters": [_param("postback_id")],
            "post": _op(
                "Queue a postback again",
                {"200": _ok(_ref("Postback")), **WRITE_ONE},
                tags=pb,
            ),
        },
        "/api/v1/stats": {
            "get": _op(
                "Clicks, installs, re-engagements, events and revenue by group",
                {"200": _ok(_ref("StatsList")), **READ},
                tags=["stats"],
                parameters=[
                    {
                        "name": "group_by",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["link", "campaign", "channel", "media_source"],
                            "default": "link",
                        },
                    },
                    {"name": "from", "in": "query", "schema": _string(format="date")},
                    {"name": "to", "in": "query", "schema": _string(format="date")},
                ],
            ),
        },
        "/api/v1/sdk/{app_id}/launches": {
            "parameters": [_param("app_id")],
            "post": _op(
                "An app launch: attribution and deferred deep link",
                {
                    "200": _ok(_ref("Launch"), "Attributed (or a retry of one)"),
                    "201": _ok(_ref("Launch"), "Attributed"),
                    **sdk_errors,
                },
                tags=["sdk"],
                security=sdk_security,
                description="Every app start (`first_launch: true` with the raw Play Install "
                "Referrer string as `install_referrer` on the first one) and every open from a "
                "Universal Link, App Link or push (`deep_link_url`). A repeated first launch of "
                "a `device_id` gets the same answer. See docs/sdk-contract.md.",
                requestBody=_json_body(_ref("LaunchRequest"), example=LAUNCH_EXAMPLE),
            ),
        },
        "/api/v1/sdk/{app_id}/events": {
            "parameters": [_param("app_id")],
            "post": _op(
                "An in-app event (stored and sent once per event_id)",
                {
                    "201": _ok(_ref("Event"), "Stored"),
                    "200": _ok(_ref("Event"), "Seen before: the same answer"),
                    **sdk_errors,
                },
                tags=["sdk"],
                security=sdk_security,
                description="Retry network errors, 429 and 5xx with the same `event_id`; a "
                "repeat answers 200 and is stored and sent to CleverTap once. See "
                "docs/sdk-contract.md.",
                requestBody=_json_body(_ref("EventRequest"), example=EVENT_EXAMPLE),
            ),
        },
    }


@cache
def build_document() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "linkgen API",
            "version": __version__,
            "description": "OneLink-style links, attribution and CleverTap postbacks. "
            'Errors are `{"error": {"code", "message", "field"}}`; lists are '
            '`{"items": [...], "next": cursor | null}`. '
            "Wiring an app (Android, iOS, the React Native / TypeScript SDK, server-to-server "
            "events, the CleverTap side): the integration guide, `docs/integrate/README.md` in "
            "the linkgen repository; every SDK call, field, answer and retry rule: "
            "`docs/sdk-contract.md`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": name}
            for name in (
                "apps",
                "integrations",
                "templates",
                "links",
                "postbacks",
                "stats",
                "sdk",
                "meta",
            )
        ],
        "paths": _paths(),
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
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "parameters": PARAMETERS,
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    """Serve the document (no API key needed)."""
    resp = jsonify(build_document())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def init_app(app: Flask) -> None:
    """Register the document's blueprint."""
    app.register_blueprint(bp)
