"""Compile a filter tree to a parameterised SQLAlchemy condition.

``compile_filter(expr, resolver, dialect_name)`` walks the tree, asks the resolver what
each identifier means, and builds a boolean ``ColumnElement`` for ``sqlite``,
``postgresql`` or ``mysql`` (MariaDB). Every value is a bound parameter.

PocketBase semantics implemented here:

- ``=`` / ``!=`` fold NULL and ``''`` together (``x = ""`` matches both, ``x != "a"``
  matches NULL, i.e. ``IS NOT``); JSON nodes compare with plain ``IS`` / ``IS NOT``;
- ``~`` / ``!~`` are ``LIKE ... ESCAPE '\\'``, ASCII case-insensitive, with the value
  wrapped in ``%...%`` unless it contains an unescaped ``%``;
- multi-valued operands: plain operators need every item to match (an empty set is
  one NULL item, so at least one item must exist for most comparisons), ``?``
  operators need one;
- type coercion as described in :mod:`bastion.rules.operands`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import product
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.rules import ast
from bastion.rules.dialects import JsonRef, SqlDialect, get_dialect
from bastion.rules.errors import FilterError
from bastion.rules.functions import compile_call
from bastion.rules.macros import macro_value
from bastion.rules.operands import (
    SqlOperand,
    as_text,
    ascii_lower,
    common_domain,
    in_domain,
    like_pattern,
    literal,
    number_vs_word,
)
from bastion.rules.parser import parse
from bastion.rules.resolver import FieldResolver, ItemsFactory, ItemSource, Kind, ResolvedField

_ORDERING: dict[ast.Op, Callable[[Any, Any], ColumnElement[bool]]] = {
    ast.Op.GT: lambda a, b: a > b,
    ast.Op.GTE: lambda a, b: a >= b,
    ast.Op.LT: lambda a, b: a < b,
    ast.Op.LTE: lambda a, b: a <= b,
}
# For "number OP non-numeric text": numbers sort before text in SQLite.
_NUMBER_FIRST = {ast.Op.GT: False, ast.Op.GTE: False, ast.Op.LT: True, ast.Op.LTE: True}


def compile_filter(
    expr: ast.Expr | str,
    resolver: FieldResolver,
    dialect_name: str,
    *,
    now: datetime | None = None,
) -> ColumnElement[bool]:
    """Compile ``expr`` (a tree or filter text) to a WHERE condition for ``dialect_name``.

    ``now`` fixes the time used by macros such as ``@now`` (default: the current time).
    Raises :class:`~bastion.rules.errors.FilterError` for unknown fields, unsupported
    modifiers or functions the dialect cannot express.
    """
    tree = parse(expr) if isinstance(expr, str) else expr
    compiler = _Compiler(resolver, get_dialect(dialect_name), now or datetime.now(UTC))
    return compiler.expression(tree)


class _Compiler:
    def __init__(self, resolver: FieldResolver, dialect: SqlDialect, now: datetime) -> None:
        self.resolver = resolver
        self.dialect = dialect
        self.now = now

    # -- boolean structure -------------------------------------------------------

    def expression(self, node: ast.Expr) -> ColumnElement[bool]:
        if isinstance(node, ast.And):
            return sa.and_(*(self.expression(item) for item in node.items))
        if isinstance(node, ast.Or):
            return sa.or_(*(self.expression(item) for item in node.items))
        return self.comparison(node)

    def comparison(self, node: ast.Comparison) -> ColumnElement[bool]:
        condition = self._comparison(node)
        every_row = getattr(self.resolver, "every_row", None)
        if node.op.is_any or every_row is None or not _names_collection(node):
            return condition
        return sa.and_(condition, every_row(lambda: self._comparison(node)))

    def _comparison(self, node: ast.Comparison) -> ColumnElement[bool]:
        left, right = self.operand(node.left), self.operand(node.right)
        if left.items is not None or right.items is not None:
            return self.multi(left, node.op, right)
        return self.scalar(left, node.op.base, right)

    # -- operands ------------------------------------------------------------------

    def operand(self, node: ast.Operand) -> SqlOperand:
        if isinstance(node, ast.Literal):
            return literal(node.value)
        if isinstance(node, ast.Macro):
            return literal(macro_value(node.name, self.now))
        if isinstance(node, ast.Call):
            return compile_call(node, self.operand, self.dialect)
        try:
            field = self.resolver.resolve(node)
            return self.field_operand(field, node)
        except FilterError as error:
            raise error.at(node.pos, f'field "{node.text}"') from None

    def field_operand(self, field: ResolvedField, node: ast.Identifier) -> SqlOperand:
        modifier = None if field.modifier_applied else node.modifier
        if modifier in ("isset", "changed"):
            raise FilterError(f"the :{modifier} modifier is only supported on @request.* fields")
        if modifier == "length":
            return self._length(field)
        if modifier == "each":
            return self._each(field)
        base = self._plain(field)
        return self._lower(base) if modifier == "lower" else base

    def _plain(self, field: ResolvedField) -> SqlOperand:
        if field.is_literal:
            return literal(field.value)
        if field.multi:
            items = field.items or self._array_items(field.expr, field.item_kind)
            return SqlOperand(field.item_kind, items=items, item_kind=field.item_kind)
        if field.array:  # compared as a whole: its JSON text
            return SqlOperand(Kind.TEXT, sql=self.dialect.array_text(field.expr))
        if field.json_path is not None or field.kind is Kind.JSON:
            return SqlOperand(
                Kind.JSON, json=JsonRef(field.expr, field.json_path or ()), fold=False
            )
        return SqlOperand(field.kind, sql=field.expr)

    def _array_items(self, array: ColumnElement[Any], item_kind: Kind) -> ItemsFactory:
        return lambda: self.dialect.json_items(array, item_kind)

    def _length(self, field: ResolvedField) -> SqlOperand:
        if field.is_literal and field.array:
            return literal(len(json.loads(field.value)))
        if (field.array or field.multi) and field.items is None and not field.is_literal:
            return SqlOperand(Kind.NUMBER, sql=self.dialect.array_length(field.expr))
        raise FilterError("the :length modifier needs a multi-valued field")

    def _each(self, field: ResolvedField) -> SqlOperand:
        if field.is_literal and field.array:
            items = self._array_items(sa.literal(field.value, sa.String()), field.item_kind)
        elif (field.array or field.multi) and field.items is None:
            items = self._array_items(field.expr, field.item_kind)
        else:
            raise FilterError("the :each modifier needs a multi-valued field")
        return SqlOperand(field.item_kind, items=items, item_kind=field.item_kind)

    def _lower(self, operand: SqlOperand) -> SqlOperand:
        if operand.is_literal:
            value = operand.value
            return literal(ascii_lower(value) if isinstance(value, str) else value)
        if operand.items is not None:
            factory, kind = operand.items, operand.item_kind

            def lowered() -> ItemSource:
                source = factory()
                text = self.dialect.to_text(source.value, kind)
                return replace(source, value=self.dialect.ascii_lower(text))

            return SqlOperand(Kind.TEXT, items=lowered, item_kind=Kind.TEXT)
        text = self.dialect.ascii_lower(as_text(operand, self.dialect))
        return SqlOperand(Kind.TEXT, sql=text, fold=operand.fold)

    # -- scalar comparisons ----------------------------------------------------------

    def scalar(self, left: SqlOperand, op: ast.Op, right: SqlOperand) -> ColumnElement[bool]:
        if op in (ast.Op.EQ, ast.Op.NEQ):
            return self.equality(left, right, negate=op is ast.Op.NEQ)
        if op in (ast.Op.LIKE, ast.Op.NLIKE):
            return self.like(left, right, negate=op is ast.Op.NLIKE)
        return self.ordering(left, op, right)

    def ordering(self, left: SqlOperand, op: ast.Op, right: SqlOperand) -> ColumnElement[bool]:
        if Kind.NULL in (left.kind, right.kind):
            return sa.false()  # "x < NULL" is never true
        if number_vs_word(left, right):
            number_side = left if left.kind is not Kind.TEXT else right
            holds = _NUMBER_FIRST[op] == (number_side is left)
            return self._not_null(number_side) if holds else sa.false()
        domain = common_domain(left, right)
        return _ORDERING[op](
            in_domain(left, domain, self.dialect), in_domain(right, domain, self.dialect)
        )

    def _not_null(self, operand: SqlOperand) -> ColumnElement[bool]:
        if operand.is_literal:
            return sa.true()
        return in_domain(operand, operand.kind, self.dialect).is_not(None)

    def equality(self, left: SqlOperand, right: SqlOperand, negate: bool) -> ColumnElement[bool]:
        if left.is_empty_literal and right.is_empty_literal:
            return sa.false() if negate else sa.true()
        if not (left.fold and right.fold):
            return self._strict_equality(left, right, negate)
        if left.is_known_non_empty or right.is_known_non_empty:
            return self._direct_equality(left, right, negate)
        if right.is_empty_literal:
            return self._is_empty(left, negate)
        if left.is_empty_literal:
            return self._is_empty(right, negate)
        return self._field_equality(left, right, negate)

    def _direct_equality(
        self, left: SqlOperand, right: SqlOperand, negate: bool
    ) -> ColumnElement[bool]:
        if number_vs_word(left, right):
            return sa.true() if negate else sa.false()
        left, right = (literal("") if side.is_empty_literal else side for side in (left, right))
        domain = common_domain(left, right)
        a, b = in_domain(left, domain, self.dialect), in_domain(right, domain, self.dialect)
        return a.is_distinct_from(b) if negate else a == b

    def _is_empty(self, operand: SqlOperand, negate: bool) -> ColumnElement[bool]:
        sql = in_domain(operand, operand.kind, self.dialect)
        if operand.kind is not Kind.TEXT:
            return sql.is_not(None) if negate else sql.is_(None)
        empty = sa.literal("", sa.String())
        if negate:
            return sa.and_(sql != empty, sql.is_not(None))
        return sa.or_(sql == empty, sql.is_(None))

    def _field_equality(
        self, left: SqlOperand, right: SqlOperand, negate: bool
    ) -> ColumnElement[bool]:
        domain = common_domain(left, right)
        a, b = in_domain(left, domain, self.dialect), in_domain(right, domain, self.dialect)
        if domain is Kind.TEXT:
            empty = sa.literal("", sa.String())
            a, b = sa.func.coalesce(a, empty), sa.func.coalesce(b, empty)
            return a != b if negate else a == b
        return a.is_distinct_from(b) if negate else a.is_not_distinct_from(b)

    def _strict_equality(
        self, left: SqlOperand, right: SqlOperand, negate: bool
    ) -> ColumnElement[bool]:
        if Kind.NULL in (left.kind, right.kind):
            other = right if left.kind is Kind.NULL else left
            is_null = self._is_null(other)
            return sa.not_(is_null) if negate else is_null
        domain = common_domain(left, right)
        a, b = in_domain(left, domain, self.dialect), in_domain(right, domain, self.dialect)
        return a.is_distinct_from(b) if negate else a.is_not_distinct_from(b)

    def _is_null(self, operand: SqlOperand) -> ColumnElement[bool]:
        if operand.json is not None:
            return self.dialect.json_is_null(operand.json)
        return in_domain(operand, operand.kind, self.dialect).is_(None)

    def like(self, left: SqlOperand, right: SqlOperand, negate: bool) -> ColumnElement[bool]:
        if right.kind is Kind.NULL:  # ``x LIKE NULL`` and ``x NOT LIKE NULL`` are both unknown
            return sa.false()
        text = as_text(left, self.dialect)
        if right.is_literal:
            pattern: ColumnElement[Any] = sa.literal(like_pattern(right.value), sa.String())
        else:
            percent = sa.literal("%", sa.String())
            pattern = self.dialect.concat(percent, as_text(right, self.dialect), percent)
        return self.dialect.like(text, pattern, negate)

    # -- multi-valued comparisons ------------------------------------------------------

    def multi(self, left: SqlOperand, op: ast.Op, right: SqlOperand) -> ColumnElement[bool]:
        """Any-of (``?``) or all-of comparison with one or two multi-valued sides."""
        sides = [left, right]
        multi_sides = [index for index, side in enumerate(sides) if side.items is not None]

        def predicate(values: dict[int, SqlOperand]) -> ColumnElement[bool]:
            a, b = (values.get(index, side) for index, side in enumerate(sides))
            condition = self.scalar(a, op.base, b)
            if op.is_any:
                return condition
            # a violating item: the condition is false or unknown (NULL)
            return sa.not_(sa.func.coalesce(condition, sa.false(), type_=sa.Boolean()))

        found = self._exists_virtual(sides, multi_sides, predicate)
        return found if op.is_any else sa.not_(found)

    def _exists_virtual(
        self,
        sides: Sequence[SqlOperand],
        multi_sides: Sequence[int],
        predicate: Callable[[dict[int, SqlOperand]], ColumnElement[bool]],
    ) -> ColumnElement[bool]:
        """EXISTS over the item sets, where an empty set contributes one NULL item.

        Split by which sets are empty: each case is "those sets are empty, and some
        combination of the other sets' items (NULL for the empty ones) matches".
        """
        cases = []
        for empties in product((False, True), repeat=len(multi_sides)):
            conditions: list[ColumnElement[bool]] = []
            values: dict[int, SqlOperand] = {}
            froms: list[Any] = []
            wheres: list[ColumnElement[bool]] = []
            for index, empty in zip(multi_sides, empties, strict=True):
                side = sides[index]
                assert side.items is not None
                if empty:
                    conditions.append(sa.not_(self._exists(side.items())))
                    values[index] = SqlOperand(
                        side.item_kind, sql=self.dialect.typed_null(side.item_kind)
                    )
                    continue
                source = side.items()
                froms.extend(source.froms)
                wheres.extend(source.where)
                values[index] = SqlOperand(side.item_kind, sql=source.value)
            matched = predicate(values)
            if froms:
                matched = (
                    sa.select(sa.literal_column("1"))
                    .select_from(*froms)
                    .where(*wheres, matched)
                    .exists()
                )
            cases.append(sa.and_(*conditions, matched))
        return sa.or_(*cases)

    def _exists(self, source: Any) -> ColumnElement[bool]:
        return (
            sa.select(sa.literal_column("1"))
            .select_from(*source.froms)
            .where(*source.where)
            .exists()
        )


def _names_collection(node: ast.Comparison) -> bool:
    """Whether an operand is an ``@collection.*`` reference (see ``every_row``)."""
    return any(isinstance(side, ast.Identifier) and side.name.startswith("@collection.")
               for side in (node.left, node.right))
