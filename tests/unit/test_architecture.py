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
