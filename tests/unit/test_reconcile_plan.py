"""How in-doubt postbacks are grouped into Get Events queries (pure: no database, no HTTP)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from linkgen.delivery.reconcile import merge_windows, plan_lookups
from linkgen.services.postbacks import Claimed

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
EU = "https://eu1.api.clevertap.com/1/upload"
IN = "https://in1.api.clevertap.com/1/upload"


def _ts(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp())


def _row(
    row_id: int,
    *,
    day: date | None = date(2024, 3, 9),
    name: str = "Charged",
    endpoint: str | None = EU,
    account: str | None = "ACC",
    **record: Any,
) -> Claimed:
    body: dict[str, Any] = {
        "type": "event",
        "objectId": f"u{row_id}",
        "evtName": name,
        "evtData": {"linkgen_id": f"lg-{row_id}"},
    }
    if day is not None:
        body["ts"] = _ts(day)
    body.update(record)
    return Claimed(
        id=row_id,
        app_id="app",
        account_id=account,
        endpoint=endpoint,
        record=body,
        attempts=1,
        created_at=datetime(2024, 3, 8, 6, 0, tzinfo=UTC),
        give_up_at=None,
    )


def test_windows_are_widened_by_a_day_and_merged() -> None:
    d = date(2024, 3, 9)
    assert merge_windows([(d, d)]) == [(date(2024, 3, 8), date(2024, 3, 10))]
    # Two days apart: the widened windows touch, so one query covers both.
    assert merge_windows([(d, d), (date(2024, 3, 12), date(2024, 3, 12))]) == [
        (date(2024, 3, 8), date(2024, 3, 13))
    ]
    # Far apart: two queries rather than one over the whole month.
    far = date(2024, 3, 25)
    assert merge_windows([(far, far), (d, d)]) == [
        (date(2024, 3, 8), date(2024, 3, 10)),
        (date(2024, 3, 24), date(2024, 3, 26)),
    ]
    assert merge_windows([]) == []


def test_rows_group_by_host_account_passcode_event_and_days() -> None:
    rows = [
        _row(1),
        _row(2),
        _row(3, name="App Install Attributed"),
        _row(4, endpoint=IN),
        _row(5, account="ACC-2"),
        _row(6, day=date(2024, 2, 1)),
        _row(7),
    ]
    passcodes = ["p", "p", "p", "p", "p2", "p", "other-pass"]
    lookups, unanswerable = plan_lookups(zip(rows, passcodes, strict=True), NOW)
    assert unanswerable == []
    summary = sorted(
        (
            lk.events_url.split("/")[2],
            lk.account_id,
            lk.passcode,
            lk.event_name,
            lk.first_day.isoformat(),
            lk.last_day.isoformat(),
            tuple(r.id for r in lk.rows),
        )
        for lk in lookups
    )
    day = ("2024-03-08", "2024-03-10")
    eu, india = "eu1.api.clevertap.com", "in1.api.clevertap.com"
    assert summary == [
        (eu, "ACC", "other-pass", "Charged", *day, (7,)),  # another passcode: asked apart
        (eu, "ACC", "p", "App Install Attributed", *day, (3,)),
        (eu, "ACC", "p", "Charged", "2024-01-31", "2024-02-02", (6,)),
        (eu, "ACC", "p", "Charged", *day, (1, 2)),
        (eu, "ACC-2", "p2", "Charged", *day, (5,)),
        (india, "ACC", "p", "Charged", *day, (4,)),
    ]
    assert all(lk.events_url.endswith("/1/events.json") for lk in lookups)
    assert "p2" not in repr(lookups)  # the passcode stays out of reprs and logs


def test_a_record_without_ts_is_looked_for_from_its_creation_to_now() -> None:
    (lookup,), _ = plan_lookups([(_row(1, day=None), "p")], NOW)
    # created 2024-03-08, now 2024-03-10, each widened by a day
    assert (lookup.first_day, lookup.last_day) == (date(2024, 3, 7), date(2024, 3, 11))


def test_rows_no_query_can_answer_are_set_apart() -> None:
    rows = [
        _row(1, endpoint=None),
        _row(2, endpoint="https://example.com/not-an-upload-url"),
        _row(3, account=None),
        _row(4, type="profile"),
        _row(5, evtName=""),
        _row(6, evtData={"no": "id"}),
        _row(7),
    ]
    lookups, unanswerable = plan_lookups([(r, "p") for r in rows], NOW)
    assert [r.id for r in unanswerable] == [1, 2, 3, 4, 5, 6]
    assert [[r.id for r in lk.rows] for lk in lookups] == [[7]]
