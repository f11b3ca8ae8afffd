"""Docs and code agree: every setting is documented, every documented setting exists."""

from __future__ import annotations

import re
from pathlib import Path

from linkgen.config import KNOWN_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = sorted(v for v in KNOWN_VARIABLES if v not in README)
    assert missing == []


def test_every_setting_the_readme_names_exists() -> None:
    named = set(re.findall(r"`(LINKGEN_[A-Z_]+)`", README))
    unknown = sorted(
        v for v in named if v not in KNOWN_VARIABLES and not v.startswith("LINKGEN_TEST_")
    )
    assert unknown == []


def test_readme_names_the_two_commands_and_the_docs() -> None:
    assert "make run" in README and "make test" in README
    for doc in re.findall(r"\]\((docs/[^)#]+)\)", README):
        assert (ROOT / doc).exists(), doc
