"""The document's limits are the code's: each boundary value through the real endpoint.

Requests are validated by the domain's readers, and the OpenAPI document comes from the models
in linkgen/web/apimodels.py. For every request field with a limit in the served document
(maxLength, minLength, minimum, maximum, maxItems), the value at the limit must not be refused
for that field and the value one past it must be, with a 400 naming the field. A limit added
to the document without a row here fails `test_every_limit_in_the_document_is_exercised`.
Runs on SQLite and PostgreSQL (a column narrower than the validator would show there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from linkgen.web.apimodels import REQUEST_MODELS
from linkgen.web.openapi import build_document
from tests.conftest import Api

APP_ID = "com.example.bounds"
TEMPLATE_ID = "Bnds"


def _package(n: int) -> str:
    return ("a." + "b" * n)[:n]


def _https(n: int) -> str:
    base = "https://example.com/"
    return base + "p" * (n - len(base))


def _word(n: int) -> str:
    return "w" * n


def _scheme(n: int) -> str:
    return "s" * (n - 3) + "://"


def _upper(n: int) -> str:
    return "A" * n


def _mappings(n: int) -> list[dict[str, str]]:
    return [
        {
            "sdk_event": f"e{i}",
            "partner_event": f"P{i}",
            "sending_option": "all_sources",
            "send_revenue": "none",
        }
        for i in range(n)
    ]


def _restricted(n: int) -> list[dict[str, str]]:
    return [{"media_source": f"src{i}", "policy": "drop"} for i in range(n)]


def _tags(n: int) -> list[str]:
    return [f"tag{i}" for i in range(n)]


def _event_values(n: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(n)}


@dataclass(frozen=True)
class Case:
    """One limited field: where it is sent and how a value of a given size is made."""

    schema: str  # the component schema that documents it
    path: str  # dotted field path in the schema (`in_app_events.postback_window_days`)
    method: str
    url: str
    base: dict[str, Any]
    make: Callable[[int], Any]  # size -> value (strings: length; ints: the value itself)

    def body(self, value: Any) -> dict[str, Any]:
        out = {**self.base}
        keys = self.path.split(".")
        target = out
        for key in keys[:-1]:
            target[key] = {**target.get(key, {})}
            target = target[key]
        target[keys[-1]] = value
        return out


def _int(n: int) -> int:
    return n


NEW_APP = {"app_id": "com.example.other", "name": "Other"}
LAUNCH = {"device_id": "dev-1"}
EVENT = {"event_id": "ev-1", "event_name": "af_purchase", "device_id": "dev-1"}
LINK = {"template_id": TEMPLATE_ID, "channel": "email"}
APPS = "/api/v1/apps"
APP = f"/api/v1/apps/{APP_ID}"
CT = f"/api/v1/apps/{APP_ID}/integrations/clevertap"
SDK = f"/api/v1/sdk/{APP_ID}"

CASES = [
    Case("AppCreate", "app_id", "POST", APPS, {"name": "x"}, _package),
    Case("AppCreate", "name", "POST", APPS, NEW_APP, _word),
    Case("AppCreate", "bundle_id", "POST", APPS, NEW_APP, _package),
    Case("AppCreate", "team_id", "POST", APPS, NEW_APP, _upper),
    Case("AppCreate", "store_url", "POST", APPS, NEW_APP, _https),
    Case("AppCreate", "reattribution_window_days", "POST", APPS, NEW_APP, _int),
    Case("AppPatch", "name", "PATCH", APP, {}, _word),
    Case("AppPatch", "bundle_id", "PATCH", APP, {}, _package),
    Case("AppPatch", "team_id", "PATCH", APP, {}, _upper),
    Case("AppPatch", "store_url", "PATCH", APP, {}, _https),
    Case("AppPatch", "reattribution_window_days", "PATCH", APP, {}, _int),
    Case("TemplatePatch", "uri_scheme", "PATCH", f"/api/v1/templates/{TEMPLATE_ID}", {}, _scheme),
    Case(
        "TemplatePatch", "web_fallback_url", "PATCH", f"/api/v1/templates/{TEMPLATE_ID}", {}, _https
    ),
    Case("TemplatePatch", "not_found_url", "PATCH", f"/api/v1/templates/{TEMPLATE_ID}", {}, _https),
    Case(
        "TemplateCreate",
        "uri_scheme",
        "POST",
        "/api/v1/templates",
        {"domain": "go.example.com"},
        _scheme,
    ),
    Case(
        "TemplateCreate",
        "web_fallback_url",
        "POST",
        "/api/v1/templates",
        {"domain": "go.example.com"},
        _https,
    ),
    Case(
        "TemplateCreate",
        "not_found_url",
        "POST",
        "/api/v1/templates",
        {"domain": "go.example.com"},
        _https,
    ),
    Case("ClevertapSettingsInput", "account_id", "PUT", CT, {}, _upper),
    Case("ClevertapSettingsInput", "account_passcode", "PUT", CT, {}, _upper),
    Case("ClevertapSettingsInput", "account_token", "PUT", CT, {}, _upper),
    Case("ClevertapSettingsInput", "region", "PUT", CT, {}, _upper),
    Case("ClevertapSettingsInput", "install_event_name", "PUT", CT, {}, _word),
    Case("ClevertapSettingsInput", "reengagement_event_name", "PUT", CT, {}, _word),
    Case("ClevertapSettingsInput", "in_app_events.postback_window_days", "PUT", CT, {}, _int),
    Case("ClevertapSettingsInput", "in_app_events.mappings", "PUT", CT, {}, _mappings),
    Case("ClevertapSettingsInput", "restricted_media_sources", "PUT", CT, {}, _restricted),
    Case("LinkCreate", "campaign", "POST", "/api/v1/links", LINK, _word),
    Case("LinkCreate", "media_source", "POST", "/api/v1/links", LINK, _word),
    Case("LinkCreate", "shortlink_id", "POST", "/api/v1/links", LINK, _word),
    Case("LinkCreate", "title", "POST", "/api/v1/links", LINK, _word),
    Case("LinkCreate", "tags", "POST", "/api/v1/links", LINK, _tags),
    Case("LinkCreate", "notes", "POST", "/api/v1/links", LINK, _word),
    Case("LaunchRequest", "device_id", "POST", f"{SDK}/launches", {}, _word),
    Case("LaunchRequest", "customer_user_id", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "install_referrer", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "deep_link_url", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "idfa", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "idfv", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "gaid", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "user_agent", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "app_version", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("LaunchRequest", "sdk", "POST", f"{SDK}/launches", LAUNCH, _word),
    Case("EventRequest", "event_id", "POST", f"{SDK}/events", EVENT, _word),
    Case("EventRequest", "event_name", "POST", f"{SDK}/events", EVENT, _word),
    Case("EventRequest", "device_id", "POST", f"{SDK}/events", EVENT, _word),
    Case("EventRequest", "customer_user_id", "POST", f"{SDK}/events", EVENT, _word),
    Case("EventRequest", "event_values", "POST", f"{SDK}/events", EVENT, _event_values),
]

# Limits a boundary pair cannot show, each with its reason.
NOT_EXERCISED = {
    # The value must name a configured link domain; no 255-character domain is one.
    ("TemplateCreate", "domain"),
    ("TemplatePatch", "domain"),
    ("DomainCreate", "domain"),  # a host name's own limit (253) comes first
    # Template ids are exactly 4 characters (min = max); the pattern refuses others.
    ("TemplateCreate", "template_id"),
    ("LinkCreate", "template_id"),
    # Apps named by a template must be registered: existence is checked before length.
    ("TemplateCreate", "ios_app_id"),
    ("TemplateCreate", "android_app_id"),
    ("TemplatePatch", "ios_app_id"),
    ("TemplatePatch", "android_app_id"),
    # Windows: the pattern lists every allowed value (1h..23h, 1d..30d); tested in unit tests.
    ("AppCreate", "click_lookback"),
    ("AppCreate", "reengagement_window"),
    ("AppPatch", "click_lookback"),
    ("AppPatch", "reengagement_window"),
    # The same limits as LinkCreate (one LinkFields model).
    ("LinkPatch", "campaign"),
    ("LinkPatch", "media_source"),
    ("LinkPatch", "shortlink_id"),
    ("LinkPatch", "title"),
    ("LinkPatch", "tags"),
    ("LinkPatch", "notes"),
    # Nested items: the limit of the field in each item, exercised through the list above.
    ("EventMapping", "sdk_event"),
    ("EventMapping", "partner_event"),
    ("RestrictedSource", "media_source"),
    ("InAppEvents", "postback_window_days"),
    ("InAppEvents", "mappings"),
    # Enumerated or pattern-bound values: the pattern is stricter than the length.
    ("LaunchRequest", "ts"),
    ("LaunchRequest", "os_version"),
    ("EventRequest", "ts"),
    ("QrZipRequest", "campaign"),
    ("QrZipRequest", "ids"),
    ("QrZipRequest", "size"),
    ("QrZipRequest", "margin"),
}

LIMIT_KEYS = (
    "maxLength",
    "minLength",
    "minimum",
    "maximum",
    "maxItems",
    "minItems",
    "maxProperties",
)


def _prop(schema_name: str, path: str) -> dict[str, Any]:
    schemas = build_document()["components"]["schemas"]
    schema = schemas[schema_name]
    for key in path.split("."):
        prop = schema["properties"][key]
        ref = next((s["$ref"] for s in [prop, *prop.get("anyOf", [])] if "$ref" in s), None)
        schema = schemas[ref.rsplit("/", 1)[-1]] if ref else prop
    # The non-null alternative of an optional field carries the limits.
    for sub in [prop, *prop.get("anyOf", [])]:
        if any(k in sub for k in LIMIT_KEYS):
            return dict(sub)
    return dict(prop)


def _limited_fields() -> set[tuple[str, str]]:
    schemas = build_document()["components"]["schemas"]
    request_schemas = {model.__name__ for model in REQUEST_MODELS}
    request_schemas |= {"EventMapping", "InAppEvents", "RestrictedSource"}
    out = set()
    for name in request_schemas:
        for field, prop in schemas[name].get("properties", {}).items():
            if any(k in sub for sub in [prop, *prop.get("anyOf", [])] for k in LIMIT_KEYS):
                out.add((name, field))
    return out


def test_every_limit_in_the_document_is_exercised() -> None:
    covered = {(c.schema, c.path.split(".")[0]) for c in CASES} | NOT_EXERCISED
    missing = sorted(_limited_fields() - covered)
    assert missing == [], f"request fields with limits but no boundary case: {missing}"


def _seed(api: Api) -> dict[str, str]:
    made = api.post(APPS, {"app_id": APP_ID, "name": "Bounds"})
    assert made.status_code == 201, made.get_json()
    made_tpl = api.post(
        "/api/v1/templates",
        {"template_id": TEMPLATE_ID, "domain": "go.example.com", "android_app_id": APP_ID},
    )
    assert made_tpl.status_code == 201, made_tpl.get_json()
    return {"X-SDK-Key": made.get_json()["sdk_key"]}


def _send(api: Api, case: Case, value: Any, headers: dict[str, str]) -> Any:
    return api._call(case.method, case.url, json=case.body(value), headers=headers)


def _refused_for(resp: Any, case: Case) -> bool:
    if resp.status_code != 400:
        return False
    field = resp.get_json()["error"].get("field") or ""
    return bool(field == case.path or field.startswith(case.path + "["))


def _boundaries(prop: dict[str, Any]) -> list[tuple[int, bool]]:
    """(size, accepted?) pairs from the document's limits."""
    pairs: list[tuple[int, bool]] = []
    if "maxLength" in prop:
        pairs += [(prop["maxLength"], True), (prop["maxLength"] + 1, False)]
    if "minLength" in prop and prop["minLength"] > 1:
        pairs += [(prop["minLength"], True), (prop["minLength"] - 1, False)]
    if "maximum" in prop:
        pairs += [(prop["maximum"], True), (prop["maximum"] + 1, False)]
    if "minimum" in prop:
        pairs += [(prop["minimum"], True), (prop["minimum"] - 1, False)]
    if "maxItems" in prop:
        pairs += [(prop["maxItems"], True), (prop["maxItems"] + 1, False)]
    if "maxProperties" in prop:
        pairs += [(prop["maxProperties"], True), (prop["maxProperties"] + 1, False)]
    return pairs


def test_document_limits_are_the_code_limits(api: Api) -> None:
    headers = _seed(api)
    disagreements = []
    checked = 0
    for case in CASES:
        prop = _prop(case.schema, case.path)
        pairs = _boundaries(prop)
        assert pairs, (case.schema, case.path, prop)
        for size, accepted in pairs:
            resp = _send(api, case, case.make(size), headers)
            assert resp.status_code < 500, (case, size, resp.get_data(as_text=True))
            refused = _refused_for(resp, case)
            checked += 1
            if refused == accepted:
                disagreements.append(
                    f"{case.schema}.{case.path} size {size}: document says "
                    f"{'accepted' if accepted else 'refused'}, the code answered "
                    f"{resp.status_code} {resp.get_data(as_text=True)[:200]}"
                )
    assert disagreements == [], "\n".join(disagreements)
    assert checked >= 2 * len(CASES)


@pytest.mark.parametrize(
    ("schema", "path", "constant"),
    [
        ("AppCreate", "team_id", "TEAM_ID_CHARS"),
        ("AppCreate", "reattribution_window_days", "MAX_REATTRIBUTION_WINDOW_DAYS"),
        ("TemplateCreate", "uri_scheme", "MAX_URI_SCHEME_CHARS"),
    ],
)
def test_the_drifted_limits_now_come_from_the_domain(schema: str, path: str, constant: str) -> None:
    """The three limits issue 15 found drifted (team_id 20, window from 0, uri_scheme 100)."""
    from linkgen.domain import apps, templates

    value = getattr(apps, constant, None) or getattr(templates, constant)
    prop = _prop(schema, path)
    assert value in (prop.get("maxLength"), prop.get("maximum"))
    if path == "reattribution_window_days":
        assert prop["minimum"] == apps.MIN_REATTRIBUTION_WINDOW_DAYS == 1


def test_a_whole_float_is_an_integer_as_the_document_says(api: Api) -> None:
    """Schemathesis' positive-data check found `reattribution_window_days: 399.0` refused while
    the document's `type: integer` (JSON Schema) accepts it; JSON has one number type."""
    made = api.post(APPS, {**NEW_APP, "reattribution_window_days": 399.0})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["reattribution_window_days"] == 399
    refused = api.patch(f"{APPS}/{NEW_APP['app_id']}", {"reattribution_window_days": 399.5})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["field"] == "reattribution_window_days"


def test_qr_zip_takes_whole_float_sizes(api: Api) -> None:
    """Found by the positive-data check: `margin: 32.0` (an integer to JSON Schema) was refused."""
    _seed(api)
    link = api.post("/api/v1/links", {**LINK, "campaign": "zip"})
    assert link.status_code == 201, link.get_json()
    resp = api.post(
        "/api/v1/links/qr.zip", {"ids": [link.get_json()["id"]], "margin": 2.0, "size": 128.0}
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/zip"
    half = api.post("/api/v1/links/qr.zip", {"ids": [link.get_json()["id"]], "margin": 2.5})
    assert half.status_code == 400
    assert half.get_json()["error"]["field"] == "margin"
