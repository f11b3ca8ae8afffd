"""Decoding QR codes in tests with zbar (Debian's libzbar0, through pyzbar).

Without libzbar the tests that decode are skipped, saying how to get it, and the rest of their
module still runs; LINKGEN_TEST_REQUIRE_ZBAR=1 (set by .ci/run) turns the skip into a failure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

REQUIRE_ZBAR = os.environ.get("LINKGEN_TEST_REQUIRE_ZBAR", "") in ("1", "true", "yes")


def decode(image: Any) -> list[str]:
    """The texts of the QR codes in a Pillow image."""
    try:
        from pyzbar import pyzbar
    except ImportError:  # pyzbar is installed, but libzbar0 is not: an ImportError, not a skip
        message = "QR decoding tests: apt-get install libzbar0 to run them"
        if REQUIRE_ZBAR:
            pytest.fail(message + " (LINKGEN_TEST_REQUIRE_ZBAR is set)")
        pytest.skip(message)
    return [symbol.data.decode("utf-8") for symbol in pyzbar.decode(image)]
