"""The immutable syntax tree of a filter expression.

A filter is a boolean tree of :class:`And` / :class:`Or` nodes over :class:`Comparison`
leaves; each comparison has two operands (:class:`Identifier`, :class:`Literal`,
:class:`Macro` or :class:`Call`). Every node is a frozen, slotted dataclass, so parsed
trees can be cached and shared between threads and requests.

Positions are 0-based character offsets into the source text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

MAX_FILTER_LENGTH = 3500
"""Longest accepted filter text, in characters (PocketBase's limit)."""
MAX_EXPRESSIONS = 200
"""Most comparisons one filter may contain (PocketBase's limit)."""
MAX_DEPTH = 64
"""Deepest accepted parenthesis nesting."""
MAX_CALL_NESTING = 2
"""Most function calls nested inside another call's arguments (``a(b(c()))`` is 2)."""

MODIFIERS = frozenset({"lower", "length", "each", "isset", "changed"})
"""Identifier suffixes (``field:modifier``) the language knows."""

DATETIME_MACROS = frozenset(
    {
        "@now",
        "@yesterday",
        "@tomorrow",
        "@todayStart",
        "@todayEnd",
        "@monthStart",
        "@monthEnd",
        "@yearStart",
        "@yearEnd",
    }
)
"""Macros that evaluate to a UTC datetime string (``YYYY-MM-DD HH:MM:SS.sssZ``)."""
NUMBER_MACROS = frozenset({"@second", "@minute", "@hour", "@day", "@month", "@weekday", "@year"})
"""Macros that evaluate to a number taken from the current UTC time."""
MACROS = DATETIME_MACROS | NUMBER_MACROS

FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    "geoDistance": (4, 4),
    "strftime": (1, 10),
}
"""Known functions and their (minimum, maximum) argument counts."""


class Op(enum.Enum):
    """A comparison operator; the ``?`` variants are "any item matches" operators."""

    EQ = "="
    NEQ = "!="
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="
    LIKE = "~"
    NLIKE = "!~"
    ANY_EQ = "?="
    ANY_NEQ = "?!="
    ANY_GT = "?>"
    ANY_GTE = "?>="
    ANY_LT = "?<"
    ANY_LTE = "?<="
    ANY_LIKE = "?~"
    ANY_NLIKE = "?!~"

    @property
    def is_any(self) -> bool:
        """True for the ``?`` (any-of) variants."""
        return self.value.startswith("?")

    @property
    def base(self) -> Op:
        """The operator without its any-of marker (``?>=`` -> ``>=``)."""
        return Op(self.value[1:]) if self.is_any else self


@dataclass(frozen=True, slots=True)
class Identifier:
    """A name the field resolver interprets, e.g. ``author.name`` or ``@request.auth.id``.

    ``name`` excludes a trailing ``:modifier`` of the last path segment, which is kept
    in ``modifier`` (``tags:length`` -> name ``tags``, modifier ``length``). Colons in
    earlier segments belong to the name (``@collection.users:u.name``).
    """

    name: str
    modifier: str | None
    pos: int

    @property
    def text(self) -> str:
        """The identifier as written in the filter."""
        return f"{self.name}:{self.modifier}" if self.modifier else self.name


@dataclass(frozen=True, slots=True)
class Literal:
    """A quoted string, a number, ``true``/``false`` or ``null``."""

    value: str | int | float | bool | None
    pos: int


@dataclass(frozen=True, slots=True)
class Macro:
    """A time macro such as ``@now`` or ``@year``, evaluated at compile time."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call such as ``strftime('%Y', created)``."""

    name: str
    args: tuple[Operand, ...]
    pos: int


Operand: TypeAlias = Identifier | Literal | Macro | Call


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left op right``."""

    left: Operand
    op: Op
    right: Operand
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    """All items must hold (``&&``); always two or more items."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one item must hold (``||``); always two or more items."""

    items: tuple[Expr, ...]


Expr: TypeAlias = Comparison | And | Or


def uses_macros(node: Expr | Operand) -> bool:
    """Whether ``node`` reads the clock (``@now``, ``@todayStart``...) anywhere."""
    if isinstance(node, Macro):
        return True
    if isinstance(node, (And, Or)):
        return any(uses_macros(item) for item in node.items)
    if isinstance(node, Comparison):
        return uses_macros(node.left) or uses_macros(node.right)
    if isinstance(node, Call):
        return any(uses_macros(arg) for arg in node.args)
    return False


def unparse(node: Expr | Operand) -> str:
    """Render a tree back to filter text that parses to an equal tree (positions aside)."""
    if isinstance(node, And | Or):
        joiner = " && " if isinstance(node, And) else " || "
        return joiner.join(_unparse_child(node, item) for item in node.items)
    if isinstance(node, Comparison):
        return f"{unparse(node.left)} {node.op.value} {unparse(node.right)}"
    if isinstance(node, Identifier):
        return node.text
    if isinstance(node, Macro):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(unparse(arg) for arg in node.args)})"
    return _unparse_literal(node.value)


def _unparse_child(parent: And | Or, child: Expr) -> str:
    text = unparse(child)
    # && binds tighter than ||, so only an Or inside an And needs parentheses; nested
    # same-kind nodes never occur because the parser flattens them.
    return f"({text})" if isinstance(parent, And) and isinstance(child, Or) else text


def _unparse_literal(value: str | int | float | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text else text
    # Only a backslash before the enclosing quote is an escape (as in PocketBase), so a
    # string ending in a backslash cannot be written; every other string can.
    quote = "'" if '"' in value and "'" not in value else '"'
    return quote + value.replace(quote, "\\" + quote) + quote
