"""Operations commands: serve, worker, import/export, retention (on the app's CLI)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import with_appcontext


def register(app: Flask) -> None:
    """Attach the operations commands."""
    from linkgen.server import serve_cmd

    app.cli.add_command(serve_cmd)

    from linkgen.cli_links import COMMANDS as link_commands

    for command in link_commands:
        app.cli.add_command(command)

    from linkgen.delivery.worker import COMMANDS as delivery_commands

    for command in delivery_commands:
        app.cli.add_command(command)

    app.cli.add_command(retention_cmd)


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
