"""`linkgen serve` migrates in a child interpreter: alembic stays out of the web processes.

granian forks the web processes from `serve`'s own process, so whatever that process imported
is in every one of them: alembic, when `serve` migrated in-process, was about 10 MB of each
(benchmarks/memory.py). These run in fresh interpreters, as `serve` does, because this test
process has imported alembic long ago.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from linkgen.storage.migrate import MIGRATIONS

HEAD_FILES = sorted(p.name for p in (MIGRATIONS / "versions").glob("0*.py"))


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        [(revision,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(revision)


def test_serve_migrates_a_new_database_without_importing_alembic(tmp_path: Path) -> None:
    db = tmp_path / "linkgen.db"
    done = _python(
        f"""
        import sys
        from linkgen.config import Settings
        from linkgen.cli.serve import migrate_apart
        migrate_apart(Settings(database_url={f"sqlite:///{db}"!r}, secret_key=""))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "mako")))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # this process never imported alembic
    assert _revision(db).startswith(HEAD_FILES[-1][:4])  # the newest migration is in
    assert "Running upgrade" in done.stderr  # the child logged as serve logs


def test_a_failed_migration_stops_serve_and_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "linkgen.db"
    broken.write_bytes(b"this is not a SQLite database, it only has the name of one" * 100)
    done = _python(
        f"""
        import click
        from linkgen.config import Settings
        from linkgen.cli.serve import migrate_apart
        try:
            migrate_apart(Settings(database_url={f"sqlite:///{broken}"!r}, secret_key=""))
        except click.ClickException as exc:
            print("refused:", exc.message)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "refused: could not migrate the database" in done.stdout
    assert "the database migration failed" in done.stderr
    assert "not a database" in done.stderr  # the cause, from the child's log
    assert broken.read_bytes().startswith(b"this is not a SQLite database")  # left as it was


def test_the_child_takes_the_database_url_on_stdin_not_in_its_arguments(tmp_path: Path) -> None:
    """`ps` shows arguments; a PostgreSQL URL may carry a password."""
    db = tmp_path / "stdin.db"
    job = {"database_url": f"sqlite:///{db}", "log_level": "WARNING", "log_format": "json"}
    from linkgen.cli.serve import MIGRATION_CHILD

    done = subprocess.run(
        [sys.executable, "-c", MIGRATION_CHILD],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert str(db) not in MIGRATION_CHILD
    assert _revision(db).startswith(HEAD_FILES[-1][:4])


def test_the_app_a_web_process_makes_does_not_import_alembic(tmp_path: Path) -> None:
    """The CLI is registered on every app; its commands import alembic only when they run."""
    done = _python(
        f"""
        import sys
        from linkgen.config import Settings
        from linkgen.factory import create_app
        create_app(Settings(database_url={f"sqlite:///{tmp_path / 'app.db'}"!r},
                            secret_key="x" * 32, run_worker=False))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "mako")))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
