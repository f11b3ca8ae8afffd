"""The SDK conformance suite (sdk/conformance/*.json) against the server, through the Flask test
client, on SQLite and PostgreSQL. The TypeScript SDK's node tests run the same files against a
live `linkgen serve`; sdk/conformance/README.md defines the format."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from tests.conftest import Api

CONFORMANCE = Path(__file__).resolve().parents[2] / "sdk" / "conformance"
APP_ID, TEMPLATE, HOST = "com.example.shop", "Conf", "go.example.com"
USER_AGENTS = {
    "android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.6422.113 Mobile Safari/537.36"
    ),
    "ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
    ),
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _cases() -> list[Any]:
    out = []
    for path in sorted(CONFORMANCE.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            out.append(pytest.param(case, id=f"{path.stem}:{case['name']}"))
    return out


def substitute(value: Any, names: Mapping[str, Any]) -> Any:
    """Fill `{name}` placeholders in every string (a string that is one placeholder whole
    becomes the value itself)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in names:
            return names[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(names.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


def at_path(body: Any, path: str) -> Any:
    """The value at a dotted path; KeyError when it is not there."""
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            raise KeyError(path)
        body = body[part]
    return body


def check(expect: Mapping[str, Any], status: int, body: Any, bodies: list[Any]) -> None:
    """Compare one answer with its expectation."""
    assert status == expect["status"], (status, body)
    for path, want in expect.get("fields", {}).items():
        assert at_path(body, path) == want, (path, body)
    for path, kind in expect.get("types", {}).items():
        got = at_path(body, path)
        if kind == "null":
            assert got is None, (path, body)
        else:
            ok = isinstance(got, _TYPES[kind]) and not (kind == "number" and isinstance(got, bool))
            assert ok, (path, kind, body)
    if "same_body_as_step" in expect:
        assert body == bodies[expect["same_body_as_step"]], body


def saved_from_location(location: str, save: Mapping[str, str]) -> dict[str, str]:
    """`save` names read from a redirect: `referrer` and `referrer.X` (see the README)."""
    referrer = (parse_qs(urlsplit(location).query).get("referrer") or [""])[0]
    inner = {k: v[0] for k, v in parse_qs(referrer).items()}
    out = {}
    for name, source in save.items():
        if source == "referrer":
            out[name] = referrer
        else:
            assert source.startswith("referrer."), source
            out[name] = inner[source.removeprefix("referrer.")]
    return out


@pytest.fixture
def conformance_app(api: Api) -> dict[str, str]:
    """The app and template every case expects (sdk/conformance/README.md)."""
    resp = api.post(
        "/api/v1/apps", {"app_id": APP_ID, "name": "Shop", "probabilistic_matching": False}
    )
    assert resp.status_code == 201, resp.get_json()
    template = {
        "template_id": TEMPLATE,
        "domain": HOST,
        "android_app_id": APP_ID,
        "web_fallback_url": "https://www.example.com/",
        "redirect_allowlist": ["example.com"],
    }
    assert api.post("/api/v1/templates", template).status_code == 201
    return {
        "app_id": APP_ID,
        "sdk_key": resp.get_json()["sdk_key"],
        "template_id": TEMPLATE,
        "link_base": f"https://{HOST}",
    }


@pytest.mark.parametrize("case", _cases())
def test_conformance_case(
    case: dict[str, Any], client: FlaskClient, conformance_app: dict[str, str]
) -> None:
    names: dict[str, Any] = {**conformance_app, "uid": secrets.token_hex(6)}
    bodies: list[Any] = []
    for step in case["steps"]:
        if step.get("wait_seconds"):
            time.sleep(step["wait_seconds"])
        names["now"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        expect = substitute(step["expect"], names)
        if "click" in step:
            click = substitute(step["click"], names)
            resp = client.get(
                click["path"],
                base_url=names["link_base"],
                headers={"User-Agent": USER_AGENTS[click["user_agent"]]},
            )
            check(expect, resp.status_code, None, bodies)
            names.update(saved_from_location(resp.headers["Location"], step.get("save", {})))
            bodies.append(None)
            continue
        request = substitute(step["request"], names)
        resp = client.open(
            request["path"],
            method=request["method"],
            headers=request.get("headers", {}),
            data=json.dumps(request["body"]),
            content_type="application/json",
        )
        body = resp.get_json(silent=True)
        check(expect, resp.status_code, body, bodies)
        bodies.append(body)


def test_every_case_file_is_collected() -> None:
    """A conformance file that no case comes from would be a suite that silently shrank."""
    files = sorted(p.stem for p in CONFORMANCE.glob("*.json"))
    assert files == ["clicks", "events", "launches"]
    assert len(_cases()) >= 20
