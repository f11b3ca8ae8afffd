"""linkgen: OneLink-style links for CleverTap campaigns, with attribution and postbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Any = None) -> Flask:
    """Build the Flask application (see linkgen.factory)."""
    from linkgen.factory import create_app as _create_app

    return _create_app(settings)


__all__ = ["__version__", "create_app"]
