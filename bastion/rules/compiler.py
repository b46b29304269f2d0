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
  operators need one; under a plain operator every row of an ``@collection`` must match;
- values compare by SQLite's storage classes and column affinity, as described in
  :mod:`bastion.rules.values`.
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

from bastion.rules import ast, values
from bastion.rules.dialects import JsonRef, RuleDialect, get_dialect
from bastion.rules.errors import FilterError
from bastion.rules.functions import compile_call
from bastion.rules.macros import macro_value
from bastion.rules.operands import (
    SqlOperand,
    as_text,
    ascii_lower,
    like_pattern,
    literal,
)
from bastion.rules.parser import parse
from bastion.rules.resolver import (
    Affinity,
    FieldResolver,
    ItemsFactory,
    ItemSource,
    Kind,
    ResolvedField,
)


def compile_filter(
    expr: ast.Expr | str,
    resolver: FieldResolver,
    dialect_name: str | RuleDialect,
    *,
    now: datetime | None = None,
) -> ColumnElement[bool]:
    """Compile ``expr`` (a tree or filter text) to a WHERE condition for ``dialect_name``
    (an engine's name or its dialect object).

    ``now`` fixes the time used by macros such as ``@now`` (default: the current time).
    Raises :class:`~bastion.rules.errors.FilterError` for unknown fields, unsupported
    modifiers or functions the dialect cannot express.
    """
    tree = parse(expr) if isinstance(expr, str) else expr
    compiler = _Compiler(resolver, get_dialect(dialect_name), now or datetime.now(UTC))
    return compiler.expression(tree)


class _Compiler:
    def __init__(self, resolver: FieldResolver, dialect: RuleDialect, now: datetime) -> None:
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
        if node.op.base in (ast.Op.LIKE, ast.Op.NLIKE) and isinstance(node.right, ast.Call):
            return self._like_call(node, node.right)
        left, right = self.operand(node.left), self.operand(node.right)
        if left.items is not None or right.items is not None:
            return self.multi(left, node.op, right)
        guards = [side.guard for side in (left, right) if side.guard is not None]
        condition = self.scalar(left, node.op.base, right)
        return sa.and_(condition, *guards) if guards else condition

    def _like_call(self, node: ast.Comparison, call: ast.Call) -> ColumnElement[bool]:
        """``x ~ fn(...)`` as PocketBase builds it: the LIKE wrapping goes to the values
        the function is given (its quoted strings, numbers and macros each become
        ``%...%`` unless they hold a ``%``), and the function's result is the pattern as
        it is. A call given fields only is wrapped as a whole, as a field is. A wrapped
        number is no number, so ``geoDistance`` given one is NULL, as on SQLite."""
        left = self.operand(node.left)
        if not any(_is_value(arg) for arg in call.args):
            right = self.operand(call)
        elif call.name == "geoDistance":
            right = literal(None)
        else:
            args = tuple(_like_argument(arg, self.now) for arg in call.args)
            right = replace(self.operand(replace(call, args=args)), pattern=True)
        if left.items is not None or right.items is not None:
            return self.multi(left, node.op, right)
        return self.like(left, right, negate=node.op.base is ast.Op.NLIKE)

    # -- operands ------------------------------------------------------------------

    def operand(self, node: ast.Operand) -> SqlOperand:
        if isinstance(node, ast.Literal):
            value = node.value  # a filter's numbers are floating point, as in PocketBase
            return literal(float(value) if isinstance(value, int) and not isinstance(value, bool) else value)
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
            affinity = Affinity.NONE if field.computed else _column_affinity(field.item_kind)
            return SqlOperand(field.item_kind, items=items, item_kind=field.item_kind, affinity=affinity,
                              counts=field.counts, shared=field.shared)
        if field.array:  # compared as a whole: its JSON text, in a column of numeric affinity
            return SqlOperand(Kind.TEXT, sql=self.dialect.array_text(field.expr), affinity=Affinity.NUMERIC)
        if field.json_path is not None or field.kind is Kind.JSON:
            return SqlOperand(
                Kind.JSON, json=JsonRef(field.expr, field.json_path or ()), fold=False
            )
        affinity = Affinity.NONE if field.computed else _column_affinity(field.kind)
        return SqlOperand(field.kind, sql=field.expr, affinity=affinity, guard=field.guard)

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
        return SqlOperand(field.item_kind, items=items, item_kind=field.item_kind, shared=field.shared)

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

            shared = operand.shared
            if shared is not None:
                shared = self.dialect.ascii_lower(self.dialect.to_text(shared, kind))
            return SqlOperand(Kind.TEXT, items=lowered, item_kind=Kind.TEXT, shared=shared)
        text = self.dialect.ascii_lower(as_text(operand, self.dialect))
        return SqlOperand(Kind.TEXT, sql=text, fold=operand.fold, guard=operand.guard)

    # -- scalar comparisons ----------------------------------------------------------

    def scalar(self, left: SqlOperand, op: ast.Op, right: SqlOperand) -> ColumnElement[bool]:
        if op in (ast.Op.EQ, ast.Op.NEQ):
            return self.equality(left, right, negate=op is ast.Op.NEQ)
        if op in (ast.Op.LIKE, ast.Op.NLIKE):
            return self.like(left, right, negate=op is ast.Op.NLIKE)
        a, b = self._typed(left, right)
        return values.compare(a, b, op)

    def _value(self, operand: SqlOperand) -> values.Value:
        """``operand`` as its number and text forms (see :mod:`bastion.rules.values`)."""
        if operand.is_literal:
            return values.literal_value(operand.value)
        dialect = self.dialect
        if operand.json is not None:
            ref = operand.json
            number = sa.func.coalesce(
                dialect.json_value(ref, Kind.NUMBER),
                dialect.to_number(dialect.json_value(ref, Kind.BOOL), Kind.BOOL))
            return values.Value(num=number, text=sa.case((number.is_(None), dialect.json_text(ref))))
        assert operand.sql is not None
        if operand.kind in (Kind.NUMBER, Kind.BOOL):
            return values.Value(num=dialect.to_number(operand.sql, operand.kind))
        return values.Value(text=operand.sql)

    def _typed(self, left: SqlOperand, right: SqlOperand) -> tuple[values.Value, values.Value]:
        return values.with_affinity(
            self._value(left), left.affinity, self._value(right), right.affinity, self.dialect)

    def equality(self, left: SqlOperand, right: SqlOperand, negate: bool) -> ColumnElement[bool]:
        """PocketBase's ``=`` and ``!=`` (``!=`` is always ``IS NOT``): JSON values compare
        with ``IS``; a known non-empty literal directly; an empty literal (``''``, ``null``)
        as "empty or NULL"; two fields with NULL read as ``''``, without affinity."""
        if not (left.fold and right.fold):
            equal = values.null_safe_equal(*self._typed(left, right))
            return sa.not_(equal) if negate else equal
        if left.is_empty_literal and right.is_empty_literal:
            return sa.false() if negate else sa.true()
        if left.is_known_non_empty or right.is_known_non_empty:
            left, right = (literal("") if side.is_empty_literal else side for side in (left, right))
            a, b = self._typed(left, right)
            return sa.not_(values.null_safe_equal(a, b)) if negate else values.compare(a, b, ast.Op.EQ)
        if left.is_empty_literal or right.is_empty_literal:
            other = right if left.is_empty_literal else left
            a, empty = self._typed(other, literal(""))
            if negate:
                return sa.and_(sa.not_(a.is_null()), values.compare(a, empty, ast.Op.NEQ))
            return sa.or_(values.compare(a, empty, ast.Op.EQ), a.is_null())
        a, b = values.empty_or_null(self._value(left)), values.empty_or_null(self._value(right))
        return values.compare(a, b, ast.Op.NEQ if negate else ast.Op.EQ)

    def like(self, left: SqlOperand, right: SqlOperand, negate: bool) -> ColumnElement[bool]:
        if right.kind is Kind.NULL:  # ``x LIKE NULL`` and ``x NOT LIKE NULL`` are both unknown
            return sa.false()
        text = as_text(left, self.dialect)
        if right.pattern:
            pattern: ColumnElement[Any] = as_text(right, self.dialect)
        elif right.is_literal:
            pattern = sa.literal(like_pattern(right.value), sa.String())
        else:
            percent = sa.literal("%", sa.String())
            pattern = self.dialect.concat(percent, as_text(right, self.dialect), percent)
        return self.dialect.like(text, pattern, negate)

    # -- multi-valued comparisons ------------------------------------------------------

    def multi(self, left: SqlOperand, op: ast.Op, right: SqlOperand) -> ColumnElement[bool]:
        """Any-of (``?``) or all-of comparison with one or two multi-valued sides."""
        sides = [left, right]
        multi_sides = [index for index, side in enumerate(sides) if side.items is not None]
        if op.is_any and all(sides[index].shared is not None for index in multi_sides):
            # PocketBase's main query: each path's one joined row, shared across the filter
            a, b = (SqlOperand(side.item_kind, sql=side.shared, affinity=side.affinity)
                    if side.items is not None else side for side in sides)
            return self.scalar(a, op.base, b)

        def matching(chosen: dict[int, SqlOperand]) -> ColumnElement[bool]:
            a, b = (chosen.get(index, side) for index, side in enumerate(sides))
            return self.scalar(a, op.base, b)

        found = self._exists_virtual(sides, multi_sides, matching)
        if op.is_any:
            return found
        # Every item, as PocketBase reads it: some item matches and none fails, where an
        # item the comparison cannot decide (NULL: a related record's empty list) fails
        # nothing. Against one value, PocketBase checks the items with that value's NULL
        # read as '' (a JSON value included), as it does for any field.
        checked = list(sides)
        if len(multi_sides) == 1:
            other = 1 - multi_sides[0]
            checked[other] = replace(sides[other], fold=True)

        def failing(chosen: dict[int, SqlOperand]) -> ColumnElement[bool]:
            a, b = (chosen.get(index, side) for index, side in enumerate(checked))
            return sa.not_(self.scalar(a, op.base, b))

        return sa.and_(found, sa.not_(self._exists_virtual(checked, multi_sides, failing)))

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
            chosen: dict[int, SqlOperand] = {}
            froms: list[Any] = []
            wheres: list[ColumnElement[bool]] = []
            for index, empty in zip(multi_sides, empties, strict=True):
                side = sides[index]
                assert side.items is not None
                if empty:
                    conditions.append(sa.not_(self._exists(side.items())))
                    chosen[index] = literal(0) if side.counts else SqlOperand(
                        side.item_kind, sql=self.dialect.typed_null(side.item_kind), affinity=side.affinity
                    )
                    continue
                source = side.items()
                froms.extend(source.froms)
                wheres.extend(source.where)
                chosen[index] = SqlOperand(side.item_kind, sql=source.value, affinity=side.affinity)
            matched = predicate(chosen)
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


def _column_affinity(kind: Kind) -> Affinity:
    """A column's affinity by what it stores (PocketBase declares text columns TEXT and
    number, bool and JSON columns NUMERIC, BOOLEAN or JSON)."""
    return Affinity.TEXT if kind is Kind.TEXT else Affinity.NUMERIC


def _is_value(node: ast.Operand) -> bool:
    """Whether PocketBase passes ``node`` to SQL as a bound value (quoted strings,
    numbers, macros; ``true``, ``false`` and ``null`` are SQL words there)."""
    if isinstance(node, ast.Macro):
        return True
    return isinstance(node, ast.Literal) and node.value is not None and not isinstance(node.value, bool)


def _like_argument(node: ast.Operand, now: datetime) -> ast.Operand:
    if isinstance(node, ast.Macro):
        return ast.Literal(like_pattern(macro_value(node.name, now)), node.pos)
    if isinstance(node, ast.Literal) and _is_value(node):
        return ast.Literal(like_pattern(node.value), node.pos)
    return node
