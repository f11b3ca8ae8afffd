"""linkgen/threads.py: every thread linkgen starts is known to the OS by its own name."""

from __future__ import annotations

import ast
import sys
import threading
import time
from pathlib import Path

import pytest

import linkgen
from linkgen.clicks.recorder import ClickRecorder
from linkgen.threads import OS_NAME_BYTES, Thread

ROOT = Path(linkgen.__file__).parent


def _os_name() -> str:
    return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()


@pytest.mark.skipif(sys.platform != "linux", reason="OS thread names are read from /proc")
def test_a_thread_gives_the_os_its_name_not_its_starters() -> None:
    seen: list[str] = []

    def inner() -> None:
        seen.append(_os_name())

    def outer() -> None:
        seen.append(_os_name())
        child = Thread(target=inner, name="linkgen-inner")
        child.start()
        child.join(timeout=10)

    thread = Thread(target=outer, name="linkgen-outer")
    thread.start()
    thread.join(timeout=10)
    assert seen == ["linkgen-outer", "linkgen-inner"]


@pytest.mark.skipif(sys.platform != "linux", reason="OS thread names are read from /proc")
def test_a_plain_thread_inherits_its_starters_name_which_is_why_this_module_exists() -> None:
    """What the click writer did before: started from a pool thread, the OS called it that."""
    seen: list[str] = []

    def outer() -> None:
        child = threading.Thread(target=lambda: seen.append(_os_name()))
        child.start()
        child.join(timeout=10)

    thread = Thread(target=outer, name="linkgen-starter")
    thread.start()
    thread.join(timeout=10)
    assert seen == ["linkgen-starter"]


def _thread_names() -> dict[str, list[str]]:
    """Each module's `Thread(..., name="...")` names, and plain `threading.Thread` calls."""
    found: dict[str, list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            plain = (
                isinstance(func, ast.Attribute)
                and func.attr == "Thread"
                and isinstance(func.value, ast.Name)
                and func.value.id == "threading"
            )
            ours = isinstance(func, ast.Name) and func.id == "Thread"
            if not (plain or ours):
                continue
            names = [
                kw.value.value
                for kw in node.keywords
                if kw.arg == "name"
                and isinstance(kw.value, ast.Constant)
                and isinstance(kw.value.value, str)
            ]
            key = str(path.relative_to(ROOT))
            found.setdefault(key, []).extend(
                ["<threading.Thread>"] if plain else names or ["<computed>"]
            )
    return found


def test_every_thread_linkgen_starts_is_an_os_named_one_that_fits() -> None:
    found = _thread_names()
    assert found, "the scan found no threads at all"
    plain = sorted(module for module, names in found.items() if "<threading.Thread>" in names)
    assert plain == [], "start linkgen.threads.Thread instead, so the OS knows its name"
    too_long = [
        name
        for names in found.values()
        for name in names
        if not name.startswith("<") and len(name.encode()) > OS_NAME_BYTES
    ]
    assert too_long == [], f"the kernel keeps {OS_NAME_BYTES} bytes of a thread's name"


@pytest.mark.skipif(sys.platform != "linux", reason="OS thread names are read from /proc")
def test_the_click_writer_is_named_for_the_os(tmp_path: Path) -> None:
    from linkgen.storage.db import Database

    db = Database(f"sqlite:///{tmp_path / 'names.db'}")
    recorder = ClickRecorder(db)
    try:
        recorder._start()  # what the first click does
        writer = recorder._thread
        assert writer is not None
        comm = Path(f"/proc/self/task/{writer.native_id}/comm")
        deadline = time.monotonic() + 10
        while comm.read_text().strip() != "linkgen-clicks" and time.monotonic() < deadline:
            time.sleep(0.01)  # the thread names itself as it begins to run
        assert comm.read_text().strip() == "linkgen-clicks"
    finally:
        recorder.stop()
        db.dispose()
