"""CleverTapClient against httpx.MockTransport: headers, classification, unprocessed mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from linkgen.delivery.clevertap_client import CleverTapClient, RecordFailure, UploadResult

ENDPOINT = "https://in1.api.clevertap.com/1/upload"
CONNECT = "https://in1.api.clevertap.com/v1/connect?partner=linkgen"
ACCOUNT = "W6K-556-4K6Z"
PASSCODE = "WVE-SMB-CXUL-SECRET"

Handler = Callable[[httpx.Request], httpx.Response]


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "event",
            "objectId": f"user-{i}",
            "ts": 1_700_000_000 + i,
            "evtName": "App Install Attributed",
            "evtData": {"linkgen_id": f"lg-{i}"},
        }
        for i in range(n)
    ]


def _client(handler: Handler) -> CleverTapClient:
    return CleverTapClient(timeout=2.0, transport=httpx.MockTransport(handler))


def _upload(handler: Handler, records: list[dict[str, Any]] | None = None) -> UploadResult:
    with _client(handler) as client:
        return client.upload(ENDPOINT, ACCOUNT, PASSCODE, records or _records(3))


def test_upload_sends_headers_and_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "processed": 3, "unprocessed": []})

    result = _upload(handler)
    assert result.outcome == "ok"
    assert result.ok
    assert result.processed == 3
    assert result.failed == {}
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == ENDPOINT
    assert request.headers["X-CleverTap-Account-Id"] == ACCOUNT
    assert request.headers["X-CleverTap-Passcode"] == PASSCODE
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"d": _records(3)}


def test_unprocessed_records_are_mapped_back_by_linkgen_id() -> None:
    records = _records(4)

    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["d"]
        return httpx.Response(
            200,
            json={
                "status": "success",
                "processed": 2,
                "unprocessed": [
                    {"status": "fail", "code": 523, "error": "Identity not set", "record": sent[2]},
                    {"status": "fail", "code": 525, "error": "Bad ts", "record": sent[0]},
                    {"status": "fail", "code": 509, "error": "?", "record": {"x": 1}},
                ],
            },
        )

    result = _upload(handler, records)
    assert result.outcome == "ok"
    assert result.failed == {
        2: RecordFailure(523, "Identity not set"),
        0: RecordFailure(525, "Bad ts"),
    }
    assert len(result.unmatched) == 1
    assert "3 of 4" in result.message


def test_unprocessed_without_linkgen_id_matches_by_equality() -> None:
    records = [{"type": "event", "objectId": "u", "ts": 1, "evtName": "x", "evtData": {}}]

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"status": "success", "processed": 0}
        body["unprocessed"] = [{"code": 523, "error": "e", "record": records[0]}]
        return httpx.Response(200, json=body)

    assert set(_upload(handler, records).failed) == {0}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (401, "reject"),
        (400, "reject"),
        (403, "reject"),
        (404, "reject"),
        (302, "reject"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "unknown"),
    ],
)
def test_status_classification(status: int, outcome: str) -> None:
    result = _upload(lambda request: httpx.Response(status, json={"status": "fail"}))
    assert result.outcome == outcome
    assert result.status == status


def test_200_with_failure_status_is_a_reject() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "fail", "error": "Account suspended"})

    result = _upload(handler)
    assert result.outcome == "reject"
    assert "Account suspended" in result.message


def test_401_message_mentions_region() -> None:
    result = _upload(lambda request: httpx.Response(401, json={"status": "fail"}))
    assert "region" in result.message


def _raiser(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        # Nothing can have reached CleverTap: a plain retry.
        (httpx.ConnectTimeout("timed out"), "retry"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "retry"),
        (httpx.PoolTimeout("no connection free"), "retry"),
        # The request went out and no answer came back: CleverTap may have stored it.
        (httpx.ReadTimeout("timed out"), "unknown"),
        (httpx.RemoteProtocolError("peer closed connection"), "unknown"),
        (httpx.ReadError("connection reset"), "unknown"),
    ],
)
def test_transport_errors_are_retried_or_in_doubt(exc: Exception, outcome: str) -> None:
    result = _upload(_raiser(exc))
    assert result.outcome == outcome
    assert result.status is None


def test_passcode_never_appears_in_results_or_repr() -> None:
    leaky = httpx.LocalProtocolError(f"Illegal header value {PASSCODE!r}")
    result = _upload(_raiser(leaky))
    assert PASSCODE not in result.message
    assert PASSCODE not in repr(result)
    with _client(_raiser(leaky)) as client:
        assert PASSCODE not in repr(client)
        assert PASSCODE not in repr(vars(client))


def test_passcode_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    _upload(_raiser(httpx.ConnectError(f"refused {PASSCODE}")))
    _upload(_raiser(httpx.ReadTimeout("slow")))
    assert PASSCODE not in caplog.text


def test_more_than_1000_records_is_a_value_error_without_secrets() -> None:
    with _client(lambda r: httpx.Response(200)) as client, pytest.raises(ValueError) as info:
        client.upload(ENDPOINT, ACCOUNT, PASSCODE, _records(1001))
    assert PASSCODE not in str(info.value)


def test_exactly_1000_records_is_allowed() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(len(json.loads(request.content)["d"]))
        return httpx.Response(200, json={"status": "success", "processed": 1000})

    assert _upload(handler, _records(1000)).outcome == "ok"
    assert calls == [1000]


@pytest.mark.parametrize(
    ("account", "passcode"), [(None, PASSCODE), (ACCOUNT, None), ("", ""), (ACCOUNT, "a b")]
)
def test_missing_credentials_reject_without_calling(
    account: str | None, passcode: str | None
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    with _client(handler) as client:
        result = client.upload(ENDPOINT, account, passcode, _records(1))
    assert result.outcome == "reject"
    assert calls == []


def test_check_credentials_ok() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success"})

    with _client(handler) as client:
        ok, status, message = client.check_credentials(CONNECT, ACCOUNT, PASSCODE)
    assert (ok, status) == (True, 200)
    assert message
    [request] = seen
    assert request.method == "GET"
    assert request.url.params["partner"] == "linkgen"
    assert request.headers["X-CleverTap-Passcode"] == PASSCODE


@pytest.mark.parametrize(
    ("handler", "status", "fragment"),
    [
        (lambda r: httpx.Response(401), 401, "region"),
        (lambda r: httpx.Response(429), 429, "busy"),
        (lambda r: httpx.Response(503), 503, "server error"),
        (lambda r: httpx.Response(418), 418, "unexpected"),
        (_raiser(httpx.ConnectError("refused")), None, "Could not connect"),
        (_raiser(httpx.ReadTimeout("slow")), None, "did not answer"),
    ],
)
def test_check_credentials_failures(handler: Handler, status: int | None, fragment: str) -> None:
    with _client(handler) as client:
        ok, got_status, message = client.check_credentials(CONNECT, ACCOUNT, PASSCODE)
    assert ok is False
    assert got_status == status
    assert fragment in message
    assert PASSCODE not in message


@pytest.mark.parametrize(("account", "passcode"), [(None, PASSCODE), (ACCOUNT, ""), (None, None)])
def test_check_credentials_needs_both_without_calling(
    account: str | None, passcode: str | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not call CleverTap")

    with _client(handler) as client:
        ok, status, message = client.check_credentials(CONNECT, account, passcode)
    assert (ok, status) == (False, None)
    assert "both" in message
