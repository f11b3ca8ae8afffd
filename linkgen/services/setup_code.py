"""The one-time setup code that opens the first-run page (/setup) to a client that is not local.

`linkgen serve` calls `issue` at start while no user exists: a fresh random code is printed in
its log and only its SHA-256 is kept, in `instance/setup_code` (mode 600), where every web
worker of that serve can check it. The page takes it until the first user is made: then
`clear` removes the file (and `issue` removes a stale one when users exist). A new start of
`serve` replaces the code. From loopback the page needs no code (see linkgen/web/ui/auth.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

FILE_NAME = "setup_code"
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read from a log, typed by hand
GROUPS = 4  # 4 groups of 4 characters: 80 random bits


def _path(instance: Path) -> Path:
    return instance / FILE_NAME


def _normal(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def _digest(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def issue(instance: Path) -> str:
    """Make a new code, keep its hash in the instance folder, and return the code."""
    code = "-".join("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(GROUPS))
    instance.mkdir(parents=True, exist_ok=True)
    path = _path(instance)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(_digest(code) + "\n")
    tmp.replace(path)
    return code


def check(instance: Path, given: str | None) -> bool:
    """Is `given` the current code (dashes, spaces and case do not matter)?"""
    if not given or not _normal(given):
        return False
    try:
        stored = _path(instance).read_text().strip()
    except OSError:
        return False
    return hmac.compare_digest(stored.encode(), _digest(given).encode())


def clear(instance: Path) -> None:
    """End the code (the first user exists)."""
    with contextlib.suppress(FileNotFoundError):
        _path(instance).unlink()
