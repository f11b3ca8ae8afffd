"""Operations commands: retention, the reports' click rollups, backup and restore."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from flask.cli import with_appcontext


@click.command("retention")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(31, 3650),
    default=90,
    show_default=True,
    help="Delete raw clicks and launches older than this many days (reports keep counting).",
)
@click.option("--batch", type=click.IntRange(100, 1_000_000), default=10_000, show_default=True)
@with_appcontext
def retention_cmd(days: int, batch: int) -> None:
    """Delete raw clicks and launches past every attribution window."""
    from linkgen.runtime import get_runtime
    from linkgen.services.retention import delete_before
    from linkgen.storage.types import utcnow

    cutoff = utcnow() - timedelta(days=days)
    deleted = delete_before(get_runtime().db, cutoff, batch=batch)
    click.echo(
        f"deleted {deleted['clicks']} click(s) and {deleted['launches']} launch(es) "
        f"older than {cutoff:%Y-%m-%d %H:%M}Z"
    )


@click.command("rollup-clicks")
@click.option("--batch", type=click.IntRange(100, 1_000_000), default=None, help="Clicks per step.")
@with_appcontext
def rollup_clicks_cmd(batch: int | None) -> None:
    """Roll up every settled click not rolled up yet (a backfill; the worker does it too)."""
    from linkgen.runtime import get_runtime
    from linkgen.services import rollups

    def _progress(step: rollups.StepResult) -> None:
        if step.last_id // 100_000 != (step.last_id - step.clicks) // 100_000:
            click.echo(f"rolled up to click {step.last_id}", err=True)  # every 100,000

    total = rollups.catch_up(get_runtime().db, batch=batch or rollups.BATCH, progress=_progress)
    click.echo(f"rolled up {total} click(s)")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_cmd(path: Path) -> None:
    """Write a consistent copy of the database to PATH while linkgen keeps running."""
    from linkgen.runtime import get_runtime
    from linkgen.services import backup

    url = get_runtime().settings.database_url
    source = backup.sqlite_path(url)
    try:
        if source is not None:
            size = backup.backup_sqlite(source, path)
            click.echo(f"backed up {source} to {path} ({size:,} bytes)")
        else:
            size = backup.backup_postgres(url, path)
            click.echo(f"backed up the PostgreSQL database to {path} ({size:,} bytes, pg_dump)")
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def restore_cmd(path: Path) -> None:
    """Replace the database with the backup at PATH (stop serve and worker first)."""
    from linkgen.runtime import get_runtime
    from linkgen.services import backup

    rt = get_runtime()
    url = rt.settings.database_url
    target = backup.sqlite_path(url)
    # This command's own connections (and checkpointer) must not count as "in use".
    rt.db.dispose()
    try:
        if target is not None:
            revision = backup.restore_sqlite(path, target, url)
            _, heads = backup.known_revisions(url)
            click.echo(f"restored {path} to {target} (schema revision {revision})")
            if revision not in heads:
                click.echo("the backup's schema is older than this linkgen: run linkgen db upgrade")
        else:
            backup.run_pg(backup.pg_restore_command(url, path))
            click.echo(f"restored {path} into the PostgreSQL database (pg_restore)")
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [retention_cmd, rollup_clicks_cmd, backup_cmd, restore_cmd]
