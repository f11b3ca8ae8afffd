"""Property-based fuzzing of the JSON API from its OpenAPI document: no input gets a 500.

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
    if method in ("get", "put", "post", "patch", "delete") and path != "/api/v1/openapi.json"
]


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
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if names and all(n in seeded.path_values for n in names):
        real = {n: seeded.path_values[n] for n in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real))
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
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        sent.append(response.status_code)

    fuzz()
    # The operation was really exercised: requests went out and some reached the handler
    # (not every one refused by authentication or routing before any generated value mattered).
    assert len(sent) >= min(MAX_EXAMPLES, 10), sent
    assert any(status not in (401, 404, 405) for status in sent), sorted(set(sent))
