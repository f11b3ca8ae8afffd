"""CleverTapClient against httpx.MockTransport: headers, classification, unprocessed mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest

from linkgen.delivery.clevertap_client import (
    CleverTapClient,
    EventsLookup,
    RecordFailure,
    UploadResult,
    events_endpoint,
    ymd,
)

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
    return CleverTapClient(
        timeout=2.0, transport=httpx.MockTransport(handler), events_retry_pause=0.001
    )


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


# --- Get Events API --------------------------------------------------------------------------

EVENTS = "https://in1.api.clevertap.com/1/events.json"


def _events_pages(pages: list[list[str]]) -> tuple[Handler, list[httpx.Request]]:
    """A Get Events API answering `pages` of linkgen ids, cursor by cursor."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(200, json={"status": "success", "cursor": "c0"})
        index = int(request.url.params["cursor"][1:])
        body: dict[str, Any] = {
            "status": "success",
            "records": [
                {
                    "profile": {"objectId": "u"},
                    "ts": 20231114221320,
                    "event_props": {"linkgen_id": i},
                }
                for i in pages[index]
            ]
            + [{"event_props": {"Amount": 1}}, "junk", {"event_props": None}],
        }
        if index + 1 < len(pages):
            body["next_cursor"] = f"c{index + 1}"
        return httpx.Response(200, json=body)

    return handler, seen


def _lookup(handler: Handler, wanted: set[str], **kwargs: Any) -> EventsLookup:
    with _client(handler) as client:
        return client.find_linkgen_ids(
            EVENTS,
            ACCOUNT,
            PASSCODE,
            event_name="Charged",
            first_day=date(2023, 11, 13),
            last_day=date(2023, 11, 15),
            wanted=wanted,
            **kwargs,
        )


def test_events_lookup_pages_through_the_cursor() -> None:
    handler, seen = _events_pages([["a", "b"], ["c"], ["d"]])
    result = _lookup(handler, {"b", "d", "z"}, batch_size=2)
    assert result.ok and result.found == {"b", "d"} and result.pages == 3
    opening = seen[0]
    assert opening.method == "POST" and opening.url.path == "/1/events.json"
    assert dict(opening.url.params) == {"batch_size": "2", "events": "false", "profile": "false"}
    assert json.loads(opening.content) == {
        "event_name": "Charged",
        "from": 20231113,
        "to": 20231115,
    }
    assert opening.headers["X-CleverTap-Account-Id"] == ACCOUNT
    assert opening.headers["X-CleverTap-Passcode"] == PASSCODE
    assert [r.url.params.get("cursor") for r in seen[1:]] == ["c0", "c1", "c2"]
    assert all(r.method == "GET" and r.headers["X-CleverTap-Passcode"] for r in seen[1:])


def test_events_lookup_stops_once_everything_wanted_was_seen() -> None:
    handler, seen = _events_pages([["a"], ["b"], ["c"]])
    result = _lookup(handler, {"a", "b"})
    assert result.ok and result.found == {"a", "b"} and result.pages == 2
    assert len(seen) == 3


def test_events_lookup_without_a_cursor_found_nothing() -> None:
    result = _lookup(lambda r: httpx.Response(200, json={"status": "success"}), {"a"})
    assert result.ok and result.found == frozenset() and result.pages == 0


def test_events_lookup_gives_up_after_max_pages() -> None:
    handler, _ = _events_pages([["x"]] * 10)
    result = _lookup(handler, {"a"}, max_pages=3)
    assert not result.ok and result.pages == 3 and "more than 3 pages" in result.message


@pytest.mark.parametrize(
    ("fail_on", "response", "text"),
    [
        ("POST", httpx.Response(401, json={"status": "fail", "error": "Invalid"}), "401"),
        ("POST", httpx.Response(429, json={"status": "fail"}), "busy"),
        ("GET", httpx.Response(500, text="oops"), "500"),
        ("GET", httpx.Response(200, json={"status": "fail", "error": "bad cursor"}), "bad cursor"),
        ("GET", httpx.Response(200, text="not json"), "did not answer with success"),
    ],
)
def test_events_lookup_failures_are_not_read_as_absence(
    fail_on: str, response: httpx.Response, text: str
) -> None:
    ok_handler, _ = _events_pages([["a"], ["b"]])

    def handler(request: httpx.Request) -> httpx.Response:
        return response if request.method == fail_on else ok_handler(request)

    result = _lookup(handler, {"b"})
    assert not result.ok and text in result.message
    assert result.found == frozenset()


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectError(f"refused {PASSCODE}")]
)
def test_events_lookup_transport_errors_keep_the_passcode_out(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    result = _lookup(_raiser(exc), {"a"})
    assert not result.ok and result.status is None
    assert PASSCODE not in result.message + repr(result) + caplog.text


def test_events_lookup_tries_a_busy_request_again_but_not_a_refused_one() -> None:
    ok_handler, seen = _events_pages([["a"], ["b"]])
    answers = iter([httpx.Response(503), httpx.Response(429)])

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.params["cursor"] == "c1":
            response = next(answers, None)
            if response is not None:
                seen.append(request)
                return response
        return ok_handler(request)

    result = _lookup(flaky, {"b"})
    assert result.ok and result.found == {"b"}
    assert [r.url.params.get("cursor") for r in seen] == [None, "c0", "c1", "c1", "c1"]

    refused: list[httpx.Request] = []

    def refusing(request: httpx.Request) -> httpx.Response:
        refused.append(request)
        return httpx.Response(401, json={"status": "fail"})

    assert not _lookup(refusing, {"a"}).ok
    assert len(refused) == 1  # wrong credentials stay wrong: asked once

    always: list[httpx.Request] = []

    def down(request: httpx.Request) -> httpx.Response:
        always.append(request)
        return httpx.Response(503)

    assert not _lookup(down, {"a"}).ok
    assert len(always) == 3  # the default events_attempts


def test_events_lookup_rejects_a_batch_size_beyond_5000() -> None:
    handler, _ = _events_pages([["a"]])
    with pytest.raises(ValueError, match="batch_size"):
        _lookup(handler, {"a"}, batch_size=5001)


def test_events_endpoint_and_day_numbers() -> None:
    assert events_endpoint(ENDPOINT) == EVENTS
    assert (
        events_endpoint("http://127.0.0.1:9/eu1/1/upload") == "http://127.0.0.1:9/eu1/1/events.json"
    )
    assert events_endpoint("https://example.com/other") is None
    assert ymd(date(2024, 2, 9)) == 20240209
