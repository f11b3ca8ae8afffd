"""The real CleverTap client against the real HTTP fake (127.0.0.1 only)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from linkgen.delivery.clevertap_client import CleverTapClient
from linkgen.domain.clevertap import connect_endpoint, upload_endpoint
from tests.fakes.fake_clevertap import Behaviour, FakeCleverTap

ACCOUNT = "W6K-556-4K6Z"
PASSCODE = "WVE-SMB-CXUL"


@pytest.fixture
def fake() -> Iterator[FakeCleverTap]:
    with FakeCleverTap({ACCOUNT: PASSCODE}) as server:
        yield server


@pytest.fixture
def client() -> Iterator[CleverTapClient]:
    with CleverTapClient(timeout=2.0) as c:
        yield c


def _records(*ids: str, identity: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for linkgen_id in ids:
        record: dict[str, Any] = {
            "type": "event",
            "ts": 1_700_000_000,
            "evtName": "App Install Attributed",
            "evtData": {"linkgen_id": linkgen_id, "utm_source": "Email", "Install": "Y"},
        }
        if identity:
            record["objectId"] = f"user-{linkgen_id}"
        out.append(record)
    return out


def test_base_url_is_an_api_base(fake: FakeCleverTap) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/{{region}}"
    assert upload_endpoint("IN1", fake.base_url) == f"http://127.0.0.1:{fake.port}/in1/1/upload"


def test_success(fake: FakeCleverTap, client: CleverTapClient) -> None:
    result = client.upload(
        upload_endpoint("IN1", fake.base_url), ACCOUNT, PASSCODE, _records("a", "b")
    )
    assert result.outcome == "ok"
    assert result.status == 200
    assert result.processed == 2
    assert result.failed == {}
    assert fake.received_linkgen_ids() == {"a": 1, "b": 1}
    [upload] = fake.uploads()
    assert upload.region == "in1"
    assert upload.headers["x-clevertap-account-id"] == ACCOUNT
    assert upload.headers["x-clevertap-passcode"] == PASSCODE
    assert upload.headers["content-type"] == "application/json"
    assert [r["evtData"]["linkgen_id"] for r in upload.records] == ["a", "b"]


def test_lowercase_region_setting_reaches_the_eu1_route(
    fake: FakeCleverTap, client: CleverTapClient
) -> None:
    client.upload(upload_endpoint("in1", fake.base_url), ACCOUNT, PASSCODE, _records("a"))
    assert fake.uploads()[0].region == "eu1"


def test_partial_unprocessed(fake: FakeCleverTap, client: CleverTapClient) -> None:
    fake.enqueue(Behaviour.partial(lambda r: r["evtData"]["linkgen_id"] == "b", code=525))
    records = _records("a", "b") + _records("c", identity=False)
    result = client.upload(upload_endpoint("EU1", fake.base_url), ACCOUNT, PASSCODE, records)
    assert result.outcome == "ok"
    assert {i: f.code for i, f in result.failed.items()} == {1: 525, 2: 523}
    assert fake.received_linkgen_ids() == {"a": 1}


def test_wrong_passcode_is_401(fake: FakeCleverTap, client: CleverTapClient) -> None:
    result = client.upload(upload_endpoint("EU1", fake.base_url), ACCOUNT, "nope", _records("a"))
    assert (result.outcome, result.status) == ("reject", 401)
    assert fake.received_linkgen_ids() == {}


def test_account_in_another_region_is_401(client: CleverTapClient) -> None:
    with FakeCleverTap() as fake:
        fake.add_account(ACCOUNT, PASSCODE, region="IN1")
        wrong = client.check_credentials(connect_endpoint("EU1", fake.base_url), ACCOUNT, PASSCODE)
        right = client.check_credentials(connect_endpoint("IN1", fake.base_url), ACCOUNT, PASSCODE)
    assert wrong[:2] == (False, 401)
    assert right[:2] == (True, 200)
    assert "region" in wrong[2]


@pytest.mark.parametrize(("status", "outcome"), [(401, "reject"), (429, "retry"), (500, "retry")])
def test_programmed_errors(
    fake: FakeCleverTap, client: CleverTapClient, status: int, outcome: str
) -> None:
    fake.enqueue(Behaviour.http_error(status))
    result = client.upload(upload_endpoint("EU1", fake.base_url), ACCOUNT, PASSCODE, _records("a"))
    assert (result.outcome, result.status) == (outcome, status)
    assert fake.received_linkgen_ids() == {}
    # The queue is used up: the retry goes through.
    again = client.upload(upload_endpoint("EU1", fake.base_url), ACCOUNT, PASSCODE, _records("a"))
    assert again.outcome == "ok"
    assert fake.received_linkgen_ids() == {"a": 1}


def test_timeout_on_a_slow_answer_is_in_doubt(fake: FakeCleverTap) -> None:
    # The request went out: CleverTap may have stored it, so it is not a plain retry.
    fake.enqueue(Behaviour.slow(1.0))
    with CleverTapClient(timeout=0.2) as client:
        result = client.upload(
            upload_endpoint("EU1", fake.base_url), ACCOUNT, PASSCODE, _records("a")
        )
    assert (result.outcome, result.status) == ("unknown", None)
    assert "did not answer" in result.message


def test_connection_refused_is_retried(client: CleverTapClient) -> None:
    fake = FakeCleverTap({ACCOUNT: PASSCODE})
    endpoint = upload_endpoint("EU1", fake.base_url)
    fake.stop()
    result = client.upload(endpoint, ACCOUNT, PASSCODE, _records("a"))
    assert result.outcome == "retry"
    assert PASSCODE not in result.message


def test_check_credentials(fake: FakeCleverTap, client: CleverTapClient) -> None:
    url = connect_endpoint("US1", fake.base_url)
    assert client.check_credentials(url, ACCOUNT, PASSCODE)[:2] == (True, 200)
    assert client.check_credentials(url, ACCOUNT, "bad")[:2] == (False, 401)
    request = fake.requests[0]
    assert request.method == "GET"
    assert request.path == "/us1/v1/connect?partner=linkgen"


def test_fault_ratio_is_reproducible() -> None:
    def run() -> list[int]:
        with FakeCleverTap(None, fault_ratio=0.5, seed=7) as fake, httpx.Client() as http:
            url = upload_endpoint("EU1", fake.base_url)
            headers = {"X-CleverTap-Account-Id": "a", "X-CleverTap-Passcode": "p"}
            body = {"d": _records("x")}
            return [http.post(url, json=body, headers=headers).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 0 < sum(s != 200 for s in first) < 20
    assert {s for s in first if s != 200} <= {429, 500, 503}


def test_concurrent_uploads_are_all_counted(fake: FakeCleverTap) -> None:
    endpoint = upload_endpoint("EU1", fake.base_url)

    def send(n: int) -> None:
        with CleverTapClient(timeout=5.0) as client:
            client.upload(endpoint, ACCOUNT, PASSCODE, _records(f"id-{n}"))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.received_linkgen_ids() == {f"id-{n}": 1 for n in range(16)}


def test_unknown_path_is_404(fake: FakeCleverTap) -> None:
    response = httpx.get(f"http://127.0.0.1:{fake.port}/nowhere", timeout=2)
    assert response.status_code == 404
