"""Engine knowledge lives in the engine objects, and every class has a name of its own.

Code that builds SQL asks the engine object (``core.ports.DatabaseEngine``, its rule
dialect ``rules``) what the engine can do; comparing the engine's name elsewhere would
spread one engine over many files again (docs/contributing.md).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "bastion"

ENGINE_NAMES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb"}

# The engine objects themselves, and the URL scheme picking one.
ALLOWED = {
    "rules/dialects.py",
    "adapters/database.py",
    "adapters/db_base.py",
    "adapters/db_sqlite.py",
    "adapters/db_postgres.py",
    "adapters/db_mysql.py",
}


def _names_in(node: ast.expr) -> set[str]:
    """Engine names written as string literals in ``node`` (or in a literal tuple, list
    or set of them, as in ``x in ("sqlite", "postgresql")``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value.lower()} & ENGINE_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_names_in(item) for item in node.elts))
    return set()


def _engine_comparisons(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            names = set().union(*(_names_in(side) for side in (node.left, *node.comparators)))
            if names:
                found.append(f"{where}:{node.lineno} compares with {sorted(names)}")
    return found


def test_no_engine_name_comparisons_outside_the_engine_objects():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module not in ALLOWED:
            bad += _engine_comparisons(path.read_text(encoding="utf-8"), module)
    assert not bad, "ask the engine object (db.sql, db.sql.rules) instead:\n" + "\n".join(bad)


def test_the_check_finds_comparisons():
    source = 'x = db.sql.name != "sqlite" or name in ("mysql", "other")\ny = "PostgreSQL" == name\n'
    assert len(_engine_comparisons(source, "sample")) == 3


def test_no_two_classes_share_a_name():
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    shared = {name: places for name, places in where.items() if len(places) > 1}
    assert not shared, shared
