"""Imports point one way: tools <- rules <- core <- adapters/api <- cli (see docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bastion"

# layer -> the bastion layers it may import (besides itself)
ALLOWED = {
    "tools": set(),
    "rules": {"tools"},
    "core": {"tools", "rules"},
    "adapters": {"tools", "core"},
    "api": {"tools", "rules", "core"},
    "cli": {"tools", "rules", "core", "adapters", "api"},
    "testing": {"tools", "rules", "core", "adapters", "api"},  # bastion.testing: apps for tests
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m.split(".")[1] for m in found if m.startswith("bastion.") and m.count(".") >= 1}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports(layer):
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for target in _imports(path) - {layer, "__init__"} - ALLOWED[layer]:
            bad.append(f"{path.relative_to(PACKAGE)} imports bastion.{target}")
    assert not bad, "\n".join(bad)


def test_core_does_not_import_drivers():
    drivers = {"asyncpg", "asyncmy", "aiosqlite", "sqlite3", "starlette", "uvicorn", "typer"}
    bad = []
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in drivers]
    assert not bad, bad
