"""Each concept has one owner: a field type is asked what it can do, never its name.

Outside ``bastion/core/fields/`` no module compares a field's type name: not
``f.TYPE == "relation"``, not ``f.TYPE in ("json", "geoPoint")``, not ``a.TYPE != b.TYPE``,
and not ``x.type == "<a field type>"`` or ``entry.get("type") == "<a field type>"``. Such code asks the class instead
(``isinstance(f, RelationField)``) or a capability it declares (``f.SECRET``,
``f.SORTABLE``, ``f.FILTER_KIND``, ``f.modifier_keys()``, ``f.json_schema()``...).
"""

from __future__ import annotations

import ast
from pathlib import Path

from bastion.core.fields import FIELD_TYPES

PACKAGE = Path(__file__).resolve().parents[2] / "bastion"
FIELDS = PACKAGE / "core" / "fields"


def _literals(node: ast.expr) -> list[str] | None:
    """The strings ``node`` spells out (one literal, or a tuple, list or set of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
        items = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return items if len(items) == len(node.elts) else None
    return None


def _attr(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == name


def _type_of(node: ast.expr) -> bool:
    """``X.type`` or ``X.get("type")``: a type that may be a field's or another thing's."""
    if _attr(node, "type"):
        return True
    return (isinstance(node, ast.Call) and _attr(node.func, "get") and bool(node.args)
            and _literals(node.args[0]) == ["type"])


def _names_field_type(node: ast.expr) -> bool:
    names = _literals(node)
    return bool(names) and bool(set(names or ()) & set(FIELD_TYPES))


def _offends(a: ast.expr, b: ast.expr) -> bool:
    # ``X.TYPE`` is a field class's type name: any comparison of it is one. Other
    # ``type`` values (a collection's "auth", a token's "auth") count only against a field
    # type's name.
    return _attr(a, "TYPE") or (_type_of(a) and _names_field_type(b))


def type_name_comparisons(source: str) -> list[int]:
    """Line numbers of the comparisons of a field type name in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Match) and (_attr(node.subject, "TYPE") or _type_of(node.subject)):
            found.append(node.lineno)  # ``match f.TYPE: case "relation": ...``
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for left, right in zip(operands, operands[1:], strict=False):
            if _offends(left, right) or _offends(right, left):
                found.append(node.lineno)
    return sorted(set(found))


def test_no_type_name_comparison_outside_core_fields():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if FIELDS in path.parents:
            continue
        bad += [f"{path.relative_to(PACKAGE)}:{line}"
                for line in type_name_comparisons(path.read_text(encoding="utf-8"))]
    assert not bad, "ask the field class or a capability instead:\n" + "\n".join(bad)


def test_the_check_finds_each_form():
    samples = [
        'f.TYPE == "relation"', 'f.TYPE != "password"', 'f.TYPE in ("json", "geoPoint")',
        'f.TYPE not in {"text", "number"}', '"file" == f.TYPE', "old.TYPE != new.TYPE",
        'wanted == f.TYPE', 'f.type == "relation"', 'f.type in ["bool", "number"]',
        'match f.TYPE:\n    case "file":\n        pass', 'spec.get("type") != "text"',
        'entry.get("type") == "password"',
    ]
    for sample in samples:
        assert type_name_comparisons(sample) == [1], sample


def test_the_check_leaves_other_comparisons():
    for sample in ('self.type == "auth"', 'col.type in ("view", "base")', 'f.name == "relation"',
                   'claims.get("type") != "auth"', "f.SECRET is True", 'data.get("kind") == "text"'):
        assert type_name_comparisons(sample) == [], sample
