"""`linkgen retention` deletes raw rows past the windows and keeps the reports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from linkgen.storage.counters import CounterBatch, CounterKey
from linkgen.storage.models import Click, StatCounter
from linkgen.storage.types import utcnow


def _click(n: int, age_days: int) -> Click:
    return Click(
        click_id=f"c{n}",
        ts=utcnow() - timedelta(days=age_days),
        template_id="AbCd",
        params={"pid": "Email"},
        platform="ios",
    )


def test_retention_deletes_old_clicks_and_keeps_counters(app: Flask, runner: Any) -> None:
    db = app.extensions["linkgen"].db
    with db.session() as session:
        session.add_all(
            [_click(i, 120) for i in range(25)] + [_click(100 + i, 5) for i in range(3)]
        )
        batch = CounterBatch()
        batch.add(CounterKey.of(utcnow(), template_id="AbCd", media_source="Email"), clicks=28)
        batch.write(session)
    result = runner.invoke(args=["retention", "--older-than", "90", "--batch", "100"])
    assert result.exit_code == 0, result.output
    assert "deleted 25 click(s)" in result.output
    with db.session() as session:
        assert session.scalar(select(func.count(Click.id))) == 3
        assert session.scalar(select(func.sum(StatCounter.clicks))) == 28


def test_retention_refuses_a_window_shorter_than_the_lookback(runner: Any) -> None:
    result = runner.invoke(args=["retention", "--older-than", "7"])
    assert result.exit_code != 0
    assert "older-than" in result.output
