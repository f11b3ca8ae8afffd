"""Dependencies point inward: linkgen/domain imports no Flask, SQLAlchemy or httpx."""

from __future__ import annotations

import ast
from pathlib import Path

import linkgen

DOMAIN = Path(linkgen.__file__).parent / "domain"
FORBIDDEN = ("flask", "sqlalchemy", "httpx", "werkzeug", "alembic", "psycopg", "granian")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_is_pure() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert files, "domain package not found"
    offenders = {
        str(p.relative_to(DOMAIN)): sorted(_imports(p) & set(FORBIDDEN))
        for p in files
        if _imports(p) & set(FORBIDDEN)
    }
    assert offenders == {}


def test_the_walker_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import flask\nfrom sqlalchemy.orm import Session\n")
    assert _imports(probe) >= {"flask", "sqlalchemy"}


# Which of linkgen's own packages each layer may import (docs/architecture.md, "Layers").
# `services` may use `clicks.detect`: the one user-agent classifier, shared by clicks and launches.
# `threads` (linkgen/threads.py, the OS-named thread) is a leaf every layer but `domain` may use.
ALLOWED: dict[str, set[str]] = {
    "domain": {"domain"},
    "storage": {"domain", "storage", "threads"},
    "services": {"domain", "storage", "services", "clicks.detect", "threads"},
    "clicks": {"domain", "storage", "services", "clicks", "threads"},
    "delivery": {"domain", "storage", "services", "delivery", "threads"},
}


def _own_imports(path: Path) -> set[str]:
    """The linkgen modules a file imports, as `package` or `package.module` below linkgen."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("linkgen."))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("linkgen.")
        ):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {name.removeprefix("linkgen.") for name in names}


def _allowed(target: str, allowed: set[str]) -> bool:
    return any(target == a or target.startswith(f"{a}.") for a in allowed)


def test_layers_point_inward() -> None:
    root = Path(linkgen.__file__).parent
    offenders: dict[str, list[str]] = {}
    for layer, allowed in ALLOWED.items():
        for path in sorted((root / layer).rglob("*.py")):
            bad = []
            for target in _own_imports(path):
                parent = target.rsplit(".", 1)[0]
                # `from linkgen.services import postbacks` names a module: either spelling counts.
                if not (_allowed(target, allowed) or _allowed(parent, allowed)):
                    bad.append(target)
            if bad:
                offenders[str(path.relative_to(root))] = sorted(bad)
    assert offenders == {}


def test_the_layer_check_sees_an_outward_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from linkgen.web.ui import bp\nimport linkgen.storage.db\n")
    imports = _own_imports(probe)
    assert "web.ui" in imports and "storage.db" in imports
    assert not _allowed("web.ui", ALLOWED["services"])
    assert _allowed("storage.db", ALLOWED["services"])


def test_no_module_imports_another_modules_private_names() -> None:
    """`from linkgen.x import _name` reaches into another module's insides: make it public."""
    root = Path(linkgen.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if node.module.startswith("linkgen"):
                private = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
                if private:
                    offenders.append(f"{path.relative_to(root)}: {node.module} {private}")
    assert offenders == []
