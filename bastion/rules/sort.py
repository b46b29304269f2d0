"""The ``sort`` list parameter: ``-created,+title,@random``.

A comma list of fields; ``-`` sorts descending, ``+`` or nothing ascending. ``@random``
and ``@rowid`` are special keys. At most 8 fields of at most 255 characters each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.rules.ast import Identifier
from bastion.rules.dialects import JsonRef, RuleDialect, get_dialect
from bastion.rules.errors import FilterError
from bastion.rules.lexer import TokenKind, tokenize
from bastion.rules.parser import parse_identifier
from bastion.rules.resolver import FieldResolver, Kind, ResolvedField

MAX_SORT_FIELDS = 8
MAX_SORT_FIELD_LENGTH = 255
RANDOM = "@random"
ROWID = "@rowid"


@dataclass(frozen=True, slots=True)
class SortItem:
    """One sort key: an identifier (or ``@random`` / ``@rowid``) and its direction."""

    field: Identifier
    descending: bool = False

    @property
    def name(self) -> str:
        """The field name without modifier."""
        return self.field.name


def parse_sort(text: str) -> tuple[SortItem, ...]:
    """Parse a sort list; an empty or blank string means no ordering."""
    if not text.strip():
        return ()
    items: list[SortItem] = []
    offset = 0
    for part in text.split(","):
        items.append(_parse_item(part, offset))
        offset += len(part) + 1
    if len(items) > MAX_SORT_FIELDS:
        raise FilterError(f"Too many sort fields: the maximum is {MAX_SORT_FIELDS}", 0)
    return tuple(items)


def _parse_item(part: str, offset: int) -> SortItem:
    pos = offset + len(part) - len(part.lstrip())
    name = part.strip()
    descending = name.startswith("-")
    if name and name[0] in "+-":
        name, pos = name[1:], pos + 1
    if not name:
        raise FilterError(f"Empty sort field at position {pos}: expected a field name", pos)
    if len(name) > MAX_SORT_FIELD_LENGTH:
        raise FilterError(
            f"Sort field too long at position {pos}: the maximum is {MAX_SORT_FIELD_LENGTH} characters",
            pos,
        )
    try:
        tokens = tokenize(name)
    except FilterError:
        tokens = []
    if len(tokens) != 2 or tokens[0].kind is not TokenKind.IDENT:
        raise FilterError(
            f'Invalid sort field "{name}" at position {pos}: expected a field name', pos
        )
    return SortItem(parse_identifier(name, pos), descending)


def compile_sort(
    items: tuple[SortItem, ...],
    resolver: FieldResolver,
    dialect_name: str | RuleDialect,
    *,
    rowid: ColumnElement[Any] | None = None,
) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for ``items``; NULLs sort first ascending on every database.

    Fields may use the ``:lower`` modifier. ``@rowid`` sorts by ``rowid`` (the insertion-order column the
    caller supplies; on SQLite the implicit ``_rowid_`` is used when none is given).
    """
    dialect = get_dialect(dialect_name)
    clauses: list[ColumnElement[Any]] = []
    for item in items:
        if item.name == RANDOM:
            clauses.append(dialect.random())
            continue
        for key in _sort_keys(item, resolver, dialect, rowid):
            clauses.append(dialect.order(key, item.descending))
    return clauses


def _sort_keys(
    item: SortItem, resolver: FieldResolver, dialect: RuleDialect, rowid: ColumnElement[Any] | None
) -> list[ColumnElement[Any]]:
    if item.name == ROWID:
        key = rowid if rowid is not None else dialect.implicit_rowid()
        if key is not None:
            return [key]
        raise FilterError(
            f"Unsupported sort field at position {item.field.pos}: @rowid on {dialect.name}"
        )
    try:
        field = resolver.resolve(item.field)
    except FilterError as error:
        raise error.at(item.field.pos, f'sort field "{item.field.text}"') from None
    if field.is_literal:
        raise FilterError(
            f'Invalid sort field "{item.field.text}" at position {item.field.pos}: '
            "only fields can be sorted",
            item.field.pos,
        )
    modifier = None if field.modifier_applied else item.field.modifier
    if modifier not in (None, "lower", "length", "each"):
        raise FilterError(
            f'Invalid sort field "{item.field.text}" at position {item.field.pos}: '
            f"the :{modifier} modifier cannot be used for sorting",
            item.field.pos,
        )
    if field.multi or (modifier == "each" and field.array):
        return [_many_key(field, item.descending, modifier == "lower", dialect)]
    if modifier in ("length", "each"):
        if not field.array:
            raise FilterError(
                f'Invalid sort field "{item.field.text}" at position {item.field.pos}: '
                f"the :{modifier} modifier needs a multiple field",
                item.field.pos,
            )
        return [dialect.array_length(field.expr)]
    if field.json_path is not None or field.kind is Kind.JSON:
        ref = JsonRef(field.expr, field.json_path or ())
        if not modifier:
            return dialect.json_sort_keys(ref)
        key = dialect.json_text(ref)
    elif field.array:  # a multiple select, relation or file sorts by its JSON text
        key = dialect.array_text(field.expr)
    else:
        key = dialect.to_text(field.expr, field.kind) if modifier else field.expr
    return [dialect.ascii_lower(key) if modifier else key]


def _many_key(field: ResolvedField, descending: bool, lower: bool, dialect: RuleDialect) -> ColumnElement[Any]:
    """A many-valued path (``comments_via_post.created``, ``tags:each``) sorts by its
    smallest value ascending and its largest descending (PocketBase joins every value
    and leaves which one orders a record unspecified)."""
    source = field.items() if field.items is not None else dialect.json_items(field.expr, field.item_kind)
    value = source.value
    if lower:
        value = dialect.ascii_lower(dialect.to_text(value, field.item_kind))
    pick = sa.func.max if descending else sa.func.min
    return sa.select(pick(value)).select_from(*source.froms).where(*source.where).scalar_subquery()
