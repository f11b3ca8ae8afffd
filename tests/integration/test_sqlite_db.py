"""SQLite specifics of `linkgen.storage.db.Database`: the background WAL checkpointer and the
process's writer turn."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from linkgen.storage import db as dbmod
from linkgen.storage.db import Database


def _fill(database: Database, rows: int) -> None:
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, b BLOB)"))
    for _ in range(rows // 100):
        with database.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO filler (b) VALUES (:b)"),
                [{"b": os.urandom(1000)} for _ in range(100)],
            )


def _rounds_by_hand(path: Path) -> Database:
    """A database whose checkpointer thread is stopped: the test drives its rounds."""
    database = Database(f"sqlite:///{path}")
    assert database.checkpointer is not None
    database.checkpointer.stop()
    return database


def test_connections_leave_the_checkpoint_to_the_background(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with database.engine.connect() as conn:
            pages = conn.execute(text("PRAGMA wal_autocheckpoint")).scalar()
        assert pages == dbmod.SQLITE_AUTOCHECKPOINT_PAGES
        assert database.checkpointer is not None
    finally:
        database.dispose()
    assert database.checkpointer is not None
    assert not database.checkpointer._thread.is_alive()


def test_a_large_wal_is_checkpointed_and_data_stays(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    database = _rounds_by_hand(path)
    try:
        _fill(database, 3000)  # ~3 MB, well below the inline threshold
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > dbmod.CHECKPOINT_ABOVE
        before = path.stat().st_size
        conn = sqlite3.connect(path)
        try:
            assert database.checkpointer.checkpoint_if_needed(conn)
            # Everything the WAL held is now in the database file itself.
            busy, log_frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert busy == 0 and done == log_frames
        finally:
            conn.close()
        assert path.stat().st_size > before + 2_000_000
        with database.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM filler")).scalar() == 3000
    finally:
        database.dispose()


def test_below_the_restart_size_writers_are_never_held_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.db"
    database = _rounds_by_hand(path)
    monkeypatch.setattr(dbmod, "CHECKPOINT_ABOVE", 64 * 1024)
    try:
        _fill(database, 1000)  # ~1 MB: checkpointed, but far below RESTART_ABOVE
        held = threading.Event()

        class Spy:
            def __enter__(self) -> None:
                held.set()

            def __exit__(self, *exc: object) -> None:
                return None

        database.checkpointer.writer_lock = Spy()
        conn = sqlite3.connect(path)
        try:
            assert database.checkpointer.checkpoint_if_needed(conn)
        finally:
            conn.close()
        assert not held.is_set() and database.checkpointer.restarts == 0
        assert database.checkpointer.checkpoints == 1
    finally:
        database.dispose()


def test_a_small_wal_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    database = _rounds_by_hand(path)
    try:
        _fill(database, 100)
        conn = sqlite3.connect(path)
        try:
            assert not database.checkpointer.checkpoint_if_needed(conn)
        finally:
            conn.close()
    finally:
        database.dispose()


def test_postgres_has_no_checkpointer() -> None:
    database = Database("postgresql+psycopg://postgres@127.0.0.1:5432/test")  # not connected
    try:
        assert database.checkpointer is None
    finally:
        database.dispose()


def test_sqlite_writers_of_a_process_take_turns_on_one_lock(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        entered = threading.Event()
        with database.writer_turn(), database.writer_turn():  # re-entrant for its holder
            other = threading.Thread(target=lambda: _take(database, entered))
            other.start()
            assert not entered.wait(0.2)  # another writer of this process waits its turn
        assert entered.wait(5)
        other.join(5)
    finally:
        database.dispose()


def test_postgres_writers_need_no_turn() -> None:
    database = Database("postgresql+psycopg://postgres@127.0.0.1:5432/test")  # not connected
    try:
        held = database.writer_turn()
        assert isinstance(held, contextlib.nullcontext)
    finally:
        database.dispose()


def _take(database: Database, entered: threading.Event) -> None:
    with database.writer_turn():
        entered.set()


def _wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time it starts the WAL
    over from its beginning."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


def test_the_wal_starts_over_while_writers_keep_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint that only runs beside the writers never copies the frames they append
    # meanwhile, so SQLite never restarts the WAL and it grows until the inline checkpoint
    # stalls every writer. Past RESTART_ABOVE a round's last pass (inside the writer turn)
    # closes that gap.
    path = tmp_path / "d.db"
    database = _rounds_by_hand(path)
    monkeypatch.setattr(dbmod, "CHECKPOINT_ABOVE", 64 * 1024)
    monkeypatch.setattr(dbmod, "RESTART_ABOVE", 64 * 1024)
    _fill(database, 100)
    stop = threading.Event()
    written = 0

    def write() -> None:
        nonlocal written
        while not stop.is_set():
            with database.writer_turn(), database.engine.begin() as conn:
                conn.execute(text("INSERT INTO filler (b) VALUES (:b)"), {"b": os.urandom(2000)})
            written += 1

    writer = threading.Thread(target=write)
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        first = _wal_restarts(path)
        writer.start()
        rounds = 0
        since = 0  # `written` when the last round ended
        deadline = time.monotonic() + 120
        while rounds < 20 and writer.is_alive() and time.monotonic() < deadline:
            # Each round waits for 50 transactions of its own (50 frames at least, over
            # RESTART_ABOVE), however fast or slow the writer is next to this loop.
            if written - since >= 50:
                assert database.checkpointer.checkpoint_if_needed(conn)
                rounds += 1
                since = written
            time.sleep(0.002)
        stop.set()
        writer.join()
        assert rounds == 20
        # Every round reached its last pass, and the first write after each of the first 19
        # started the WAL over (the writer thread never pauses, so without the pass inside the
        # writer turn there would be none or next to none).
        assert database.checkpointer.restarts == 20
        assert _wal_restarts(path) - first >= 19
        with database.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM filler")).scalar() == 100 + written
    finally:
        stop.set()
        conn.close()
        database.dispose()
