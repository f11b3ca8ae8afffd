"""The `linkgen` command (also `flask --app app ...`)."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from linkgen import __version__
from linkgen.runtime import get_runtime


@click.group("db", help="Database migrations.")
def db_group() -> None:
    """Database commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the database to the latest schema."""
    from linkgen.factory import _install_initial_key
    from linkgen.storage.migrate import upgrade

    rt = get_runtime()
    upgrade(rt.settings.database_url, revision)
    if rt.settings.initial_api_key:
        _install_initial_key(rt, rt.settings.initial_api_key)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    from linkgen.storage.migrate import downgrade

    downgrade(get_runtime().settings.database_url, revision)
    click.echo(f"database at {revision}")


@click.command("create-user")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--role",
    type=click.Choice(["admin", "editor", "viewer"]),
    default="admin",
    show_default=True,
    help="What the user may do in the web app.",
)
@with_appcontext
def create_user_cmd(email: str, password_stdin: bool, role: str) -> None:
    """Create a user who can log in to the web app."""
    from linkgen.domain.errors import LinkgenError
    from linkgen.services.accounts import create_user

    password = _read_password(password_stdin)
    try:
        with get_runtime().db.session() as session:
            user = create_user(session, email, password, role=role)
            click.echo(f"created user {user.email} ({user.role})")
    except LinkgenError as exc:
        raise click.ClickException(exc.message) from exc


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.command("reset-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def reset_password_cmd(email: str, password_stdin: bool) -> None:
    """Give a user a new password; the user's sessions everywhere end."""
    from linkgen.domain.errors import LinkgenError
    from linkgen.services.accounts import set_password

    password = _read_password(password_stdin)
    try:
        with get_runtime().db.session() as session:
            user = set_password(session, email, password)
            click.echo(f"new password for {user.email}; their sessions were ended")
    except LinkgenError as exc:
        raise click.ClickException(exc.message) from exc


@click.command("delete-user")
@click.argument("email")
@with_appcontext
def delete_user_cmd(email: str) -> None:
    """Remove a user; the user's sessions end with them."""
    from linkgen.domain.errors import LinkgenError
    from linkgen.services.accounts import delete_user

    try:
        with get_runtime().db.session() as session:
            delete_user(session, email)
    except LinkgenError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"removed user {email.strip().lower()}")


@click.command("create-api-key")
@click.argument("name")
@click.option("--scope", type=click.Choice(["admin", "read"]), default="admin", show_default=True)
@with_appcontext
def create_api_key_cmd(name: str, scope: str) -> None:
    """Create an API key; it is printed once, on the last line."""
    from linkgen.domain.errors import LinkgenError
    from linkgen.services.accounts import create_api_key

    try:
        with get_runtime().db.session() as session:
            _, raw = create_api_key(session, name, scope=scope)
    except LinkgenError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"API key {name!r} ({scope}); store it now, it is not shown again:")
    click.echo(raw)


@click.command("revoke-api-key")
@click.argument("name")
@with_appcontext
def revoke_api_key_cmd(name: str) -> None:
    """Revoke the API keys called NAME."""
    from linkgen.domain.errors import LinkgenError
    from linkgen.services.accounts import revoke_api_key

    try:
        with get_runtime().db.session() as session:
            n = revoke_api_key(session, name)
    except LinkgenError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked {n} key(s)")


COMMANDS = [
    db_group,
    create_user_cmd,
    reset_password_cmd,
    delete_user_cmd,
    create_api_key_cmd,
    revoke_api_key_cmd,
]


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI."""
    for command in COMMANDS:
        app.cli.add_command(command)
    from linkgen import cli_ops

    cli_ops.register(app)


def _create() -> Flask:
    from linkgen.config import SettingsError
    from linkgen.factory import create_app
    from linkgen.logs import configure_logging

    try:
        app = create_app()
    except SettingsError as exc:  # a bad setting is the user's to fix: say which, no traceback
        click.echo(f"linkgen: {exc}", err=True)
        raise SystemExit(2) from exc
    configure_logging(get_runtime(app).settings)
    return app


main = FlaskGroup(
    name="linkgen",
    create_app=_create,
    add_default_commands=False,
    # Flask's option prints Flask's and Werkzeug's versions: an operator asks for linkgen's.
    add_version_option=False,
    load_dotenv=False,
    help="linkgen: OneLink-style links, attribution and CleverTap postbacks.",
)
click.version_option(__version__, "--version", prog_name="linkgen", message="%(prog)s %(version)s")(
    main
)
