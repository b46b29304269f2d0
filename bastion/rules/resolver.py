"""How the compiler learns what an identifier means: the FieldResolver interface.

The rule language knows nothing about collections. For every identifier in a filter
(``title``, ``author.name``, ``@request.auth.id``, ``tags:each``) the compiler calls
``resolver.resolve(identifier)`` and gets back a :class:`ResolvedField`, a small,
immutable description of a SQL value:

``expr``
    A SQLAlchemy expression for the value: a column, a correlated scalar subquery, a
    JSON document, or a bound literal. It must never be built from user text; the
    resolver takes names from the schema and values from the request.
``kind``
    :class:`Kind` of the value (text, number, bool, json), which drives PocketBase's
    comparison rules: number-vs-text coercion, ``true``/``false`` handling, and
    ``x = ""`` / ``x = null`` matching both NULL and ``''`` ("null folding").
``json_path``
    When not ``None``, ``expr`` is a JSON document and the value is the node at this
    path (``()`` is the whole document). JSON values are compared type-strictly and
    without null folding (``IS`` / ``IS NOT``), as in PocketBase.
``multi`` / ``items``
    A multi-valued operand: its items are iterated in a correlated ``EXISTS``
    subquery. Plain operators require every item to match (and an empty set counts
    as a single NULL item, so ``tags = "a"`` needs at least one item); ``?``
    operators require at least one. With ``items`` unset the items are those of the
    JSON array in ``expr`` (``json_each`` / ``jsonb_array_elements_text`` /
    ``JSON_TABLE``); a resolver may instead supply ``items``, a factory returning an
    :class:`ItemSource` - any correlated ``FROM ... WHERE ...`` with one value column.
``array``
    ``expr`` holds a JSON array, so the ``:each`` and ``:length`` modifiers apply even
    when the field is compared as a whole (PocketBase compares a multi-select column
    without ``:each`` as its raw JSON text).

Relation traversal and ``@collection`` joins (the core-side resolver)
    A single relation path (``author.name``) resolves to a correlated scalar
    subquery, e.g. ``SELECT u.name FROM users u WHERE u.id = posts.author``. A path
    crossing a multiple relation or a back-relation (``tags.name``,
    ``comments_via_post.msg``) resolves to ``multi=True`` with an ``items`` factory::

        def items() -> ItemSource:
            je = dialect.json_items(posts.c.tags)          # fresh aliases per call
            tag = tags_table.alias()
            return ItemSource(froms=(je.froms[0], tag), value=tag.c.name,
                              where=(tag.c.id == je.value,))

    ``@collection.users:u.name`` is an uncorrelated source (``FROM users``). When
    several comparisons must see the *same* joined row (PocketBase's ``:alias``), a
    stateful resolver may instead register an outer join on itself, return the joined
    column, and let the caller add the joins (and ``DISTINCT``) to its SELECT; the
    compiler never touches the FROM clause.

Modifiers and ``@request.*``
    The resolver receives the identifier with its modifier. ``:lower``, ``:length``
    and ``:each`` are applied by the compiler unless the resolver sets
    ``modifier_applied``; ``:isset`` and ``:changed`` only make sense for
    ``@request.*`` and must be applied by the resolver (typically returning
    ``ResolvedField.literal(True)``). ``@request.*`` values are returned with
    :meth:`ResolvedField.literal`, which binds them as parameters; an unknown
    ``@request.*`` path should resolve to ``ResolvedField.literal(None)``.

Resolvers signal problems by raising :class:`~bastion.rules.errors.FilterError`
(without a position; the compiler adds the identifier's position).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from bastion.rules.ast import Identifier
from bastion.rules.errors import FilterError


class Kind(enum.Enum):
    """The value type of an operand, as far as comparison rules are concerned."""

    TEXT = "text"
    NUMBER = "number"
    BOOL = "bool"
    JSON = "json"
    NULL = "null"


class Affinity(enum.Enum):
    """What a value's source converts the other side of a comparison to, as SQLite's
    column affinity does (see :mod:`bastion.rules.values`): a text column reads numbers
    as text, a number or bool column reads numeric text as numbers; literals, functions
    and computed values convert nothing."""

    TEXT = "text"
    NUMERIC = "numeric"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ItemSource:
    """The items of a multi-valued operand: ``SELECT value FROM froms WHERE where``.

    The compiler adds its own condition to ``where`` and wraps the result in EXISTS.
    References to outer tables (in ``froms`` arguments or ``where``) correlate with the
    enclosing query; derived tables are avoided because MariaDB cannot correlate them.
    """

    froms: tuple[FromClause, ...]
    value: ColumnElement[Any]
    where: tuple[ColumnElement[bool], ...] = ()


ItemsFactory = Callable[[], ItemSource]
"""Builds a fresh :class:`ItemSource` (new aliases) each time it is called."""

_NO_VALUE: Any = object()


@dataclass(frozen=True, slots=True)
class ResolvedField:
    """What an identifier means in SQL; see the module docstring for each attribute."""

    expr: ColumnElement[Any]
    kind: Kind = Kind.TEXT
    multi: bool = False
    array: bool = False
    item_kind: Kind = Kind.TEXT
    items: ItemsFactory | None = None
    json_path: tuple[str | int, ...] | None = None
    modifier_applied: bool = False
    value: Any = field(default=_NO_VALUE, repr=False)
    # A value computed from a column (``:length``, a modifier's result): it has no
    # column affinity. Columns, relation paths and their items keep theirs.
    computed: bool = False
    # Multi-valued items that count (``members.tags:length``): no joined row reads as one
    # item 0, where other items read as one NULL (PocketBase's length of a missing list).
    counts: bool = False
    # A condition every comparison of this value also needs (PocketBase ANDs
    # ``emailVisibility = TRUE`` to a client's comparison of an auth record's email).
    guard: ColumnElement[bool] | None = None
    # For multi-valued paths: the value on the one joined row every mention of the same
    # path shares (PocketBase's main-query join), used by ``?`` operators when set; the
    # statement LEFT JOINs what the resolver registered.
    shared: ColumnElement[Any] | None = None

    @property
    def is_literal(self) -> bool:
        """True when this field is a value known at compile time (bound parameter)."""
        return self.value is not _NO_VALUE

    @classmethod
    def literal(cls, value: Any, *, modifier_applied: bool = False) -> ResolvedField:
        """A request value (``@request.*``) bound as a parameter, never as SQL text.

        ``str``, ``int``/``float``, ``bool`` and ``None`` keep their type; lists and
        dicts are bound as compact JSON text (``value`` holds that text), and lists
        also support ``:each`` and ``:length``. Other objects are bound as ``str()``.
        """
        kind, normalized = _literal_kind(value)
        return cls(
            expr=sa.literal(normalized),
            kind=kind,
            array=isinstance(value, list),
            modifier_applied=modifier_applied,
            value=normalized,
        )


def _literal_kind(value: Any) -> tuple[Kind, Any]:
    if value is None:
        return Kind.NULL, None
    if isinstance(value, bool):
        return Kind.BOOL, value
    if isinstance(value, int | float):
        return Kind.NUMBER, value
    if isinstance(value, str):
        return Kind.TEXT, value
    if isinstance(value, list | dict):
        return Kind.TEXT, json.dumps(value, separators=(",", ":"), default=str)
    return Kind.TEXT, str(value)


class FieldResolver(Protocol):
    """Maps identifiers to SQL; implemented by core for records, by SimpleFieldResolver here."""

    def resolve(self, identifier: Identifier) -> ResolvedField:
        """Describe ``identifier`` (name plus optional modifier) or raise FilterError."""
        ...

    # Optional: ``every_row(build) -> condition``. When a resolver has it, a comparison
    # under a plain (not ``?``) operator that names ``@collection.*`` is ANDed with
    # ``every_row(build)``, where ``build()`` compiles that comparison again; PocketBase
    # requires every row of the collection to meet it.


class SimpleFieldResolver:
    """Resolves plain column names of one table, e.g. for filtering system lists.

    ``allowed`` names the filterable columns. Columns listed in ``multi`` hold JSON
    arrays whose items are iterated (all/any semantics); columns in ``json`` hold
    JSON documents and also accept paths (``meta.a.0``). Anything else raises
    ``FilterError('unknown field ...')``.
    """

    def __init__(
        self,
        table: sa.Table,
        allowed: Collection[str],
        *,
        multi: Collection[str] = (),
        json: Collection[str] = (),
    ) -> None:
        self.table = table
        self.multi = frozenset(multi)
        self.json = frozenset(json)
        self.allowed = frozenset(allowed) | self.multi | self.json
        for name in self.allowed:
            if name not in table.c:
                raise ValueError(f"table {table.name!r} has no column {name!r}")

    def resolve(self, identifier: Identifier) -> ResolvedField:
        """Resolve a column name, a JSON path inside a ``json`` column, or fail."""
        name = identifier.name
        column_name, _, path = name.partition(".")
        if column_name not in self.allowed or (path and column_name not in self.json):
            raise FilterError(f'unknown field "{name}"')
        column = self.table.c[column_name]
        if column_name in self.multi:
            return ResolvedField(expr=column, multi=True, array=True)
        kind = kind_of_type(column.type)
        if column_name in self.json or kind is Kind.JSON:
            return ResolvedField(expr=column, kind=Kind.JSON, json_path=_json_path(path))
        return ResolvedField(expr=column, kind=kind)


def _json_path(path: str) -> tuple[str | int, ...]:
    if not path:
        return ()
    return tuple(int(part) if part.isdigit() else part for part in path.split("."))


def kind_of_type(type_: sa.types.TypeEngine[Any]) -> Kind:
    """The comparison :class:`Kind` of a SQLAlchemy column type."""
    if isinstance(type_, sa.Boolean):
        return Kind.BOOL
    if isinstance(type_, sa.Integer | sa.Numeric | sa.Float):
        return Kind.NUMBER
    if isinstance(type_, sa.JSON):
        return Kind.JSON
    return Kind.TEXT
