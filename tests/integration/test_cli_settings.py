"""A bad setting stops every command with a message naming the variable, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LINKGEN_PORT", "abc"),
        ("LINKGEN_DATABSE_URL", "sqlite://"),
        ("LINKGEN_PUBLIC_SCHEME", "ftp"),
    ],
)
def test_bad_setting_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKGEN_")}
    env.update({"LINKGEN_INSTANCE_PATH": str(tmp_path), variable: value})
    proc = subprocess.run(
        [sys.executable, "-m", "linkgen", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert variable in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version_is_linkgens_own(tmp_path: Path) -> None:
    from linkgen import __version__

    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKGEN_")}
    env["LINKGEN_INSTANCE_PATH"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "linkgen", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"linkgen {__version__}"
    assert "Flask" not in proc.stdout
