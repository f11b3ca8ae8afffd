"""The `linkgen` command (also `flask --app app ...`): one module per group of commands.

- `db`: migrations; `accounts`: users and API keys; `serve`: the web server, its processes and
  the postback worker's supervision; `worker`: the postback worker and replays; `links`:
  import and QR export; `ops`: retention, backup, restore; `check`: the preflight check.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

from linkgen import __version__
from linkgen.runtime import get_runtime


def init_app(app: Flask) -> None:
    """Register every command on the app's CLI."""
    from linkgen.cli import accounts, check, db, links, ops, serve, worker

    commands = [
        db.db_group,
        *accounts.COMMANDS,
        serve.serve_cmd,
        *worker.COMMANDS,
        *links.COMMANDS,
        *ops.COMMANDS,
        check.check_cmd,
    ]
    for command in commands:
        app.cli.add_command(command)


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
