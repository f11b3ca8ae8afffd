"""Engine and session handling for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from linkgen.storage.template_rows import TemplateRows
from linkgen.threads import Thread

log = logging.getLogger("linkgen.db")

# SQLite copies the write-ahead log back into the database ("checkpoint") inside the commit that
# crosses `wal_autocheckpoint` pages, fsyncs included, while holding the write lock: every other
# writer waits behind it. `WalCheckpointer` does that work on its own thread and connection
# instead; the inline threshold stays as a safety net (a process without a checkpointer, such
# as a one-off command, or a checkpointer that fell behind) at about 400 MB of WAL.
#
# A checkpoint that runs beside writers never catches up with them: they append frames while
# it copies, so the WAL is never wholly copied, SQLite never starts it over from the top, and
# it grows until the inline checkpoint fires (measured: a launch writes ~76 KB of WAL, so at
# 800 launches/s every ~1.1 s, stalling every writer 20-50 ms). So once the WAL holds more than
# `RESTART_ABOVE`, the round catches up with a few more passes beside the writers and ends with
# one inside this process's writer turn, which copies the last few frames; the next writer
# then restarts the WAL from its beginning. That pass holds the writers for its fsyncs, 2 to
# 35 ms on this machine's disk whatever the few frames it copies, so it comes as seldom as a
# WAL of a few hundred MB allows: about every 3 s at 1,100 launches/s (docs/clicks.md).
SQLITE_AUTOCHECKPOINT_PAGES = 100_000
BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits in the busy handler for the lock
# True while a request runs on the event loop (linkgen/web/front.py), where nothing may wait for
# the write lock: a writer that would (this process's writer turn taken, or SQLite's lock held
# by another process) raises `WouldWait` instead, before it has written anything.
NO_WAIT: ContextVar[bool] = ContextVar("linkgen_no_wait", default=False)
CHECKPOINT_EVERY = 0.5  # seconds between background checks of the WAL's size
CHECKPOINT_ABOVE = 1 << 20  # bytes of WAL worth a background checkpoint
RESTART_ABOVE = 256 << 20  # bytes of WAL worth holding the writers back to start it over
CATCH_UP_PASSES = 3  # passes beside the writers before the one that holds them back
CATCH_UP_FRAMES = 200  # frames written during a pass that are few enough to stop catching up


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the pragmas / pool settings linkgen relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=kwargs.pop("pool_size", 16),
            max_overflow=kwargs.pop("max_overflow", 16),
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode keeps every
            # committed transaction through a process crash (only power loss can undo the
            # last ones), which is the durability the click path promises.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
            cur.close()

        # pysqlite's own transaction handling defers BEGIN; take control so that writers
        # take the write lock up front (BEGIN IMMEDIATE) instead of failing on upgrade.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            begin_immediate(conn.exec_driver_sql)

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 20),
        **kwargs,
    )


class WouldWait(RuntimeError):
    """The write lock is taken: this request must run where it may wait for it (a thread)."""


def begin_immediate(execute: Callable[[str], Any]) -> None:
    """BEGIN IMMEDIATE on a SQLite connection; under `NO_WAIT`, at once or `WouldWait`.

    In WAL mode only taking the write lock waits: once BEGIN IMMEDIATE holds it, the
    transaction's statements and its COMMIT do not, so the normal busy timeout is back in
    force for them.
    """
    if not NO_WAIT.get():
        execute("BEGIN IMMEDIATE")
        return
    execute("PRAGMA busy_timeout=0")
    try:
        execute("BEGIN IMMEDIATE")
    except Exception as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise WouldWait("the database's write lock is held elsewhere") from exc
        raise
    finally:
        execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


@contextmanager
def _now_or_never(lock: threading.RLock) -> Iterator[None]:
    if not lock.acquire(blocking=False):
        raise WouldWait("another writer of this process has the turn")
    try:
        yield
    finally:
        lock.release()


class WalCheckpointer:
    """Checkpoints a SQLite database's WAL from a background thread (see the note above).

    PASSIVE checkpoints neither take the write lock nor wait for readers: they copy what they
    can and leave the rest for the next round, so writers never wait for them. Durability does
    not depend on them (a committed transaction is in the WAL already); they only keep the WAL
    small. Errors are logged and retried next round.
    """

    def __init__(self, path: str, writer_lock: AbstractContextManager[Any] | None = None) -> None:
        self.path = path
        self.wal = f"{path}-wal"
        self.writer_lock = writer_lock if writer_lock is not None else nullcontext()
        self._stop = threading.Event()
        self._thread = Thread(target=self._run, name="linkgen-wal", daemon=True)
        self.checkpoints = 0
        self.restarts = 0  # rounds that held the writers back to start the WAL over
        self.page_size: int | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the checkpoint in progress, if any)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def checkpoint_if_needed(self, conn: sqlite3.Connection) -> bool:
        """One round: checkpoint when the WAL file is over `CHECKPOINT_ABOVE` bytes, and when its
        frames are over `RESTART_ABOVE`, end with a pass that lets the next writer restart it."""
        try:
            size = os.stat(self.wal).st_size
        except FileNotFoundError:
            return False
        if size <= CHECKPOINT_ABOVE:
            return False
        # Beside the writers: the bulk of the copying and the fsyncs.
        busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        if busy or frames * self._page_size(conn) <= RESTART_ABOVE:
            return True
        # Catch up, still beside the writers: each pass copies what they wrote during the one
        # before, a shorter time each round, until little is left.
        for _ in range(CATCH_UP_PASSES):
            busy, now, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if busy:
                return True
            written, frames = now - frames, now
            if written <= CATCH_UP_FRAMES:
                break
        # Last pass with this process's writers held back: the whole WAL is copied, so the
        # next writer starts it over.
        with self.writer_lock:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.restarts += 1
        return True

    def _page_size(self, conn: sqlite3.Connection) -> int:
        if self.page_size is None:
            self.page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        return self.page_size

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self._stop.wait(CHECKPOINT_EVERY):
            try:
                if conn is None:
                    conn = sqlite3.connect(self.path, timeout=1, check_same_thread=False)
                    # Checkpoints stream pages from the WAL to the file: no cache needed
                    # (SQLite's default 2 MB would only add to the process's memory).
                    conn.execute("PRAGMA cache_size=-64")
                self.checkpoint_if_needed(conn)
            except sqlite3.Error as exc:  # a locked or vanished file: try again next round
                log.debug("background WAL checkpoint failed: %s", exc)
                if conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()


class Database:
    """An engine and its session factory (and, on a SQLite file, a WAL checkpointer).

    Also the template rows link writes look up (`template_rows`, linkgen/storage/
    template_rows.py): this database's own, emptied when one of its sessions commits a
    template edit.
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.template_rows = TemplateRows()
        self.template_rows.watch(self.sessions)
        self.epoch_listeners: list[Callable[[], None]] = []
        self._writer_lock = threading.RLock()
        self.checkpointer: WalCheckpointer | None = None
        path = self.engine.url.database
        if self.dialect == "sqlite" and path and path != ":memory:":
            self.checkpointer = WalCheckpointer(path, self._writer_lock)
            self.checkpointer.start()

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def writer_turn(self) -> AbstractContextManager[Any]:
        """This process's turn to write: on SQLite one writer at a time, nothing on PostgreSQL.

        SQLite has one write lock per database and linkgen takes it up front (BEGIN IMMEDIATE);
        a thread that finds it taken sleeps in SQLite's busy handler for 1, 2, 5, 10... ms
        before trying again. Queueing this process's writers (click batches, link creations,
        launches, events) on one Python lock instead hands the database over the moment the
        previous commit ends. Other processes still meet in the busy handler. Re-entrant, so a
        writer that already holds it may take it again. Under `NO_WAIT` a taken turn raises
        `WouldWait` at once.
        """
        if self.dialect != "sqlite":
            return nullcontext()
        return _now_or_never(self._writer_lock) if NO_WAIT.get() else self._writer_lock

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        Callables appended to `session.info["after_commit"]` run once the commit succeeded
        (work that must only follow a durable write: cache invalidation, wake-ups), and so do
        the `epoch_listeners` when the transaction bumped a cache epoch.
        """
        with self.sessions() as session:
            with session.begin():
                yield session
            callbacks = list(session.info.pop("after_commit", []))
            if session.info.pop("epoch_bumped", False):
                callbacks.extend(self.epoch_listeners)
            for callback in callbacks:
                callback()

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means "unreachable" to /healthz
            return False

    def dispose(self) -> None:
        """Close every pooled connection and stop the checkpointer."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()
