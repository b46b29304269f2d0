"""Compiled operands: one side of a comparison after resolution.

A :class:`SqlOperand` is a bound literal, a SQL expression of a known
:class:`~bastion.rules.resolver.Kind`, a JSON node, or a multi-valued item source, with
the :class:`~bastion.rules.resolver.Affinity` of where it came from. How two operands
compare (SQLite's storage classes and affinity, as PocketBase experiences them) is in
:mod:`bastion.rules.values`; the helpers here turn operands into text for ``LIKE`` and
into typed SQL for function arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.rules.dialects import JsonRef, RuleDialect
from bastion.rules.resolver import Affinity, ItemsFactory, Kind

NO_VALUE: Any = object()
JSON_TEXT = "json_text"
"""Pseudo-domain: two JSON nodes are compared by their text forms."""

_NUMERIC_TEXT = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class SqlOperand:
    """One compiled side of a comparison (see the module docstring)."""

    kind: Kind
    sql: ColumnElement[Any] | None = None
    value: Any = NO_VALUE
    json: JsonRef | None = None
    items: ItemsFactory | None = None
    item_kind: Kind = Kind.TEXT
    fold: bool = True
    affinity: Affinity = Affinity.NONE
    counts: bool = False  # multi-valued counts: an empty set is one item 0 (not NULL)
    guard: ColumnElement[bool] | None = None  # ANDed to every comparison (see ResolvedField)
    shared: ColumnElement[Any] | None = None  # a multi-valued path's joined-row value (see ResolvedField)
    pattern: bool = False  # a LIKE pattern as it is, not wrapped in %...% (see Compiler._like_call)

    @property
    def is_literal(self) -> bool:
        """True for values known at compile time (bound parameters)."""
        return self.value is not NO_VALUE

    @property
    def is_empty_literal(self) -> bool:
        """``null``, ``''`` or ``""``: the values PocketBase treats as "empty"."""
        return self.is_literal and self.value in (None, "")

    @property
    def is_known_non_empty(self) -> bool:
        """A literal that is neither NULL nor the empty string."""
        return self.is_literal and not self.is_empty_literal


def literal(value: Any) -> SqlOperand:
    """An operand for a Python value (str, int, float, bool or None)."""
    if value is None:
        return SqlOperand(Kind.NULL, value=None)
    if isinstance(value, bool):
        return SqlOperand(Kind.BOOL, value=value)
    if isinstance(value, int | float):
        return SqlOperand(Kind.NUMBER, value=value)
    return SqlOperand(Kind.TEXT, value=str(value))


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as SQLite's ``lower()`` does."""
    return text.translate(_ASCII_LOWER)


def number_text(value: int | float) -> str:
    """Canonical text of a number: ``10`` not ``10.0``; no exponent for usual sizes."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def text_value(value: Any) -> str | None:
    """A literal as text: booleans as ``'1'``/``'0'``, numbers canonically."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    return number_text(value)


def numeric_text(value: str) -> float | None:
    """The number a text literal spells (SQLite's NUMERIC affinity), or None."""
    return float(value) if _NUMERIC_TEXT.fullmatch(value) else None


def in_domain(operand: SqlOperand, domain: Kind | str, dialect: RuleDialect) -> ColumnElement[Any]:
    """``operand`` as SQL of type ``domain`` (literals become typed bound parameters)."""
    if operand.is_literal:
        return _bind_literal(operand.value, domain)
    if operand.json is not None:
        if not isinstance(domain, Kind):
            return dialect.json_text(operand.json)
        return dialect.json_value(operand.json, domain)
    assert operand.sql is not None
    if domain is Kind.TEXT or domain == JSON_TEXT:
        return dialect.to_text(operand.sql, operand.kind)
    if domain is Kind.NUMBER:
        return dialect.to_number(operand.sql, operand.kind)
    return operand.sql


def as_text(operand: SqlOperand, dialect: RuleDialect) -> ColumnElement[Any]:
    """``operand`` as text of any kind (JSON nodes by their text form), for LIKE."""
    if operand.json is not None:
        return dialect.json_text(operand.json)
    return in_domain(operand, Kind.TEXT, dialect)


def _bind_literal(value: Any, domain: Kind | str) -> ColumnElement[Any]:
    if value is None:
        return sa.null()
    if domain is Kind.NUMBER:
        number = float(value) if not isinstance(value, str) else numeric_text(value)
        return sa.literal(number, sa.Float())
    if domain is Kind.BOOL:
        return sa.literal(bool(value), sa.Boolean())
    return sa.literal(text_value(value), sa.String())


def like_pattern(value: Any) -> str:
    """PocketBase's LIKE value: wrapped in ``%...%`` unless it has an unescaped ``%``.

    When wrapping, unescaped ``\\``, ``%`` and ``_`` are escaped first, so the value
    is matched literally as a substring.
    """
    text = text_value(value) or ""
    if _has_unescaped(text, "%"):
        # A dangling escape character at the end is an error on PostgreSQL.
        trailing = len(text) - len(text.rstrip("\\"))
        return text + "\\" if trailing % 2 else text
    return "%" + _escape_unescaped(text, "\\%_") + "%"


def _has_unescaped(text: str, char: str) -> bool:
    escaped = False
    for ch in text:
        if ch == char and not escaped:
            return True
        escaped = ch == "\\" and not escaped
    return False


def _escape_unescaped(text: str, chars: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        following = text[index + 1] if index + 1 < len(text) else ""
        if ch == "\\" and following and following in chars:
            out.append(ch + following)  # already escaped: keep the pair
            index += 2
            continue
        out.append("\\" + ch if ch in chars else ch)
        index += 1
    return "".join(out)
