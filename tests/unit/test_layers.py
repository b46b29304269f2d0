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
    "adapters": {"tools", "rules", "core"},
    "api": {"tools", "core"},  # filters reach the rule language through core
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
    drivers = {"asyncpg", "asyncmy", "aiosqlite", "sqlite3", "starlette", "uvicorn", "typer", "httpx", "redis"}
    bad = []
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in drivers]
    assert not bad, bad


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(root: Path) -> dict[str, set[str]]:
    """Each module of the package at ``root`` -> the modules of it that it imports
    (``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module)."""
    paths = {_module_name(root, p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join([*base, node.module] if node.module else base)
                found.update(f"{module}.{a.name}" if f"{module}.{a.name}" in paths else module
                             for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _cycles_within_layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules of one layer that import one another in a ring (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if _layer(target) != _layer(module):
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            ring = []
            while not ring or ring[-1] != module:
                ring.append(stack.pop())
            if len(ring) > 1:
                cycles.append(sorted(ring))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles_inside_a_layer():
    assert not _cycles_within_layers(_module_imports(PACKAGE))


def test_the_cycle_check_finds_a_ring(tmp_path):
    root = tmp_path / "pkg"
    (root / "core").mkdir(parents=True)
    for name, source in {"__init__": "", "core/__init__": "", "core/a": "from pkg.core import b\n",
                         "core/b": "from . import c\n", "core/c": "import pkg.core.a\n"}.items():
        (root / f"{name}.py").write_text(source, encoding="utf-8")
    assert _cycles_within_layers(_module_imports(root)) == [["pkg.core.a", "pkg.core.b", "pkg.core.c"]]
