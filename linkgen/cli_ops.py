"""Operations commands: serve, worker, import/export (registered on the app's CLI)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach the operations commands."""
    from linkgen.server import serve_cmd

    app.cli.add_command(serve_cmd)
