"""deploy/: the systemd units pass `systemd-analyze verify` (unknown keys and missing programs
included) and the environment file example is accepted by the settings parser."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linkgen.config import REPO_ROOT, Settings

DEPLOY = REPO_ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALLED_AT = "/opt/linkgen/.venv/bin/linkgen"


def test_both_units_exist() -> None:
    assert [u.name for u in UNITS] == ["linkgen-worker.service", "linkgen.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this checkout's linkgen.
    linkgen = Path(sys.executable).with_name("linkgen")
    assert linkgen.exists()
    copies = []
    for unit in UNITS:
        text = unit.read_text()
        assert INSTALLED_AT in text
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED_AT, str(linkgen)))
        copies.append(str(copy))
    proc = subprocess.run(
        ["systemd-analyze", "verify", *copies],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Unknown keys and bad values are only warnings to systemd: any output is a failure here.
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stderr


def test_units_read_the_example_environment_file_and_run_the_two_commands() -> None:
    serve, worker = (DEPLOY / "systemd" / n for n in ("linkgen.service", "linkgen-worker.service"))
    for unit in (serve, worker):
        assert "EnvironmentFile=/etc/linkgen/linkgen.env" in unit.read_text()
    assert f"ExecStart={INSTALLED_AT} serve --no-worker" in serve.read_text()
    assert f"ExecStart={INSTALLED_AT} worker" in worker.read_text()
    assert "After=network-online.target postgresql.service linkgen.service" in worker.read_text()


def test_environment_example_is_accepted() -> None:
    env: dict[str, str] = {}
    for line in (DEPLOY / "linkgen.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    settings = Settings.from_env(env)  # unknown or malformed names raise, naming the variable
    assert settings.run_worker is False  # the worker has its own unit
    assert settings.link_domains == ("go.example.com",)
    assert settings.retention_days == 90
