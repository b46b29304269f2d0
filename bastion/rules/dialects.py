"""Per-database SQL building blocks used by the compiler (and by core-side resolvers).

One small class per supported database: ``sqlite``, ``postgresql`` and ``mysql``
(MariaDB 10.11). Each is the rule-language part of that engine's description: the
engine objects of ``bastion.adapters`` (``core.ports.DatabaseEngine``) carry one as
``rules``. Where the compiler's SQL depends on what an engine can do, it asks the object
(a capability attribute or a method), never its name. Each method returns a SQLAlchemy
expression; values are always bound parameters. The only SQL text written here is fixed by this module (function names,
JSON_TABLE's COLUMNS clause), never taken from a filter.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.rules.errors import FilterError
from bastion.rules.resolver import ItemSource, Kind

_JSON_NUMBER_REGEX = r"^\s*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
"""Text that counts as a number when compared with numbers (JSON number syntax)."""


@dataclass(frozen=True, slots=True)
class JsonRef:
    """A node inside a JSON document: ``doc`` at ``path`` (``()`` = the whole document)."""

    doc: ColumnElement[Any]
    path: tuple[str | int, ...]


def _text_path(path: tuple[str | int, ...]) -> str:
    """``('a', 0)`` -> ``$."a"[0]`` (SQLite and MySQL JSON path syntax)."""
    parts = [f"[{part}]" if isinstance(part, int) else f'."{part}"' for part in path]
    return "$" + "".join(parts)


def _postgresql() -> Any:
    """SQLAlchemy's PostgreSQL types, loaded on first use: a SQLite or MariaDB server never
    needs them (the module costs about 2 MiB)."""
    from sqlalchemy.dialects import postgresql

    return postgresql


def _bind(value: Any, type_: sa.types.TypeEngine[Any] | None = None) -> ColumnElement[Any]:
    return sa.literal(value, type_) if type_ is not None else sa.literal(value)


class RuleDialect(abc.ABC):
    """SQL helpers shared by all databases; subclasses fill in the differences."""

    name = ""
    aliases: tuple[str, ...] = ()  # other names ``get_dialect`` knows it by
    # The engine's own strftime() is SQLite's (PocketBase's): calls are passed through
    # rather than translated (``rules/strftime.py`` translates for the others).
    native_strftime = False
    # The implicit insertion-order column ``@rowid`` sorts by when the caller names none.
    rowid_column: str | None = None
    # Whether ascending ORDER BY puts NULLs first, as SQLite (PocketBase) does.
    nulls_first_ascending = True

    def order(self, key: ColumnElement[Any], descending: bool) -> ColumnElement[Any]:
        """``key`` ascending or descending, NULLs first ascending (last descending) as on
        SQLite, whichever way the engine puts them by default."""
        ordered = key.desc() if descending else key.asc()
        if not self.nulls_first_ascending:
            ordered = ordered.nulls_last() if descending else ordered.nulls_first()
        return ordered

    def implicit_rowid(self) -> ColumnElement[Any] | None:
        """The engine's own insertion-order column, None where tables have none."""
        return None if self.rowid_column is None else sa.literal_column(self.rowid_column)

    @abc.abstractmethod
    def json_items(self, array: ColumnElement[Any], item_kind: Kind = Kind.TEXT) -> ItemSource:
        """The items of the JSON array ``array`` (NULL -> none, a scalar -> one item)."""

    @abc.abstractmethod
    def array_length(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        """Number of items of the JSON array ``array`` (NULL -> 0, a scalar -> 1)."""

    def array_text(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        """A stored JSON array as its compact text (``["a","b"]``), which is what a filter
        compares when it names a multiple select, relation or file field directly."""
        return sa.type_coerce(array, sa.Text())

    @abc.abstractmethod
    def json_value(self, ref: JsonRef, kind: Kind) -> ColumnElement[Any]:
        """The node as ``kind`` (TEXT, NUMBER or BOOL), or NULL if its JSON type differs."""

    @abc.abstractmethod
    def json_text(self, ref: JsonRef) -> ColumnElement[Any]:
        """The node as text, as SQLite's ``json_extract()`` gives it (PocketBase): strings
        unquoted, booleans ``1``/``0``, other values as JSON; NULL for null."""

    @abc.abstractmethod
    def json_is_null(self, ref: JsonRef) -> ColumnElement[bool]:
        """True when the node is JSON null or missing (or the document is NULL)."""

    def json_sort_keys(self, ref: JsonRef) -> list[ColumnElement[Any]]:
        """ORDER BY keys for the node, in SQLite's (PocketBase's) order of
        ``json_extract()`` values: JSON null or missing first, then numbers and booleans
        (as 1/0) by value, then strings, objects and arrays by their text, byte-wise."""
        return [self.json_text(ref)]

    @staticmethod
    def _sort_by_class(
        json_type: ColumnElement[Any], nulls: tuple[str, ...], numbers: tuple[str, ...],
        number: ColumnElement[Any], text: ColumnElement[Any],
    ) -> list[ColumnElement[Any]]:
        """[class rank, numeric value, text] for ``json_sort_keys``."""
        rank = sa.case((json_type.is_(None), 0), (json_type.in_(nulls), 0), (json_type.in_(numbers), 1), else_=2)
        return [rank, sa.case((json_type.in_(numbers), number)), sa.case((rank == 2, text))]

    def to_text(self, expr: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        """A NUMBER or BOOL expression as text (booleans as ``'1'`` / ``'0'``)."""
        if kind is Kind.BOOL:
            expr = self.to_number(expr, Kind.BOOL)
        if kind in (Kind.NUMBER, Kind.BOOL):
            return sa.cast(expr, sa.Text)
        return expr

    def to_number(self, expr: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        """A BOOL (as 1/0) or TEXT expression as a number; non-numeric text -> NULL."""
        if kind is Kind.TEXT:
            return sa.case((self._is_number_text(expr), self._text_to_number(expr)))
        return expr

    @abc.abstractmethod
    def _is_number_text(self, expr: ColumnElement[Any]) -> ColumnElement[bool]:
        """True when the text is a JSON-syntax number."""

    def _text_to_number(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.cast(expr, sa.Float)

    def ascii_lower(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        """Lower-case A-Z only, as SQLite's ``lower()`` does (other letters are kept)."""
        return sa.func.lower(expr, type_=sa.String())

    def like(
        self, text: ColumnElement[Any], pattern: ColumnElement[Any], negate: bool
    ) -> ColumnElement[bool]:
        """ASCII case-insensitive ``LIKE ... ESCAPE '\\'``."""
        text, pattern = self.ascii_lower(text), self.ascii_lower(pattern)
        return text.not_like(pattern, escape="\\") if negate else text.like(pattern, escape="\\")

    def concat(self, *parts: ColumnElement[Any]) -> ColumnElement[Any]:
        """String concatenation (NULL if any part is NULL)."""
        result = parts[0]
        for part in parts[1:]:
            result = result.op("||")(part)
        return result

    def typed_null(self, kind: Kind) -> ColumnElement[Any]:
        """A NULL that compares with ``=`` (not ``IS``) when used in an expression."""
        return sa.type_coerce(sa.null(), _SQL_TYPES.get(kind, sa.Text()))

    def random(self) -> ColumnElement[Any]:
        """A random ORDER BY key."""
        return sa.func.random()

    def clamp(self, expr: ColumnElement[Any], low: float, high: float) -> ColumnElement[Any]:
        """``expr`` limited to ``[low, high]``."""
        return sa.func.least(sa.func.greatest(expr, _bind(low)), _bind(high))


_SQL_TYPES: dict[Kind, sa.types.TypeEngine[Any]] = {
    Kind.TEXT: sa.Text(),
    Kind.NUMBER: sa.Float(),
    Kind.BOOL: sa.Boolean(),
}


class SqliteRuleDialect(RuleDialect):
    """SQLite 3.38+ (JSON functions built in, math functions enabled)."""

    name = "sqlite"
    native_strftime = True
    rowid_column = "_rowid_"

    def to_text(self, expr: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        """Whole REAL values as ``10``, not SQLite's ``10.0`` (the canonical text the
        other engines and number literals give)."""
        if kind is Kind.NUMBER:
            whole = sa.and_(expr == sa.cast(expr, sa.Integer), sa.func.abs(expr) < 1e15)
            return sa.case((whole, sa.cast(sa.cast(expr, sa.Integer), sa.Text)), else_=sa.cast(expr, sa.Text))
        return super().to_text(expr, kind)

    def _normalized_array(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        as_array = sa.case(
            (sa.func.json_type(array) == "array", array), else_=sa.func.json_array(array)
        )
        return sa.case(
            (array.is_(None), _bind("[]")),
            (sa.func.json_valid(array) == 1, as_array),
            else_=sa.func.json_array(array),
        )

    def json_items(self, array: ColumnElement[Any], item_kind: Kind = Kind.TEXT) -> ItemSource:
        table = sa.func.json_each(self._normalized_array(array)).table_valued("value")
        value: ColumnElement[Any] = table.c.value
        if item_kind is Kind.NUMBER:
            value = self.to_number(value, Kind.TEXT)
        return ItemSource(froms=(table,), value=value)

    def array_length(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.json_array_length(self._normalized_array(array))

    def _extract(self, ref: JsonRef) -> ColumnElement[Any]:
        return sa.func.json_extract(ref.doc, _bind(_text_path(ref.path)))

    def _type(self, ref: JsonRef) -> ColumnElement[Any]:
        return sa.func.json_type(ref.doc, _bind(_text_path(ref.path)))

    def json_value(self, ref: JsonRef, kind: Kind) -> ColumnElement[Any]:
        json_type = self._type(ref)
        if kind is Kind.BOOL:
            return sa.case((json_type == "true", _bind(1)), (json_type == "false", _bind(0)))
        types = ("integer", "real") if kind is Kind.NUMBER else ("text",)
        return sa.case((json_type.in_(types), self._extract(ref)))

    def json_text(self, ref: JsonRef) -> ColumnElement[Any]:
        return sa.cast(self._extract(ref), sa.Text)

    def json_is_null(self, ref: JsonRef) -> ColumnElement[bool]:
        return self._extract(ref).is_(None)

    def json_sort_keys(self, ref: JsonRef) -> list[ColumnElement[Any]]:
        return [self._extract(ref)]

    def _is_number_text(self, expr: ColumnElement[Any]) -> ColumnElement[bool]:
        # json_valid()+json_type() accept exactly the JSON number syntax the other
        # databases check with a regular expression; CASE guards json_type() from
        # raising on malformed input.
        is_number = sa.case(
            (sa.func.json_valid(expr) == 1, sa.func.json_type(expr).in_(("integer", "real"))),
            else_=sa.false(),
        )
        return is_number == 1

    def like(
        self, text: ColumnElement[Any], pattern: ColumnElement[Any], negate: bool
    ) -> ColumnElement[bool]:
        # SQLite's LIKE is already ASCII case-insensitive; lower() would only cost indexes.
        return text.not_like(pattern, escape="\\") if negate else text.like(pattern, escape="\\")

    def clamp(self, expr: ColumnElement[Any], low: float, high: float) -> ColumnElement[Any]:
        return sa.func.min(sa.func.max(expr, _bind(low)), _bind(high))


class PostgresRuleDialect(RuleDialect):
    """PostgreSQL 13+; JSON values are handled as ``jsonb``."""

    name = "postgresql"
    nulls_first_ascending = False  # PostgreSQL puts NULLs last ascending

    def _jsonb(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return (
            expr if isinstance(expr.type, _postgresql().JSONB) else sa.cast(expr, _postgresql().JSONB())
        )

    def _normalized_array(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        doc = self._jsonb(array)
        return sa.case(
            (array.is_(None), sa.cast(_bind("[]"), _postgresql().JSONB())),
            (sa.func.jsonb_typeof(doc) == "array", doc),
            else_=sa.func.jsonb_build_array(doc),
        )

    def json_items(self, array: ColumnElement[Any], item_kind: Kind = Kind.TEXT) -> ItemSource:
        table = sa.func.jsonb_array_elements_text(self._normalized_array(array)).table_valued(
            "value"
        )
        value: ColumnElement[Any] = table.c.value
        if item_kind is Kind.NUMBER:
            value = self.to_number(value, Kind.TEXT)
        return ItemSource(froms=(table,), value=value)

    def array_length(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.jsonb_array_length(self._normalized_array(array))

    def array_text(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        """``jsonb`` prints arrays with a space after each comma; the compact text is the
        items' JSON joined by commas, in order (a NULL document stays NULL)."""
        items = sa.func.jsonb_array_elements(self._normalized_array(array)).table_valued(
            "value", with_ordinality="ordinality")
        joined = sa.func.string_agg(
            sa.cast(items.c.value, sa.Text()),
            _postgresql().aggregate_order_by(sa.literal_column("','"), items.c.ordinality))
        text = sa.func.concat(_bind("["), joined, _bind("]"), type_=sa.Text())  # concat skips NULL
        return sa.case((array.is_(None), sa.null()), else_=sa.select(text).select_from(items).scalar_subquery())

    def _path(self, ref: JsonRef) -> ColumnElement[Any]:
        return _bind([str(part) for part in ref.path], _postgresql().ARRAY(sa.Text()))

    def _node(self, ref: JsonRef) -> ColumnElement[Any]:
        return self._jsonb(ref.doc).op("#>")(self._path(ref))

    def json_value(self, ref: JsonRef, kind: Kind) -> ColumnElement[Any]:
        json_type = sa.func.jsonb_typeof(self._node(ref))
        types: dict[Kind, tuple[str, sa.types.TypeEngine[Any]]] = {
            Kind.TEXT: ("string", sa.Text()),
            Kind.NUMBER: ("number", sa.Float()),
            Kind.BOOL: ("boolean", sa.Boolean()),
        }
        name, sql_type = types[kind]
        return sa.case((json_type == name, sa.cast(self.json_text(ref), sql_type)))

    def json_text(self, ref: JsonRef) -> ColumnElement[Any]:
        text = self._jsonb(ref.doc).op("#>>", return_type=sa.Text())(self._path(ref))
        # jsonb writes containers with ", " and ": "; SQLite (PocketBase) writes them
        # compact. Whitespace outside strings goes; strings are matched whole and kept.
        compact = sa.func.regexp_replace(
            text, _bind(r'("(?:[^"\\]|\\.)*")|\s+'), _bind(r"\1"), _bind("g"), type_=sa.Text())
        json_type = sa.func.jsonb_typeof(self._node(ref))
        return sa.case((json_type.in_(("array", "object")), compact),
                       (json_type == "boolean", sa.case((text == "true", _bind("1")), else_=_bind("0"))),
                       else_=text)

    def json_is_null(self, ref: JsonRef) -> ColumnElement[bool]:
        return self.json_text(ref).is_(None)

    def json_sort_keys(self, ref: JsonRef) -> list[ColumnElement[Any]]:
        node = self._node(ref)
        json_type = sa.func.jsonb_typeof(node)
        unquoted = self.json_text(ref)  # (booleans as 1 and 0)
        number = sa.cast(unquoted, sa.Float())
        text = sa.case((json_type == "string", unquoted), else_=sa.cast(node, sa.Text()))
        return self._sort_by_class(json_type, ("null",), ("number", "boolean"), number,
                                   sa.collate(text, "C"))

    def to_number(self, expr: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        if kind is Kind.BOOL:
            return sa.cast(expr, sa.Integer)
        return super().to_number(expr, kind)

    def _is_number_text(self, expr: ColumnElement[Any]) -> ColumnElement[bool]:
        return sa.cast(expr, sa.Text).op("~")(_bind(_JSON_NUMBER_REGEX))

    def ascii_lower(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        # Under the "C" collation lower() folds ASCII letters only.
        return sa.func.lower(sa.collate(sa.cast(expr, sa.Text), "C"), type_=sa.String())

    def like(
        self, text: ColumnElement[Any], pattern: ColumnElement[Any], negate: bool
    ) -> ColumnElement[bool]:
        text, pattern = self.ascii_lower(text), self.ascii_lower(pattern)
        return text.not_like(pattern, escape="\\") if negate else text.like(pattern, escape="\\")

    def typed_null(self, kind: Kind) -> ColumnElement[Any]:
        return sa.cast(sa.null(), _SQL_TYPES.get(kind, sa.Text()))

    def clamp(self, expr: ColumnElement[Any], low: float, high: float) -> ColumnElement[Any]:
        # PostgreSQL's LEAST/GREATEST skip NULLs; keep NULL in, NULL out.
        return sa.case((expr.is_(None), sa.null()), else_=super().clamp(expr, low, high))


class MysqlRuleDialect(RuleDialect):
    """MariaDB 10.11 (and MySQL 8 where syntax agrees); JSON is LONGTEXT with checks.

    Tables should use a case-sensitive collation (``utf8mb4_nopad_bin``) so that ``=`` matches
    PocketBase; JSON_TABLE items are declared ``utf8mb4_nopad_bin`` for the same reason.
    """

    name = "mysql"
    aliases = ("mariadb",)

    _COLUMNS: ColumnElement[Any] = sa.literal_column(
        "'$[*]' COLUMNS (value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin PATH '$')"
    )

    def ascii_lower(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        # MariaDB's LOWER() folds every letter; replace A-Z one by one (binary compare).
        out: ColumnElement[Any] = sa.collate(sa.cast(expr, sa.CHAR), "utf8mb4_nopad_bin")
        for upper in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            out = sa.func.replace(out, sa.literal_column(f"'{upper}'"), sa.literal_column(f"'{upper.lower()}'"))
        return out

    def array_text(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        # JSON columns are utf8mb4_bin; compare in the connection's collation.
        return sa.collate(sa.type_coerce(array, sa.Text()), "utf8mb4_nopad_bin")

    def _normalized_array(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        as_array = sa.case(
            (sa.func.json_type(array) == "ARRAY", array), else_=sa.func.json_array(array)
        )
        return sa.case(
            (array.is_(None), _bind("[]")),
            (sa.func.json_valid(array) == 1, as_array),
            else_=sa.func.json_array(array),
        )

    def json_items(self, array: ColumnElement[Any], item_kind: Kind = Kind.TEXT) -> ItemSource:
        table = sa.func.json_table(self._normalized_array(array), self._COLUMNS).table_valued(
            "value"
        )
        value: ColumnElement[Any] = table.c.value
        if item_kind is Kind.NUMBER:
            value = self.to_number(value, Kind.TEXT)
        return ItemSource(froms=(table,), value=value)

    def array_length(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.json_length(self._normalized_array(array))

    def _node(self, ref: JsonRef) -> ColumnElement[Any]:
        node = sa.func.json_extract(ref.doc, _bind(_text_path(ref.path)))
        # MariaDB "autowraps" a scalar or object as a one-item array for [n] steps; an
        # index only reads into a real array, as on SQLite and PostgreSQL.
        guards = [
            sa.func.json_type(sa.func.json_extract(ref.doc, _bind(_text_path(ref.path[:i])))) == "ARRAY"
            for i, part in enumerate(ref.path) if isinstance(part, int)
        ]
        return sa.case((sa.and_(*guards), node)) if guards else node

    def json_value(self, ref: JsonRef, kind: Kind) -> ColumnElement[Any]:
        node = self._node(ref)
        json_type = sa.func.json_type(node)
        unquoted = sa.func.json_unquote(node)
        if kind is Kind.BOOL:
            # JSON_UNQUOTE answers in utf8mb4_bin; compare in the connection's collation.
            text = sa.collate(unquoted, "utf8mb4_nopad_bin")
            return sa.case((json_type == "BOOLEAN", sa.case((text == "true", 1), else_=0)))
        if kind is Kind.NUMBER:
            numeric = ("INTEGER", "DOUBLE", "DECIMAL", "UNSIGNED INTEGER")
            return sa.case((json_type.in_(numeric), _mysql_number(unquoted)))
        return sa.case((json_type == "STRING", sa.collate(unquoted, "utf8mb4_nopad_bin")))

    def json_text(self, ref: JsonRef) -> ColumnElement[Any]:
        node = self._node(ref)
        unquoted = sa.collate(sa.func.json_unquote(node), "utf8mb4_nopad_bin")
        compact = sa.collate(sa.func.json_compact(node), "utf8mb4_nopad_bin")  # as SQLite writes them
        json_type = sa.func.json_type(node)
        boolean = sa.case((unquoted == "true", _bind("1")), else_=_bind("0"))
        return sa.case((json_type == "NULL", sa.null()), (json_type.in_(("ARRAY", "OBJECT")), compact),
                       (json_type == "BOOLEAN", boolean), else_=unquoted)

    def json_is_null(self, ref: JsonRef) -> ColumnElement[bool]:
        return sa.func.coalesce(sa.func.json_type(self._node(ref)), "NULL") == "NULL"

    def json_sort_keys(self, ref: JsonRef) -> list[ColumnElement[Any]]:
        node = self._node(ref)
        json_type = sa.func.json_type(node)
        unquoted = sa.collate(sa.func.json_unquote(node), "utf8mb4_nopad_bin")
        numbers = ("INTEGER", "DOUBLE", "DECIMAL", "UNSIGNED INTEGER", "BOOLEAN")
        number = sa.case(
            (json_type == "BOOLEAN", sa.case((unquoted == "true", 1.0), else_=0.0)),
            else_=_mysql_number(unquoted),
        )
        text = sa.case((json_type == "STRING", unquoted), else_=sa.collate(sa.cast(node, sa.CHAR), "utf8mb4_nopad_bin"))
        return self._sort_by_class(json_type, ("NULL",), numbers, number, text)

    def to_text(self, expr: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        if kind in (Kind.NUMBER, Kind.BOOL):
            return sa.cast(expr, sa.CHAR)
        return expr

    def _is_number_text(self, expr: ColumnElement[Any]) -> ColumnElement[bool]:
        return expr.regexp_match(_bind(_JSON_NUMBER_REGEX))

    def _text_to_number(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return _mysql_number(expr)

    def concat(self, *parts: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.concat(*parts)

    def random(self) -> ColumnElement[Any]:
        return sa.func.rand()


def _mysql_number(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    # MariaDB cannot CAST(... AS FLOAT) through SQLAlchemy; arithmetic converts a
    # numeric string to DOUBLE. The explicit operator avoids string concatenation.
    return expr.op("+", return_type=sa.Float())(_bind(0.0))


_DIALECTS: dict[str, RuleDialect] = {
    name: dialect
    for dialect in (SqliteRuleDialect(), PostgresRuleDialect(), MysqlRuleDialect())
    for name in (dialect.name, *dialect.aliases)
}


def get_dialect(name: str | RuleDialect) -> RuleDialect:
    """The helpers for ``sqlite``, ``postgresql`` or ``mysql`` (``mariadb`` is an alias);
    a dialect object is returned as it is."""
    if isinstance(name, RuleDialect):
        return name
    dialect = _DIALECTS.get(name)
    if dialect is None:
        raise FilterError(
            f"Unsupported database dialect {name!r}: expected sqlite, postgresql or mysql"
        )
    return dialect
