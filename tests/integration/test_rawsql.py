"""The launch path's driver-level transaction (SQLite and PostgreSQL): values round-trip as
SQLAlchemy's types store them, errors surface as SQLAlchemy's, and nothing is kept on failure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError, OperationalError

from linkgen.storage.counters import COUNTER_FIELDS, KEY_COLUMNS
from linkgen.storage.db import Database
from linkgen.storage.models import Postback, StatCounter
from linkgen.storage.rawsql import Dialect, Insert, Rows, Transaction, dialect

POSTBACKS = cast(Table, Postback.__table__)
COUNTERS = cast(Table, StatCounter.__table__)
NAMES = ("linkgen_id", "app_id", "kind", "source_id", "status", "record", "attempts", "created_at")
WHEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Any:
    database = Database(database_url)
    yield database
    database.dispose()


def _postback(linkgen_id: str, record: Any, **extra: Any) -> dict[str, Any]:
    return {
        "linkgen_id": linkgen_id,
        "app_id": "com.example.shop",
        "kind": "install",
        "source_id": "ln_1",
        "status": "queued",
        "record": record,
        "attempts": 0,
        "created_at": WHEN,
        **extra,
    }


def test_written_values_read_back_through_the_orm(db: Database) -> None:
    insert = Insert(db_dialect(db), POSTBACKS, (*NAMES, "next_attempt_at"))
    record = {"evtName": "App Install Attributed", "evtData": {"n": 1, "ok": True}}
    with Transaction(db) as tx:
        row = _postback("pb-1", record, next_attempt_at=WHEN)
        tx.execute(insert.sql, insert.params(row))
        row = _postback("pb-2", None, next_attempt_at=None)
        tx.execute(insert.sql, insert.params(row))
    with db.sessions() as session:
        first, second = session.scalars(select(Postback).order_by(Postback.id)).all()
    assert first.record == record and first.next_attempt_at == WHEN and first.created_at == WHEN
    assert second.record is None and second.next_attempt_at is None


def test_rows_are_typed_like_sqlalchemy_reads_them(db: Database) -> None:
    d = db_dialect(db)
    key = {"day": date(2026, 3, 1), "link_id": "lk", **dict.fromkeys(KEY_COLUMNS[2:], "")}
    names = (*KEY_COLUMNS, *COUNTER_FIELDS)
    insert = Insert(d, COUNTERS, names)
    rows = Rows(d, COUNTERS, ("day", "link_id", "installs"), "CounterRow")
    with Transaction(db) as tx:
        values = {**key, **dict.fromkeys(COUNTER_FIELDS, 0), "installs": 2}
        tx.execute(insert.sql, insert.params(values))
        raw = tx.fetchone(f"SELECT {rows.sql_columns} FROM stat_counters")
    assert raw is not None
    got = rows.one(raw)
    assert (got.day, got.link_id, got.installs) == (date(2026, 3, 1), "lk", 2)
    reader = Rows(d, POSTBACKS, ("record", "created_at"), "PostbackRow")
    insert = Insert(d, POSTBACKS, NAMES)
    with Transaction(db) as tx:
        later = WHEN + timedelta(days=1)
        tx.execute(insert.sql, insert.params(_postback("pb-3", {"a": [1, 2]}, created_at=later)))
        raw = tx.fetchone(f"SELECT {reader.sql_columns} FROM postbacks")
    assert raw is not None
    assert reader.one(raw) == ({"a": [1, 2]}, later)


def test_a_duplicate_is_an_integrity_error_and_rolls_back_the_whole_transaction(
    db: Database,
) -> None:
    insert = Insert(db_dialect(db), POSTBACKS, NAMES)
    with Transaction(db) as tx:
        tx.execute(insert.sql, insert.params(_postback("pb-dup", None)))
    with pytest.raises(IntegrityError), Transaction(db) as tx:
        tx.execute(insert.sql, insert.params(_postback("pb-new", None)))
        tx.execute(insert.sql, insert.params(_postback("pb-dup", None)))
    with db.sessions() as session:
        ids = session.scalars(select(Postback.linkgen_id)).all()
    assert ids == ["pb-dup"]  # pb-new was rolled back with the failed statement's transaction
    with Transaction(db) as tx:  # the connection went back to the pool in a usable state
        tx.execute(insert.sql, insert.params(_postback("pb-after", None)))


def test_on_conflict_do_nothing_keeps_the_row_already_there(db: Database) -> None:
    d = db_dialect(db)
    insert = Insert(d, POSTBACKS, NAMES, " ON CONFLICT (linkgen_id) DO NOTHING")
    with Transaction(db) as tx:
        tx.execute(insert.sql, insert.params(_postback("pb-once", {"v": 1})))
        tx.execute(insert.sql, insert.params(_postback("pb-once", {"v": 2})))
    with db.sessions() as session:
        records = session.scalars(select(Postback.record)).all()
    assert records == [{"v": 1}]


def test_an_unreachable_database_is_an_operational_error() -> None:
    down = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(OperationalError), Transaction(down):
            pass
    finally:
        down.dispose()


def db_dialect(db: Database) -> Dialect:
    return dialect(db.dialect)
