"""Users and API keys from the command line: create-user, reset-password, delete-user,
create-api-key, revoke-api-key."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from linkgen.runtime import get_runtime


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
    """Remove a user; the user's sessions end with them. The last admin stays."""
    from linkgen.domain.errors import LinkgenError
    from linkgen.services.accounts import user_by_email
    from linkgen.services.team import remove_user

    try:
        with get_runtime().db.session() as session:
            remove_user(session, user_by_email(session, email).id)  # the web app's rule too
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
    create_user_cmd,
    reset_password_cmd,
    delete_user_cmd,
    create_api_key_cmd,
    revoke_api_key_cmd,
]
