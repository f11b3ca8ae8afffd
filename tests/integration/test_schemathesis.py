"""Property-based fuzzing of the JSON API from its OpenAPI document.

Checks on every answer: no 500 (`not_a_server_error`), the status is documented
(`status_code_conformance`) and the body matches the documented schema
(`response_schema_conformance`). On every request generated as valid (and every example of the
document) the API must also accept it (`positive_data_accepted` below): 2xx, or 404 / 409 (the
named object does not exist, or already does), or a 400 naming a field whose rule the document
cannot say (SEMANTIC_FIELDS: allow-lists, registered apps, reserved names).

Schemathesis generates valid and invalid requests for every documented operation and sends them
in-process (WSGI) with an admin API key. Path parameters name the seeded app, template and link
some of the time, so generated bodies reach real objects and not only 404s. Bounded by count,
not by the clock: at most MAX_EXAMPLES requests an operation and no shrinking, so every
operation runs on every machine (~1 s each; a wall-clock budget once skipped most of them in CI,
where it started counting at collection, minutes before this file ran). SQLite only: this hunts
for bugs in request handling, which do not depend on the database (the PostgreSQL parity lives
in the other integration tests).

Generation is derandomized so the suite is stable: the same examples every run. To explore
further, run with `LINKGEN_TEST_FUZZ_RANDOM=1` (fresh examples each run; a failure prints its
seed and a curl reproducer).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from linkgen.delivery.clevertap_client import CleverTapClient
from linkgen.services.accounts import create_api_key
from linkgen.storage.models import Postback
from linkgen.web.openapi import build_document
from tests.integration.sqlite_only import make_sqlite_app

MAX_EXAMPLES = 25
APP_ID = "com.example.fuzz"
TEMPLATE_ID = "Fuzz"


class Seeded:
    """The objects the fuzzer can hit, and the keys to reach them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        # The integration check must not leave the machine: CleverTap answers from a mock.
        app.extensions["linkgen"].clevertap_client = CleverTapClient(
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json={}))
        )
        with app.extensions["linkgen"].db.session() as session:
            _, self.api_key = create_api_key(session, "fuzzer")
        client = app.test_client()
        auth = {"Authorization": f"Bearer {self.api_key}"}
        made = client.post("/api/v1/apps", json={"app_id": APP_ID, "name": "Fuzz"}, headers=auth)
        assert made.status_code == 201, made.json
        self.sdk_key: str = made.json["sdk_key"]
        made = client.post(
            "/api/v1/templates",
            json={
                "template_id": TEMPLATE_ID,
                "domain": "go.example.com",
                "android_app_id": APP_ID,
                "redirect_allowlist": ["example.com"],
                "web_fallback_url": "https://example.com/",
            },
            headers=auth,
        )
        assert made.status_code == 201, made.json
        made = client.post(
            "/api/v1/links",
            json={"template_id": TEMPLATE_ID, "channel": "sms", "campaign": "fuzz"},
            headers=auth,
        )
        assert made.status_code == 201, made.json
        link_id = made.json["id"]
        made = client.post("/api/v1/domains", json={"domain": "go.fuzz.example"}, headers=auth)
        assert made.status_code == 201, made.json
        with app.extensions["linkgen"].db.session() as session:
            postback = Postback(
                linkgen_id="fuzz-postback",
                app_id=APP_ID,
                kind="install",
                source_id="fuzz-launch",
                status="failed",
                reason=None,
                record={"identity": "u1", "type": "event", "evtName": "App Install Attributed"},
                attempts=3,
                last_status=500,
            )
            session.add(postback)
            session.flush()
            postback_id = str(postback.id)
        self.path_values = {
            "app_id": APP_ID,
            "template_id": TEMPLATE_ID,
            "link_id": link_id,
            "postback_id": postback_id,
            "domain": "go.fuzz.example",
        }


FUZZ_RANDOM = os.environ.get("LINKGEN_TEST_FUZZ_RANDOM", "") in ("1", "true", "yes")
OPERATIONS = [
    (path, method)
    for path, item in build_document()["paths"].items()
    for method in item
    if method in ("get", "put", "post", "patch", "delete") and item[method]["tags"] != ["meta"]
]

# Fields whose rules are more than a schema can say: a 400 naming one of them is not a
# disagreement between the document and the code. Everything else valid must be accepted.
SEMANTIC_FIELDS: dict[str, str] = {
    "domain": "must be a link domain (LINKGEN_LINK_DOMAINS or a branded domain)",
    "ios_app_id": "must be a registered iOS app",
    "android_app_id": "must be a registered Android app",
    "template_id": "template ids that collide with UI or API paths are refused",
    "uri_scheme": "web schemes (http, javascript, ...) are refused",
    "redirect_allowlist": "public suffixes are refused",
    "media_source": "self-reporting network names and the _int suffix are refused",
    "campaign": "the link's URL must stay within 2000 characters",
    "params": "OneLink parameter rules (redirects allow-listed, windows, lengths)",
    "ttl": "1 minute to 365 days",
    "fg": "QR colours: darker than the background, WCAG contrast at least 3:1",
    "shortlink_id": "must be free on the template; on PATCH, the link's own value",
    "short": "on PATCH, the link's own value (a sent link must not change)",
    "ts": "at most 5 minutes ahead, at most 366 days back",
    "ip": "an IPv4 or IPv6 address",
    "os": "must be the app's own platform",
    "device_id": "an event needs device_id or customer_user_id",
    "event_values": "af_revenue numeric, af_currency ISO 4217",
    "ids": "ids or campaign, not both",
    "cursor": "a cursor this API issued",
    "from": "from must not be after to",
    "to": "from must not be after to",
    "restricted_media_sources": "each media source once (a schema's uniqueItems compares whole "
    "items, not names)",
    "install_event_name": "CleverTap system event names are refused",
    "reengagement_event_name": "CleverTap system event names are refused",
    "csv": "a CSV body's header must name LinkCreate fields (the document says string)",
    # GET /stats/breakdowns names the second of campaign / channel / media_source it was sent
    # (media_source is above already).
    "channel": "a breakdown is narrowed to one of campaign, channel, media_source",
}


def _semantic(field: str | None) -> bool:
    if field is None:
        return False
    head = field.split(".", 1)[0].split("[", 1)[0]
    return head in SEMANTIC_FIELDS or any(
        part.split("[", 1)[0] in ("partner_event", "sdk_event") for part in field.split(".")
    )


def _has_unprintable(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip().isprintable()
    if isinstance(value, dict):
        return any(_has_unprintable(v) for v in value.values())
    return False


def positive_data_accepted(case: Any, response: Any) -> None:
    """A request the document calls valid is not refused for its shape."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    status = response.status_code
    if 200 <= status < 300 or status in (404, 409):
        return
    field = None
    if status == 400:
        try:
            field = response.json()["error"].get("field")
        except (ValueError, KeyError, TypeError, AttributeError):
            field = None
        if _semantic(field):
            return
        # str.isprintable() (the SDK's rule, stated in the document's descriptions) is more
        # than a pattern can say: a Unicode format or unassigned character passes the pattern.
        if "control characters" in response.text and _has_unprintable(case.body):
            return
    raise AssertionError(
        f"valid data refused: {case.method} {case.formatted_path} -> {status} {response.text[:300]}"
        f"\nbody: {case.body!r}\nquery: {case.query!r}"
    )


@pytest.fixture
def seeded(sqlite_template: Path, tmp_path: Path) -> Iterator[Seeded]:
    app = make_sqlite_app(sqlite_template, tmp_path)
    seeded = Seeded(app)
    yield seeded
    app.extensions["linkgen"].clevertap_client.close()
    app.extensions["linkgen"].close()


@pytest.mark.parametrize(
    ("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS]
)
def test_no_input_gets_a_server_error(path: str, method: str, seeded: Seeded) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", seeded.app)
    operation = schema[path][method]
    names = re.findall(r"\{([^}]+)\}", path)
    strategies = []
    if names and all(n in seeded.path_values for n in names):
        # The seeded objects first: one_of leans to its first branches in a short run, and the
        # answers of real objects are what the response schemas are checked on.
        real = {n: seeded.path_values[n] for n in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real))
    strategies.append(operation.as_strategy(GenerationMode.POSITIVE))
    strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    headers = {"Authorization": f"Bearer {seeded.api_key}", "X-SDK-Key": seeded.sdk_key}
    sent: list[int] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not FUZZ_RANDOM,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def fuzz(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(
            response,
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        )
        positive_data_accepted(case, response)
        sent.append(response.status_code)

    fuzz()
    # The operation was really exercised: requests went out and some reached the handler
    # (not every one refused by authentication or routing before any generated value mattered).
    assert len(sent) >= min(MAX_EXAMPLES, 10), sent
    assert any(status not in (401, 404, 405) for status in sent), sorted(set(sent))
