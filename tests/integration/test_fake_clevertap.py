"""The real CleverTap client against the real HTTP fake (127.0.0.1 only)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from linkgen.delivery.clevertap_client import CleverTapClient, EventsLookup, events_endpoint
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


# --- the Get Events API ------------------------------------------------------------------------


def _events_url(fake: FakeCleverTap, region: str = "EU1") -> str:
    url = events_endpoint(upload_endpoint(region, fake.base_url))
    assert url is not None
    return url


def _find(
    client: CleverTapClient, fake: FakeCleverTap, wanted: set[str], **changes: Any
) -> EventsLookup:
    args: dict[str, Any] = {
        "event_name": "App Install Attributed",
        "first_day": date(2023, 11, 13),  # ts 1_700_000_000 is 2023-11-14 UTC
        "last_day": date(2023, 11, 15),
        "wanted": wanted,
        "batch_size": 2,
        **changes,
    }
    return client.find_linkgen_ids(_events_url(fake), ACCOUNT, PASSCODE, **args)


def test_events_api_lists_what_was_stored_page_by_page(
    fake: FakeCleverTap, client: CleverTapClient
) -> None:
    endpoint = upload_endpoint("EU1", fake.base_url)
    assert client.upload(endpoint, ACCOUNT, PASSCODE, _records("a", "b", "c", "d", "e")).ok
    fake.add_account("OTHER", "other-pass")
    assert client.upload(endpoint, "OTHER", "other-pass", _records("x")).ok

    result = _find(client, fake, {"a", "e", "x", "never-sent"})
    assert result.ok and result.found == {"a", "e"}  # not another account's events
    assert result.pages == 3  # 5 records, 2 a page, read to the end
    posts = [r for r in fake.events_requests() if r.method == "POST"]
    assert posts[0].path.endswith("/eu1/1/events.json?batch_size=2&events=false&profile=false")
    pages = [r for r in fake.events_requests() if r.method == "GET"]
    assert len(pages) == 3 and all(r.status == 200 for r in pages)

    early = _find(client, fake, {"a"})  # found on the first page: no more paging
    assert early.ok and early.found == {"a"} and early.pages == 1
    assert _find(client, fake, {"a"}, event_name="Charged").found == frozenset()
    outside = _find(client, fake, {"a"}, first_day=date(2023, 11, 15))
    assert outside.ok and outside.found == frozenset()


def test_events_api_record_shape_and_validation(fake: FakeCleverTap) -> None:
    endpoint = upload_endpoint("EU1", fake.base_url)
    headers = {"X-CleverTap-Account-Id": ACCOUNT, "X-CleverTap-Passcode": PASSCODE}
    with httpx.Client(timeout=5) as http:
        assert http.post(endpoint, json={"d": _records("a")}, headers=headers).status_code == 200
        url = _events_url(fake)
        query = {"event_name": "App Install Attributed", "from": 20231114, "to": 20231114}
        opened = http.post(f"{url}?batch_size=10", json=query, headers=headers).json()
        assert opened["status"] == "success"
        page = http.get(url, params={"cursor": opened["cursor"]}, headers=headers).json()
        assert "next_cursor" not in page
        (record,) = page["records"]
        assert record["profile"] == {"objectId": "user-a"}
        assert record["ts"] == 20231114221320  # 1_700_000_000 as YYYYMMDDHHMMSS (UTC)
        assert record["event_props"]["linkgen_id"] == "a"
        again = http.get(url, params={"cursor": opened["cursor"]}, headers=headers)
        assert again.status_code == 400  # a cursor is read once
        bad = [
            ("batch_size=0", query),
            ("batch_size=5001", query),
            ("batch_size=10", {"from": 20231114, "to": 20231114}),
            ("batch_size=10", {**query, "from": 20231399}),
            ("batch_size=10", {**query, "from": 20231115}),  # after "to"
        ]
        for params, body in bad:
            assert http.post(f"{url}?{params}", json=body, headers=headers).status_code == 400
        wrong = {**headers, "X-CleverTap-Passcode": "nope"}
        assert http.post(f"{url}?batch_size=10", json=query, headers=wrong).status_code == 401


@pytest.mark.parametrize(("status", "tries"), [(401, 1), (429, 3), (500, 3), (503, 3)])
def test_events_api_failures_are_not_read_as_absence(
    fake: FakeCleverTap, status: int, tries: int
) -> None:
    with CleverTapClient(timeout=2.0, events_retry_pause=0.01) as client:
        endpoint = upload_endpoint("EU1", fake.base_url)
        assert client.upload(endpoint, ACCOUNT, PASSCODE, _records("a")).ok
        fake.enqueue_events(*[Behaviour.http_error(status)] * 3)
        failed = _find(client, fake, {"a"})
        assert not failed.ok and failed.status == status and str(status) in failed.message
        assert [r.status for r in fake.events_requests()] == [status] * tries
        fake.reset()
        assert client.upload(endpoint, ACCOUNT, PASSCODE, _records("a")).ok
        fake.enqueue_events(Behaviour.http_error(status))  # once: a retry gets through
        assert _find(client, fake, {"a"}).found == ({"a"} if tries > 1 else frozenset())


def test_events_api_timeout_is_a_failed_lookup(fake: FakeCleverTap) -> None:
    fake.enqueue_events(*[Behaviour.slow(1.0)] * 2)
    with CleverTapClient(timeout=0.2, events_attempts=2, events_retry_pause=0.01) as client:
        result = _find(client, fake, {"a"})
    assert not result.ok and "did not answer" in result.message


def test_lost_answer_and_hang_faults(fake: FakeCleverTap) -> None:
    endpoint = upload_endpoint("EU1", fake.base_url)
    fake.set_fault_ratio(1.0, statuses=("timeout",), timeout_delay=0.5)
    with CleverTapClient(timeout=0.2) as client:
        assert client.upload(endpoint, ACCOUNT, PASSCODE, _records("a")).outcome == "unknown"
        assert fake.received_linkgen_ids() == {"a": 1}  # stored although unanswered
        fake.set_fault_ratio(1.0, statuses=("hang",))
        assert client.upload(endpoint, ACCOUNT, PASSCODE, _records("b")).outcome == "unknown"
    assert "b" not in fake.received_linkgen_ids()
