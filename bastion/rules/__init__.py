"""Bastion's PocketBase-compatible filter and rule language.

Text -> tokens (:mod:`~bastion.rules.lexer`) -> immutable tree (:func:`parse`, cached)
-> parameterised SQLAlchemy condition (:func:`compile_filter`) through a
:class:`FieldResolver`, which is the only part that knows what identifiers mean.
``sort`` parameters go through :func:`parse_sort` and :func:`compile_sort`.

This package imports only the standard library and SQLAlchemy.
"""

from bastion.rules.ast import (
    And,
    Call,
    Comparison,
    Expr,
    Identifier,
    Literal,
    Macro,
    Op,
    Operand,
    Or,
    unparse,
    uses_macros,
)
from bastion.rules.compiler import compile_filter
from bastion.rules.dialects import JsonRef, RuleDialect, get_dialect
from bastion.rules.errors import FilterError
from bastion.rules.parser import parse
from bastion.rules.resolver import (
    FieldResolver,
    ItemsFactory,
    ItemSource,
    Kind,
    ResolvedField,
    SimpleFieldResolver,
    kind_of_type,
)
from bastion.rules.sort import SortItem, compile_sort, parse_sort

__all__ = [
    "And",
    "Call",
    "Comparison",
    "Expr",
    "FieldResolver",
    "FilterError",
    "Identifier",
    "ItemSource",
    "ItemsFactory",
    "JsonRef",
    "Kind",
    "Literal",
    "Macro",
    "Op",
    "Operand",
    "Or",
    "ResolvedField",
    "SimpleFieldResolver",
    "SortItem",
    "RuleDialect",
    "compile_filter",
    "compile_sort",
    "get_dialect",
    "kind_of_type",
    "parse",
    "parse_sort",
    "unparse",
    "uses_macros",
]
