"""`linkgen serve`'s metrics directory: fresh and private, named for children, gone at the end;
dead processes' live gauges removed, live ones and every counter kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from linkgen.web import metrics_dir
from linkgen.web.metrics import MULTIPROC_ENV


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_directory_is_fresh_private_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "someone-elses"))
    monkeypatch.setattr(metrics_dir.tempfile, "tempdir", None)  # re-read TMPDIR
    path = metrics_dir.create()
    assert path.parent == tmp_path and list(path.iterdir()) == []
    assert path.stat().st_mode & 0o777 == 0o700
    assert os.environ[MULTIPROC_ENV] == str(path)
    assert MULTIPROC_ENV not in metrics_dir.environ_without()
    (path / "counter_123.db").write_bytes(b"")
    metrics_dir.remove(path)
    assert not path.exists()
    assert MULTIPROC_ENV not in os.environ


def test_only_dead_processes_are_marked_dead(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    files = [
        f"gauge_liveall_{dead}.db",
        f"gauge_livemax_{dead}.db",
        f"counter_{dead}.db",
        f"histogram_{dead}.db",
        f"gauge_liveall_{alive}.db",
        f"counter_{alive}.db",
    ]
    for name in files:
        (tmp_path / name).write_bytes(b"")
    assert metrics_dir.mark_dead_processes(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            f"counter_{dead}.db",
            f"histogram_{dead}.db",
            f"gauge_liveall_{alive}.db",
            f"counter_{alive}.db",
        ]
    )
