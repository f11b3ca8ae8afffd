"""Statements on the database driver, without SQLAlchemy's execution layer (the SDK paths).

Why: a launch runs about ten small statements. Through SQLAlchemy each cost ~65 µs of Python
(execution context, parameter and result processing) around ~10 µs of SQLite work, and the ORM
session's begin / commit another ~150 µs: together over half of a launch's server CPU. The click
recorder talks to the driver for the same reason (linkgen/clicks/recorder.py).

What stays the same: the statements are plain SQL built once per dialect from the models' table
definitions (column lists, placeholders, `::jsonb` casts), so they cannot drift from the schema;
values are converted by column type exactly as SQLAlchemy's types do (`UTCDateTime` as SQLite's
text format or an aware timestamp, JSON as text or `jsonb`, booleans as 0 / 1 on SQLite); driver
errors are re-raised as SQLAlchemy's (`DBAPIError.instance`), so a duplicate still reads as
`IntegrityError` and an unreachable database as `OperationalError` (-> 503); a connection the
dialect calls disconnected is invalidated, not returned to the pool.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any, Protocol, cast

from sqlalchemy import JSON, Boolean, Date, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from linkgen.storage.db import Database, WouldWait, begin_immediate
from linkgen.storage.types import UTCDateTime

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _sqlite_when(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME text (always with microseconds, so text compares)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


def _sqlite_read_when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _pg_write_when(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


def _pg_read_when(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _to_json(value: Any) -> str:
    # As SQLAlchemy's JSON type (none_as_null=False): None is stored as JSON null.
    return json.dumps(value)


def _from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _to_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _read_day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _write_day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


class Dialect:
    """Placeholders and per-type value conversion for one database (sqlite or postgresql)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sqlite = name == "sqlite"
        self.p = "?" if self.sqlite else "%s"

    def placeholder(self, column: Any) -> str:
        """The placeholder for one column's value (`jsonb` needs a cast from text)."""
        if not self.sqlite and isinstance(column.type, JSON):
            return "%s::jsonb"
        return self.p

    def writer(self, column: Any) -> Convert:
        """Python value -> driver parameter, for one column."""
        kind = column.type
        if isinstance(kind, UTCDateTime):
            return _sqlite_when if self.sqlite else _pg_write_when
        if isinstance(kind, JSON):
            return _to_json
        if isinstance(kind, Date) and self.sqlite:
            return _write_day
        return _same

    def reader(self, column: Any) -> Convert:
        """Driver value -> Python value, for one column."""
        kind = column.type
        if isinstance(kind, UTCDateTime):
            return _sqlite_read_when if self.sqlite else _pg_read_when
        if isinstance(kind, JSON) and self.sqlite:
            return _from_json  # psycopg already decodes jsonb
        if isinstance(kind, Boolean) and self.sqlite:
            return _to_bool
        if isinstance(kind, Date) and self.sqlite:
            return _read_day
        return _same


@lru_cache(maxsize=8)
def dialect(name: str) -> Dialect:
    """The `Dialect` of a database name (one per process)."""
    return Dialect(name)


class Rows:
    """How to read result rows of some columns: typed named tuples (`row.ts`, `row.params`)."""

    def __init__(self, d: Dialect, table: Table, names: Sequence[str], name: str) -> None:
        self.names = tuple(names)
        self.sql_columns = ", ".join(self.names)
        self.tuple: Callable[..., Any] = namedtuple(name, self.names)  # type: ignore[misc]
        readers = [d.reader(table.c[n]) for n in self.names]
        self._convert = [(i, r) for i, r in enumerate(readers) if r is not _same]

    def one(self, raw: Sequence[Any]) -> Any:
        """One typed row."""
        values = list(raw)
        for i, read in self._convert:
            values[i] = read(values[i])
        return self.tuple(*values)

    def all(self, raws: Iterable[Sequence[Any]]) -> list[Any]:
        """Typed rows."""
        return [self.one(r) for r in raws]


class Insert:
    """An INSERT of fixed columns, optionally with a conflict clause; values go in by name."""

    def __init__(self, d: Dialect, table: Table, names: Sequence[str], tail: str = "") -> None:
        self.names = tuple(names)
        columns = [table.c[n] for n in self.names]
        self._row = "(" + ", ".join(d.placeholder(c) for c in columns) + ")"
        # Names come from the models; values always go in as parameters.
        self._head = f"INSERT INTO {table.name} ({', '.join(self.names)}) VALUES "  # noqa: S608 - names from the models
        self._tail = tail
        self.sql = self._head + self._row + tail
        self._many: dict[int, str] = {}
        self._writers = [d.writer(c) for c in columns]
        self._convert = [(i, w) for i, w in enumerate(self._writers) if w is not _same]

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        """The parameters of one row, in column order, converted for the driver."""
        params = [values[n] for n in self.names]
        for i, write in self._convert:
            params[i] = write(params[i])  # each writer handles None as its type does
        return params

    def rows_sql(self, rows: int) -> str:
        """The statement for `rows` rows in one VALUES list (built once per count)."""
        sql = self._many.get(rows)
        if sql is None:
            sql = self._many[rows] = self._head + ", ".join([self._row] * rows) + self._tail
        return sql

    def many(self, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
        """The parameters of `rows_sql(len(rows))`: every row's, one after the other."""
        return [value for values in rows for value in self.params(values)]


class Transaction:
    """One transaction on a pooled driver connection; commits on a clean exit.

    On SQLite the connection runs without pysqlite's implicit transactions (see
    linkgen/storage/db.py), so this issues BEGIN IMMEDIATE / COMMIT itself, like the rest of
    linkgen; on PostgreSQL psycopg opens the transaction with the first statement.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.d = dialect(db.dialect)
        self._conn: Any = None
        self._cur: Any = None

    def __enter__(self) -> Transaction:
        try:
            self._conn = self.db.engine.raw_connection()
        except self._dbapi_error() as exc:  # the pool hands the driver's error through as is
            raise self._wrap(exc, "connect") from exc
        try:
            self._cur = self._conn.cursor()
            if self.d.sqlite:
                begin_immediate(self.execute)
        except WouldWait:
            # Refused before a transaction opened: the connection is as it was, back to the pool.
            self._conn.close()
            self._conn = None
            raise
        except BaseException:
            self._conn.invalidate()
            self._conn.close()
            self._conn = None
            raise
        return self

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; driver errors are raised as SQLAlchemy's."""
        try:
            self._cur.execute(sql, params)
        except self._dbapi_error() as exc:
            raise self._wrap(exc, sql) from exc
        return self._cur

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        """The first row of a query, or None."""
        return cast(Sequence[Any] | None, self.execute(sql, params).fetchone())

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Every row of a query."""
        return cast(list[Sequence[Any]], self.execute(sql, params).fetchall())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        try:
            if exc is None:
                try:
                    if self.d.sqlite:
                        self._cur.execute("COMMIT")
                    else:
                        conn.commit()
                except self._dbapi_error() as error:
                    self._end(conn, error)
                    raise self._wrap(error, "COMMIT") from error
            else:
                self._end(conn, exc)
        finally:
            if conn is not None:
                conn.close()  # back to the pool (or gone, when invalidated)

    def _end(self, conn: Any, exc: BaseException) -> None:
        """Roll back after a failure; drop the connection when the database says it is gone."""
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(orig, self._dbapi_error()) and self.db.engine.dialect.is_disconnect(
            cast(Any, orig), conn.dbapi_connection, self._cur
        ):
            conn.invalidate(orig)
            return
        try:
            if self.d.sqlite:
                self._cur.execute("ROLLBACK")
            else:
                conn.rollback()
        except self._dbapi_error():
            conn.invalidate()  # its state is unknown: never hand it out again

    def _dbapi_error(self) -> type[Exception]:
        return cast(type[Exception], self.db.engine.dialect.loaded_dbapi.Error)

    def _wrap(self, exc: Exception, sql: str) -> DBAPIError:
        return cast(
            DBAPIError,
            DBAPIError.instance(
                sql,
                None,
                exc,
                self._dbapi_error(),
                connection_invalidated=False,
                dialect=self.db.engine.dialect,
            ),
        )


class Executor(Protocol):
    """What the statements built here run on: a `Transaction`, `OnSession` or `OnCursor`."""

    d: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement."""

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        """The first row of a query, or None."""

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Every row of a query."""


class _Runs:
    """`fetchone` and `fetchall` over an `execute` that returns a DBAPI-like cursor."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        """The first row of a query, or None."""
        return cast(Sequence[Any] | None, self.execute(sql, params).fetchone())

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Every row of a query."""
        return cast(list[Sequence[Any]], self.execute(sql, params).fetchall())


class OnSession(_Runs):
    """The same statements inside an ORM session's transaction (the worker, tools, tests), so
    that a table family has one set of statements."""

    def __init__(self, session: Session) -> None:
        self._conn = session.connection()
        self.d = dialect(self._conn.dialect.name)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement through SQLAlchemy's driver-level call (errors as SQLAlchemy's)."""
        return self._conn.exec_driver_sql(sql, tuple(params))


class OnCursor(_Runs):
    """The same statements on a DBAPI cursor whose transaction the caller runs (the click
    writer keeps its own connection: linkgen/clicks/recorder.py)."""

    def __init__(self, d: Dialect, cursor: Any) -> None:
        self.d = d
        self._cur = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (driver errors as the driver raises them)."""
        self._cur.execute(sql, params)
        return self._cur
