"""Operations commands: serve, worker, import/export (registered on the app's CLI)."""

from __future__ import annotations

from flask import Flask


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
