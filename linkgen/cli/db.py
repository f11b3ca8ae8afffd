"""`linkgen db upgrade` / `linkgen db downgrade`: the schema migrations."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from linkgen.runtime import get_runtime


@click.group("db", help="Database migrations.")
def db_group() -> None:
    """Database commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the database to the latest schema."""
    from linkgen.services.accounts import install_initial_key
    from linkgen.storage.migrate import upgrade

    rt = get_runtime()
    upgrade(rt.settings.database_url, revision)
    if rt.settings.initial_api_key:
        install_initial_key(rt.db, rt.settings.initial_api_key)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    from linkgen.storage.migrate import downgrade

    downgrade(get_runtime().settings.database_url, revision)
    click.echo(f"database at {revision}")
