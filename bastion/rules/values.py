"""How PocketBase compares two values: SQLite's storage classes and column affinity,
reproduced on every database.

PocketBase runs its filters on SQLite, so their answers follow SQLite's rules:

- A value is NULL, a number or text (a JSON array or object is its text). Values of
  different classes are never equal, and every number sorts before every text, so
  ``meta.a > 1`` holds for the JSON string ``"1"`` and ``strftime('%Y', d) = 2024`` never
  does (strftime gives text).
- A column has an *affinity* that converts the other side before comparing: a text
  column reads a number as text (a filter's numbers are floating point, so ``title =
  10`` compares with ``"10.0"``), a number or bool column reads numeric text as a number
  (``n = "10"``). Literals, functions, modifiers (``:lower``, ``:each``, ``:length``) and
  JSON values have none.

A :class:`Value` holds one side as two SQL expressions, its number form and its text form,
each NULL on rows where the value is not of that class; :func:`compare` then joins the
cases. Columns of one class (most of them) have only one form, so the SQL stays a plain
comparison that indexes serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.rules import ast
from bastion.rules.dialects import RuleDialect
from bastion.rules.operands import numeric_text
from bastion.rules.resolver import Affinity, Kind

NO_LITERAL: Any = object()


@dataclass(frozen=True, slots=True)
class Value:
    """One side of a comparison: its number form and its text form (``None``: never of
    that class), and the Python value when it is known at compile time."""

    num: ColumnElement[Any] | None = None
    text: ColumnElement[Any] | None = None
    literal: Any = NO_LITERAL

    @property
    def is_literal(self) -> bool:
        return self.literal is not NO_LITERAL

    def is_null(self) -> ColumnElement[bool]:
        if self.is_literal:
            return sa.true() if self.literal is None else sa.false()
        parts = [part.is_(None) for part in (self.num, self.text) if part is not None]
        return sa.and_(*parts) if parts else sa.true()


def literal_value(value: Any) -> Value:
    """A literal: text, a number (a bool is 1 or 0, as SQLite stores it) or NULL."""
    if value is None:
        return Value(literal=None)
    if isinstance(value, bool):
        value = 1 if value else 0
    if isinstance(value, int | float):
        return Value(num=sa.literal(float(value), sa.Float()), literal=value)
    return Value(text=sa.literal(str(value), sa.String()), literal=str(value))


def real_text(value: int | float) -> str:
    """A number as SQLite writes it as text: a filter's numbers are REAL (``10.0``),
    integers (booleans, macros such as ``@year``) stay ``10``."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value)}.0"
    text = format(value, ".15g")
    return text if any(c in text for c in ".en") else text + ".0"


def numeric_affinity(value: Value, dialect: RuleDialect) -> Value:
    """``value`` as a number or bool column reads it: numeric text becomes a number."""
    if value.is_literal:
        if isinstance(value.literal, str):
            number = numeric_text(value.literal)
            return value if number is None else Value(num=sa.literal(number, sa.Float()), literal=number)
        return value
    if value.text is None:
        return value
    as_number = dialect.to_number(value.text, Kind.TEXT)
    num = as_number if value.num is None else sa.func.coalesce(value.num, as_number)
    return Value(num=num, text=sa.case((as_number.is_(None), value.text)))


def text_affinity(value: Value, dialect: RuleDialect) -> Value:
    """``value`` as a text column reads it: a number becomes its text."""
    if value.is_literal:
        if isinstance(value.literal, int | float) and not isinstance(value.literal, bool):
            text = real_text(value.literal)
            return Value(text=sa.literal(text, sa.String()), literal=text)
        return value
    if value.num is None:
        return value
    as_text = dialect.to_text(value.num, Kind.NUMBER)
    return Value(text=as_text if value.text is None else sa.func.coalesce(value.text, as_text))


def with_affinity(
    left: Value, left_affinity: Affinity, right: Value, right_affinity: Affinity, dialect: RuleDialect
) -> tuple[Value, Value]:
    """SQLite's conversions before a comparison: a numeric side makes a text or untyped
    side numeric; otherwise a text side makes an untyped side text."""
    if left_affinity is Affinity.NUMERIC and right_affinity is not Affinity.NUMERIC:
        return left, numeric_affinity(right, dialect)
    if right_affinity is Affinity.NUMERIC and left_affinity is not Affinity.NUMERIC:
        return numeric_affinity(left, dialect), right
    if left_affinity is Affinity.TEXT and right_affinity is Affinity.NONE:
        return left, text_affinity(right, dialect)
    if right_affinity is Affinity.TEXT and left_affinity is Affinity.NONE:
        return text_affinity(left, dialect), right
    return left, right


_APPLY = {
    ast.Op.EQ: lambda a, b: a == b,
    ast.Op.NEQ: lambda a, b: a != b,
    ast.Op.GT: lambda a, b: a > b,
    ast.Op.GTE: lambda a, b: a >= b,
    ast.Op.LT: lambda a, b: a < b,
    ast.Op.LTE: lambda a, b: a <= b,
}
# "number OP text" when the classes differ: every number sorts before every text.
_NUMBER_VS_TEXT = {ast.Op.EQ: False, ast.Op.NEQ: True, ast.Op.GT: False, ast.Op.GTE: False,
                   ast.Op.LT: True, ast.Op.LTE: True}
_TEXT_VS_NUMBER = {ast.Op.EQ: False, ast.Op.NEQ: True, ast.Op.GT: True, ast.Op.GTE: True,
                   ast.Op.LT: False, ast.Op.LTE: False}


_UNKNOWN: ColumnElement[bool] = sa.type_coerce(sa.null(), sa.Boolean())


def compare(left: Value, right: Value, op: ast.Op) -> ColumnElement[bool]:
    """``left OP right`` by storage class; NULL when either side is NULL."""
    if left.is_literal and right.is_literal:
        return _literal_compare(left.literal, right.literal, op)
    cases: list[tuple[ColumnElement[bool], ColumnElement[bool]]] = []
    for a, b, same in ((left.num, right.num, True), (left.text, right.text, True),
                       (left.num, right.text, False), (left.text, right.num, False)):
        if a is None or b is None:
            continue
        guards = [side.is_not(None) for side, literal in ((a, left.is_literal), (b, right.is_literal))
                  if not literal]
        if same:
            result: ColumnElement[bool] = _APPLY[op](a, b)
        else:
            outcome = (_NUMBER_VS_TEXT if a is left.num else _TEXT_VS_NUMBER)[op]
            result = sa.true() if outcome else sa.false()
        cases.append((sa.and_(*guards) if guards else sa.true(), result))
    if not cases:
        return _UNKNOWN  # one side is NULL
    if len(cases) == 1:
        guard, result = cases[0]
        if result is not sa.true() and result is not sa.false():
            return result  # a plain comparison: NULL propagates by itself
        return sa.case((guard, result))
    return sa.case(*cases)


def _literal_compare(a: Any, b: Any, op: ast.Op) -> ColumnElement[bool]:
    if a is None or b is None:
        return _UNKNOWN
    a_number, b_number = isinstance(a, int | float), isinstance(b, int | float)
    if a_number != b_number:
        outcome = (_NUMBER_VS_TEXT if a_number else _TEXT_VS_NUMBER)[op]
    else:
        outcome = bool(_APPLY[op](a, b))
    return sa.true() if outcome else sa.false()


def null_safe_equal(left: Value, right: Value) -> ColumnElement[bool]:
    """``left IS right``: two NULLs are equal, a NULL and a value are not."""
    if left.is_literal and right.is_literal and None in (left.literal, right.literal):
        return sa.true() if left.literal is None and right.literal is None else sa.false()
    if left.is_literal and right.is_literal:
        return compare(left, right, ast.Op.EQ)
    for a, b in ((left.num, right.num), (left.text, right.text)):
        one_class = (left.num is None) != (left.text is None) and (right.num is None) != (right.text is None)
        if one_class and a is not None and b is not None:  # one class on both sides: plain IS
            return a.is_not_distinct_from(b)
    both_null = sa.and_(left.is_null(), right.is_null())
    return sa.func.coalesce(compare(left, right, ast.Op.EQ), both_null, type_=sa.Boolean())


def empty_or_null(value: Value) -> Value:
    """``COALESCE(value, '')``: NULL reads as the empty text (and loses its affinity)."""
    if value.is_literal:
        return literal_value("" if value.literal is None else value.literal)
    empty = sa.literal("", sa.String())
    if value.text is None:
        assert value.num is not None
        return Value(num=value.num, text=sa.case((value.num.is_(None), empty)))
    if value.num is None:
        return Value(text=sa.func.coalesce(value.text, empty))
    return Value(num=value.num, text=sa.case((value.num.is_(None), sa.func.coalesce(value.text, empty))))
