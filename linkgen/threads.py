"""linkgen's own threads, known to the OS by their names.

A Python thread's name stays inside Python: `top -H`, `ps -L`, `perf` and /proc see the OS
thread's name, which a new thread inherits from the one that started it. So the click writer,
started by whichever pool thread took the first click, showed as `linkgen-link-5`, and its
work was counted as that pool's. Every thread linkgen starts is a `Thread` from here: its OS
name is its Python name (Linux only; the kernel keeps 15 bytes, which each name here fits).

A leaf module: it imports nothing of linkgen, so every layer may use it.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading

log = logging.getLogger("linkgen")

_PR_SET_NAME = 15  # prctl(2): name the calling thread
OS_NAME_BYTES = 15


class Thread(threading.Thread):
    """A `threading.Thread` that gives its OS thread its name before it runs its target."""

    def run(self) -> None:
        name_os_thread(self.name)
        super().run()


def name_os_thread(name: str) -> None:
    """Give the calling OS thread this name (Linux; its first 15 bytes)."""
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(
            _PR_SET_NAME, name.encode()[:OS_NAME_BYTES], 0, 0, 0
        )
    except (OSError, AttributeError):
        log.debug("could not name the OS thread %s", name)
