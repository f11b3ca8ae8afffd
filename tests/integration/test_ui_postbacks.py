"""The postback log page: what caused each postback (event, customer, link), retries, filters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from linkgen.delivery.worker import OutboxWorker, WorkerConfig
from linkgen.services.accounts import create_api_key
from tests.conftest import Api
from tests.fakes.fake_clevertap import Behaviour, FakeCleverTap
from tests.integration.clickfactory import (
    ANDROID_APP,
    IOS_APP,
    configure_clevertap,
    insert_click,
    insert_link,
    iso,
    make_sdk,
    new_device,
    postbacks,
    utc_now,
)
from tests.integration.test_postback_worker import _ui_client

ACCOUNT = "W6K-556-4K6Z"  # configure_clevertap's account and passcode
PASSCODE = "secret-passcode"


@pytest.fixture
def fake() -> Iterator[FakeCleverTap]:
    with FakeCleverTap({ACCOUNT: PASSCODE}) as server:
        yield server


@pytest.fixture
def flow(make_app: Callable[..., Flask], fake: FakeCleverTap) -> dict[str, Any]:
    """An attributed install and a purchase through the SDK endpoints, then one worker round
    that CleverTap answers with a 500: both postbacks wait for their next attempt."""
    app = make_app(clevertap_api_base=fake.base_url)
    rt = app.extensions["linkgen"]
    with rt.db.session() as session:
        _, key = create_api_key(session, "tests")
    sdk = make_sdk(app, app.test_client(), Api(app.test_client(), key))
    configure_clevertap(app)
    link_id = insert_link(app, shortlink_id="Spring1", media_source="Email", channel="email")
    device = new_device()
    now = utc_now()
    insert_click(app, ts=now - timedelta(hours=1), params={"gaid": "g-" + device}, link_id=link_id)
    launch = sdk.launch(device, gaid="g-" + device, customer_user_id="cu-42", ts=iso(now))
    assert launch.get_json()["attribution"]["link_id"] == link_id
    event = sdk.event(
        device_id=device,
        event_name="af_purchase",
        event_values={"af_revenue": "9.99", "af_currency": "EUR"},
        ts=iso(now),
    )
    assert event.status_code == 201, event.get_json()
    fake.enqueue(Behaviour.http_error(500))
    config = WorkerConfig(timeout=5.0, lease=30.0, heartbeat_every=0.0, backoff_base=600.0)
    worker = OutboxWorker(rt.db, api_base=fake.base_url, config=config)
    try:
        stats = worker.run_once()
    finally:
        worker.close()
    assert stats.retried == 2, stats
    return {"app": app, "link_id": link_id}


def test_postback_log_names_event_customer_and_link(flow: dict[str, Any]) -> None:
    page = _ui_client(flow["app"]).get("/postbacks").get_data(as_text=True)
    assert "event: Charged" in page  # the partner event the purchase was mapped to
    assert page.count('<dd class="pb-customer">cu-42</dd>') == 2  # install and event
    assert page.count(f'href="/links/{flow["link_id"]}"') == 2


def test_a_failed_attempt_waiting_to_be_retried_is_retrying_with_its_next_attempt(
    flow: dict[str, Any],
) -> None:
    rows = postbacks(flow["app"])
    assert {(p.status, p.attempts) for p in rows} == {("queued", 1)}
    page = _ui_client(flow["app"]).get("/postbacks").get_data(as_text=True)
    assert page.count('data-status="retrying"') == 2
    assert ">Retrying</span>" in page and ">Queued</span>" not in page
    next_attempt = rows[0].next_attempt_at
    assert next_attempt is not None
    assert f"next attempt {next_attempt:%Y-%m-%d %H:%M} UTC" in page


def test_the_app_filter_is_a_list_of_the_apps(flow: dict[str, Any]) -> None:
    client = _ui_client(flow["app"])
    page = client.get("/postbacks").get_data(as_text=True)
    assert f'<option value="{ANDROID_APP}" >' in page and f'<option value="{IOS_APP}" >' in page
    filtered = client.get(f"/postbacks?app_id={IOS_APP}").get_data(as_text=True)
    assert f'<option value="{IOS_APP}" selected>' in filtered
    assert "data-status=" not in filtered  # the iOS app has no postbacks
