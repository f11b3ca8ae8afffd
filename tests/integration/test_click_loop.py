"""Clicks answered on an event loop (`ClickHandler.answer`, as linkgen/web/front.py calls it).

The same handler as the WSGI path; here it runs inside `asyncio.run` on SQLite and PostgreSQL:
a click whose template or link is not in memory is left to a thread (None, nothing stored);
a cached click is answered only once its row is committed; many clicks on one loop share a
group commit; a failed or late commit answers 503, never a redirect; an expired link is left
to a thread too (it must be read again); and the answer is the one the WSGI path gives.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import EnvironBuilder

from linkgen.clicks.handler import Answer, ClickHandler
from linkgen.clicks.recorder import ClickRecorder
from linkgen.storage.models import Link
from tests.conftest import Api
from tests.integration.clicksetup import APP_STORE, HOST, IPHONE, TEMPLATE, Setup, make_setup


@pytest.fixture
def s(app: Flask, client: FlaskClient, api: Api) -> Setup:
    return make_setup(app, client, api)


def _handler(s: Setup) -> ClickHandler:
    handler = s.app.extensions["linkgen"].click_handler
    assert isinstance(handler, ClickHandler)
    return handler


def _recorder(s: Setup) -> ClickRecorder:
    recorder = s.app.extensions["linkgen"].click_recorder
    assert isinstance(recorder, ClickRecorder)
    return recorder


def _environ(path: str, query: str = "", method: str = "GET") -> dict[str, Any]:
    return EnvironBuilder(
        path=path,
        query_string=query,
        method=method,
        headers={"Host": HOST, "User-Agent": IPHONE},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    ).get_environ()


def _on_loop(handler: ClickHandler, *environs: dict[str, Any]) -> list[Answer | None]:
    async def main() -> list[Answer | None]:
        return list(await asyncio.gather(*(handler.answer(e) for e in environs)))

    return asyncio.run(main())


def _location(answer: Answer | None) -> str:
    assert answer is not None and answer[0] == 302, answer
    return dict(answer[1])["Location"]


def test_a_click_not_in_memory_is_left_to_a_thread(s: Setup) -> None:
    path, _ = s.short_path()
    assert _on_loop(_handler(s), _environ(path)) == [None]
    assert s.clicks() == []
    assert s.click(path).status_code == 302  # the thread's way reads and caches it
    assert len(s.clicks()) == 1


def test_a_cached_click_is_answered_once_committed(s: Setup) -> None:
    path, _ = s.short_path()
    s.click(path, method="HEAD")  # caches the template and the link, stores nothing
    [answer] = _on_loop(_handler(s), _environ(path, "af_sub1=loop"))
    assert _location(answer) == APP_STORE
    # asyncio.run has returned: the row is there, read by another connection.
    assert [c.params.get("af_sub1") for c in s.clicks()] == ["loop"]
    assert s.counters() == {"clicks": 1, "human_clicks": 1, "bot_clicks": 0}


def test_the_loop_and_the_thread_give_the_same_answer(s: Setup) -> None:
    path, _ = s.short_path()
    wsgi = s.click(path)
    [answer] = _on_loop(_handler(s), _environ(path))
    assert answer is not None
    assert answer[0] == wsgi.status_code == 302
    assert sorted(answer[1]) == sorted(wsgi.headers.items())
    assert answer[2] == wsgi.get_data()
    assert len(s.clicks()) == 2


def test_many_clicks_on_one_loop_share_group_commits(s: Setup) -> None:
    path, _ = s.short_path()
    s.click(path, method="HEAD")
    recorder = _recorder(s)
    before = recorder.batches
    answers = _on_loop(_handler(s), *(_environ(path, f"af_sub1=n{i}") for i in range(200)))
    assert all(_location(a) == APP_STORE for a in answers)
    assert sorted(c.params["af_sub1"] for c in s.clicks()) == sorted(f"n{i}" for i in range(200))
    assert recorder.batches - before < 200  # batched: fewer commits than clicks


def test_a_failed_commit_answers_503_on_the_loop(s: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = s.short_path()
    s.click(path, method="HEAD")

    def broken(items: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(_recorder(s), "_store", broken)
    [answer] = _on_loop(_handler(s), _environ(path))
    assert answer is not None and answer[0] == 503
    assert dict(answer[1])["Retry-After"] == "1" and "Location" not in dict(answer[1])
    monkeypatch.undo()
    assert s.clicks() == []
    assert _location(_on_loop(_handler(s), _environ(path))[0]) == APP_STORE  # it recovers


def test_a_late_commit_answers_503_on_the_loop(s: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer takes longer than the recorder's deadline: 503, and the late settle of the
    batch's future, after the loop gave up on it, harms nothing."""
    path, _ = s.short_path()
    s.click(path, method="HEAD")
    recorder = _recorder(s)
    real = recorder._store

    def slow(items: Any) -> None:
        time.sleep(0.6)
        real(items)

    monkeypatch.setattr(recorder, "timeout", 0.2)
    monkeypatch.setattr(recorder, "_store", slow)

    async def main() -> Answer | None:
        answer = await _handler(s).answer(_environ(path, "af_sub1=late"))
        await asyncio.sleep(0.8)  # the writer settles the expired future meanwhile
        return answer

    answer = asyncio.run(main())
    assert answer is not None and answer[0] == 503
    # Stored all the same (as on the thread's way: a late answer is not a lost click).
    assert [c.params.get("af_sub1") for c in s.clicks()] == ["late"]


def test_an_expired_link_is_read_again_on_a_thread(s: Setup) -> None:
    path, link = s.short_path(ttl="1h")
    s.click(path, method="HEAD")
    cached = _handler(s).cache.link(TEMPLATE, link["shortlink_id"])
    assert cached is not None
    cached.expires_at = datetime.now(UTC) - timedelta(seconds=1)  # as if it lapsed in memory
    assert _on_loop(_handler(s), _environ(path)) == [None]
    assert s.clicks() == []
    with s.app.extensions["linkgen"].db.session() as session:  # renewed by another process
        session.execute(
            update(Link)
            .where(Link.id == link["id"])
            .values(expires_at=datetime.now(UTC) + timedelta(hours=1))
        )
    assert s.click(path).status_code == 302
    [row] = s.clicks()
    assert row.not_attributable_reason != "expired_link"


def test_what_is_not_a_click_is_left_to_the_app(s: Setup) -> None:
    handler = _handler(s)
    assert _on_loop(handler, _environ("/api/v1/apps"), _environ("/healthz")) == [None, None]
    assert _on_loop(handler, _environ(f"/{TEMPLATE}", method="POST")) == [None]
