"""`linkgen backup PATH` and `linkgen restore PATH`.

SQLite: a live database in WAL mode is two files whose state only SQLite knows, so `cp` can copy
a torn database. A backup goes through SQLite's online backup API in one step: it reads one
consistent snapshot (every transaction committed before it started, nothing after) under a
read transaction, which in WAL mode does not hold up the writers. The copy is checked
(`PRAGMA integrity_check`) and only then renamed onto PATH, so PATH is either the old file or a
complete new one.

A restore checks the file the same way and that its schema revision is one of linkgen's
migrations, refuses while any process still has the target database open (the only way to
leave SQLite's WAL mode is to be its only connection, which is what it tries), then renames a
copy into place: a crash midway leaves the old database whole.

PostgreSQL: `pg_dump` / `pg_restore` do this job; linkgen runs them when they are on PATH and
otherwise says exactly what to run. The password travels in PGPASSWORD, never on a command line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from linkgen.storage.migrate import alembic_config


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says what to do."""


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def known_revisions(database_url: str) -> tuple[set[str], set[str]]:
    """(every migration revision linkgen has, the head revisions)."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    return {r.revision for r in script.walk_revisions()}, set(script.get_heads())


def _tmp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_sqlite_file(path: Path, database_url: str) -> str:
    """Check a SQLite file's integrity and schema revision; returns the revision."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened as a SQLite database: {exc}") from exc
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        if result != ["ok"]:
            raise BackupError(f"{path} is damaged: {'; '.join(result[:5])}")
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.Error:
            raise BackupError(f"{path} is not a linkgen database (no schema revision)") from None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database: {exc}") from exc
    finally:
        conn.close()
    revisions, _ = known_revisions(database_url)
    found = [str(r[0]) for r in rows]
    if len(found) != 1 or found[0] not in revisions:
        raise BackupError(
            f"{path} has schema revision {', '.join(found) or 'none'}, which this version of "
            "linkgen does not know (a newer linkgen made it: restore with that version)"
        )
    return found[0]


def backup_sqlite(source: Path, dest: Path) -> int:
    """Write a consistent copy of the SQLite database `source` to `dest`; returns its size."""
    if not source.exists():
        raise BackupError(f"{source} does not exist: nothing to back up")
    if dest.resolve() == source.resolve():
        raise BackupError("the backup must not overwrite the database itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(dest)
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(tmp)
        try:
            # pages=-1: the whole database in one step, i.e. one read snapshot. Stepping would
            # let writers in between steps, and each of their commits restarts the copy.
            src.backup(dst, pages=-1)
            ok = dst.execute("PRAGMA integrity_check").fetchone()
            # The copy is one self-contained file: no WAL beside it until it is opened again.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    if ok is None or ok[0] != "ok":
        tmp.unlink(missing_ok=True)
        raise BackupError("the copy failed its integrity check; the database may be damaged")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(dest)
    _fsync_dir(dest.parent)
    return dest.stat().st_size


def _refuse_if_open(target: Path) -> None:
    """Fail when any other connection (any process) has `target` open."""
    conn = sqlite3.connect(target, timeout=0, isolation_level=None)
    try:
        # Leaving WAL mode needs exclusive use of the database: SQLite refuses it with "database
        # is locked" while another connection (a server, a worker) has it open.
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
    except sqlite3.OperationalError as exc:
        raise BackupError(
            f"{target} is in use: stop linkgen serve and linkgen worker first ({exc})"
        ) from exc
    finally:
        conn.close()
    if mode is None or str(mode[0]).lower() != "delete":
        raise BackupError(f"{target} is in use: stop linkgen serve and linkgen worker first")


def restore_sqlite(backup: Path, target: Path, database_url: str) -> str:
    """Put the backup file in place of the database `target`; returns its schema revision."""
    if not backup.is_file():
        raise BackupError(f"{backup} does not exist")
    revision = check_sqlite_file(backup, database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(target)
    shutil.copyfile(backup, tmp)
    try:
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        if target.exists():
            _refuse_if_open(target)
        # No process has it open, and leaving WAL mode folded its WAL in: nothing else to move.
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return revision


# ---- PostgreSQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgCommand:
    """A pg_dump / pg_restore invocation: arguments, and the password for PGPASSWORD."""

    args: list[str]
    password: str | None

    def shell(self) -> str:
        """The command line to show an operator (the password as an environment variable)."""
        prefix = "PGPASSWORD=... " if self.password else ""
        return prefix + shlex.join(self.args)


def _pg_connection_args(database_url: str) -> tuple[list[str], str | None]:
    url = make_url(database_url)
    args = []
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    args += ["--dbname", url.database or "postgres"]
    # linkgen's own tests (and some deployments) pick a schema with options=-csearch_path=...
    options = url.query.get("options", ())
    for option in (options,) if isinstance(options, str) else options:
        for part in unquote(option).split():
            if part.startswith("-csearch_path="):
                args += ["--schema", part.split("=", 1)[1]]
    return args, url.password


def pg_dump_command(database_url: str, dest: Path) -> PgCommand:
    """pg_dump in its custom format (what pg_restore reads), without owners or privileges."""
    conn, password = _pg_connection_args(database_url)
    return PgCommand(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(dest), *conn],
        password,
    )


def pg_restore_command(database_url: str, source: Path) -> PgCommand:
    """pg_restore into the configured database, replacing what it holds, in one transaction."""
    conn, password = _pg_connection_args(database_url)
    return PgCommand(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            *conn,
            str(source),
        ],
        password,
    )


def run_pg(command: PgCommand, shown: PgCommand | None = None) -> None:
    """Run a pg_dump / pg_restore command; without the program, raise BackupError saying what to
    run (`shown`, when the command run differs from the one an operator would type)."""
    if shutil.which(command.args[0]) is None:
        raise BackupError(
            f"{command.args[0]} is not on PATH (Debian: apt-get install postgresql-client); "
            f"run this instead:\n  {(shown or command).shell()}"
        )
    env = dict(os.environ)
    if command.password:
        env["PGPASSWORD"] = command.password
    proc = subprocess.run(  # noqa: S603 - fixed program, arguments from the settings
        command.args, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BackupError(
            f"{command.args[0]} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )


def backup_postgres(database_url: str, dest: Path) -> int:
    """pg_dump the database to `dest` (through a file beside it, renamed when complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(dest)
    try:
        run_pg(pg_dump_command(database_url, tmp), shown=pg_dump_command(database_url, dest))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    _fsync_dir(dest.parent)
    return dest.stat().st_size
