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


def test_readme_links_the_integration_guide_on_its_first_screen() -> None:
    first_screen = "\n".join(README.splitlines()[:15])
    assert "](docs/integrate/README.md)" in first_screen
    assert "](docs/sdk-contract.md)" in first_screen


def test_integration_guide_pages_exist_and_their_links_resolve() -> None:
    guide = ROOT / "docs" / "integrate"
    pages = {p.name for p in guide.glob("*.md")}
    assert {
        "README.md",
        "android.md",
        "ios.md",
        "react-native.md",
        "server-to-server.md",
        "clevertap.md",
    } <= pages
    for page in [*guide.glob("*.md"), ROOT / "docs" / "sdk-contract.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), (page.name, target)


def test_uncompiled_snippets_say_so() -> None:
    """Kotlin and Swift cannot be compiled here: every such snippet is marked."""
    for name in ("android.md", "ios.md"):
        text = (ROOT / "docs" / "integrate" / name).read_text()
        blocks = re.findall(r"```(kotlin|swift|xml)\n(.*?)```", text, flags=re.S)
        assert blocks, name
        for _, body in blocks:
            assert "Not compiled or tested here" in body, (name, body[:60])
