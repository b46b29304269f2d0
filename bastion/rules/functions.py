"""Filter functions: ``geoDistance(lonA, latA, lonB, latB)`` and ``strftime(format, ...)``.

``geoDistance`` is the great-circle distance in kilometres on a sphere of radius
6371 km; its arguments are numbers or single-valued fields (NULL in, NULL out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.rules import ast
from bastion.rules.dialects import RuleDialect
from bastion.rules.errors import FilterError
from bastion.rules.operands import SqlOperand, in_domain, literal
from bastion.rules.resolver import Kind
from bastion.rules.strftime import time_backend

OperandCompiler = Callable[[ast.Operand], SqlOperand]
"""Compiles one argument (an AST operand) to a :class:`SqlOperand`."""

EARTH_RADIUS_KM = 6371.0


def compile_call(
    call: ast.Call, compile_operand: OperandCompiler, dialect: RuleDialect
) -> SqlOperand:
    """Compile a function call to an operand (the parser has checked name and arity)."""
    if call.name == "geoDistance":
        return _geo_distance(call, compile_operand, dialect)
    return _strftime(call, compile_operand, dialect)


def _single_valued(call: ast.Call, index: int, compile_operand: OperandCompiler) -> SqlOperand:
    operand = compile_operand(call.args[index])
    if operand.items is not None:
        raise FilterError(
            f'Invalid argument {index + 1} of "{call.name}" at position {call.args[index].pos}: '
            "multi-valued fields are not supported here",
            call.args[index].pos,
        )
    return operand


def _geo_distance(
    call: ast.Call, compile_operand: OperandCompiler, dialect: RuleDialect
) -> SqlOperand:
    coordinates = []
    for index, node in enumerate(call.args):
        operand = _single_valued(call, index, compile_operand)
        if operand.kind is Kind.TEXT and operand.is_literal:
            raise FilterError(
                f'Invalid argument {index + 1} of "geoDistance" at position {node.pos}: '
                "expected a number or a field",
                node.pos,
            )
        coordinates.append(_float_func("radians", in_domain(operand, Kind.NUMBER, dialect)))
    lon_a, lat_a, lon_b, lat_b = coordinates
    half_lat = _float_func("sin", (lat_b - lat_a) / 2)
    half_lon = _float_func("sin", (lon_b - lon_a) / 2)
    cosines = _float_func("cos", lat_a) * _float_func("cos", lat_b)
    # Haversine: well conditioned for small distances (equal points give exactly 0).
    # The clamp keeps sqrt()/asin() defined for out-of-range input such as lat 200,
    # where PostgreSQL would raise instead of returning NULL.
    chord = dialect.clamp(half_lat * half_lat + cosines * half_lon * half_lon, 0.0, 1.0)
    angle = _float_func("asin", _float_func("sqrt", chord))
    return SqlOperand(Kind.NUMBER, sql=sa.literal(2 * EARTH_RADIUS_KM, sa.Float()) * angle)


def _float_func(name: str, *args: ColumnElement[Any]) -> ColumnElement[Any]:
    function: Any = getattr(sa.func, name)
    result: ColumnElement[Any] = function(*args, type_=sa.Float())
    return result


def _strftime(call: ast.Call, compile_operand: OperandCompiler, dialect: RuleDialect) -> SqlOperand:
    fmt = _string_literal(call, 0)
    modifiers = [_string_literal(call, index) for index in range(2, len(call.args))]
    time = _single_valued(call, 1, compile_operand) if len(call.args) > 1 else literal("now")
    if dialect.native_strftime:
        return SqlOperand(Kind.TEXT, sql=_sqlite_strftime(fmt, time, modifiers, dialect))
    sql = time_backend(dialect).strftime(fmt, time, modifiers, call.pos)
    return SqlOperand(Kind.TEXT, sql=sql)


def _string_literal(call: ast.Call, index: int) -> str:
    node = call.args[index]
    if not isinstance(node, ast.Literal) or not isinstance(node.value, str):
        what = "format" if index == 0 else f"modifier (argument {index + 1})"
        raise FilterError(
            f'Invalid argument {index + 1} of "strftime" at position {node.pos}: '
            f"the {what} must be a quoted string",
            node.pos,
        )
    return node.value


def _sqlite_strftime(
    fmt: str, time: SqlOperand, modifiers: list[str], dialect: RuleDialect
) -> ColumnElement[Any]:
    if time.is_literal:
        value = time.value if not isinstance(time.value, bool) else int(time.value)
        time_sql: ColumnElement[Any] = sa.null() if value is None else sa.literal(value)
    elif time.json is not None:
        time_sql = dialect.json_text(time.json)
    else:
        assert time.sql is not None
        time_sql = time.sql
    args = [sa.literal(fmt), time_sql, *(sa.literal(modifier) for modifier in modifiers)]
    return sa.func.strftime(*args, type_=sa.String())  # NULL for what is not a time, as PocketBase
