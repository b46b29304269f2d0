"""View queries: what one may read, and which field each of its columns becomes.

A view is a SELECT a superuser writes and the database runs as written, so it could read
what the API otherwise keeps write-only: ``_collections`` (collection token secrets),
``_params`` (settings secrets), password hashes, token keys, API key hashes, TOTP
secrets. :func:`unreadable` refuses such queries. It looks at the query as written, at
the database's own rewrite of it where the engine keeps one (PostgreSQL's
``pg_get_viewdef`` and MariaDB's ``VIEW_DEFINITION``: comments gone, ``*`` spelled out,
names unescaped) and, on PostgreSQL, at the columns the view depends on, so aliases,
escapes, comments and ``*`` do not hide a read.

:func:`column_fields` types each result column as PocketBase does: a plain column keeps
its field (an ``id`` of another collection becomes a relation to it), ``count(...)`` is
an integer number, ``CAST(... AS type)`` follows the type, anything else is ``json``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bastion.core.fields import Field
from bastion.core.ports import DatabaseEngine
from bastion.core.schema.collections import Collection

# Every table of ``schema/tables.py``'s ``system_tables``: a view reads none of them
# (webhook secrets, queued jobs' payloads, kept answers of other callers, events).
INTERNAL_TABLES = ("_collections", "_params", "_migrations", "_jobs", "_webhooks", "_idempotency", "_outbox")

# Bastion's tables, engine catalogs, and functions that read files or run SQL given as
# text (where a table name could be put together from strings).
_FORBIDDEN = re.compile(
    r"(?<![\w$])(?:" + "|".join(INTERNAL_TABLES) + r"|sqlite_\w*|pg_\w*|information_schema"
    r"|\w*_to_xml\w*|ts_stat|ts_rewrite|set_config|dblink\w*|lo_import|lo_export|lo_get|lo_open"
    r"|loread|lo_from_bytea|load_file|load_extension|readfile|writefile|fts3_tokenizer)(?![\w$])"
    r"|u&\"",  # PostgreSQL identifiers with escapes
    re.I,
)

WILDCARD_MESSAGE = ("Wildcard columns (*) are not supported - name the fields you want the view "
                    "query to have.")


def unreadable(query: str, engine: DatabaseEngine, collections: Iterable[Collection], rewritten: str = "",
               read_columns: Iterable[tuple[str, str]] = ()) -> str | None:
    """Why the view ``query`` may not be created (it reads something secret), or None.

    ``rewritten`` is the database's own text of the view and ``read_columns`` the
    (table, column) pairs it depends on, where the engine tells them."""
    columns = {(table.lower(), column.lower()) for table, column in read_columns}
    tables = {table for table, _ in columns}
    # PostgreSQL's rewrite may name its own catalog (OPERATOR(pg_catalog.=)); MariaDB's
    # is plain backquoted names, where a catalog means the query named it.
    server = _server_schemas(engine.server_schemas)
    for text in (query, rewritten if engine.plain_view_text else ""):
        found = _FORBIDDEN.search(text) or (server.search(text) if server is not None else None)
        if found:
            return f"The query must not read {found.group(0)!r}."
    if internal := tables & set(INTERNAL_TABLES):
        return f"The query must not read {min(internal)!r}."
    texts = [t for t in (query, rewritten) if t]
    for col in collections:
        secrets = secret_fields(col)
        if not secrets or not (col.name.lower() in tables or any(mentions(t, col.name) for t in texts)):
            continue
        for name in secrets:
            if (col.name.lower(), name.lower()) in columns or any(mentions(t, name) for t in texts):
                return f'The query must not read the secret field "{name}" of "{col.name}".'
        if has_wildcard(query, engine) or re.search(r"\.\s*\*", rewritten):
            return f'The query must name the fields it reads: "{col.name}" has secret fields.'
    return None


def secret_fields(col: Collection) -> list[str]:
    """Fields whose values the API never shows: passwords, an auth collection's token
    key, and the hidden fields of system collections (key hashes, TOTP secrets)."""
    out = [f.name for f in col.fields if f.SECRET]
    if col.is_auth:
        out.append("tokenKey")
    if col.system and col.name.startswith("_"):
        out += [f.name for f in col.fields if f.hidden and not f.SECRET]
    return out


def mentions(text: str, name: str) -> bool:
    """Whether ``name`` appears in ``text`` as a whole word, in any case and quoting."""
    return re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", text, re.I) is not None


@functools.cache
def _server_schemas(names: tuple[str, ...]) -> re.Pattern[str] | None:
    """The server's own databases (``DatabaseEngine.server_schemas``) as one pattern."""
    if not names:
        return None
    return re.compile(r"(?<![\w$])(?:" + "|".join(map(re.escape, names)) + r")(?![\w$])", re.I)


def has_wildcard(query: str, engine: DatabaseEngine) -> bool:
    """Whether the query selects ``*`` or ``t.*`` anywhere (``count(*)`` aside)."""
    tokens = tokenize(query, engine)
    if tokens is None:
        return "*" in query
    for i, tok in enumerate(tokens):
        if tok.text != "*" or i == 0:
            continue
        before = tokens[i - 1]
        if before.text in (",", ".") or before.word in ("select", "distinct", "all"):
            return True
    return False


# -- tokens -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SqlToken:
    kind: str  # word, name (quoted identifier), string, number, op
    text: str
    value: str  # an identifier without its quotes

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "name")


_COMMON = (
    r"(?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))",
    r"(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)",
    r"(?P<word>[^\W\d][\w$]*)",
    r"(?P<op>::|\|\||->>|->|<=|>=|<>|!=|\S)",
)


@functools.cache
def _pattern(string: str, name: str) -> re.Pattern[str]:
    """The token pattern for an engine's string literals and quoted names."""
    return re.compile("|".join((_COMMON[0], string, name, *_COMMON[1:])), re.S)


def tokenize(query: str, engine: DatabaseEngine) -> list[SqlToken] | None:
    """The query's tokens without spaces and comments; None if it cannot be read."""
    pattern = _pattern(engine.sql_string_pattern, engine.sql_name_pattern)
    out: list[SqlToken] = []
    pos = 0
    while pos < len(query):
        m = pattern.match(query, pos)
        if m is None or m.end() == pos:
            return None
        pos = m.end()
        kind = m.lastgroup if m.lastgroup != "tag" else "string"
        if kind in ("space", "comment"):
            continue
        text = m.group(0)
        value = text
        if kind == "name":
            value = text[1:-1].replace(text[0] * 2, text[0]) if text[0] != "[" else text[1:-1]
        elif kind == "op" and text in "'\"`[":
            return None  # an unterminated string or name
        out.append(SqlToken(kind or "op", text, value))
    return out


# -- column types -----------------------------------------------------------------------

_CLAUSE_END = {"where", "group", "having", "order", "limit", "window", "union", "intersect", "except",
               "offset", "fetch", "for", "returning"}
_NOT_ALIAS = _CLAUSE_END | {"join", "inner", "left", "right", "full", "outer", "cross", "natural", "on",
                            "using", "lateral", "straight_join", "indexed", "not", "tablesample"}
_INT_TYPES = {"int", "integer", "bigint", "smallint", "tinyint", "mediumint", "signed", "unsigned"}
_NUMBER_TYPES = {"real", "numeric", "decimal", "double", "float"}
_TEXT_TYPES = {"text", "varchar", "char", "character"}
_BOOL_TYPES = {"bool", "boolean"}


@dataclass(frozen=True)
class _Select:
    items: list[list[SqlToken]]
    sources: dict[str, str | None]  # alias or table name (lower case) -> table name, None: not a table


def column_fields(query: str, engine: DatabaseEngine, names: list[str],
                  collections: dict[str, Collection]) -> list[dict[str, Any]]:
    """A field definition for each result column ``names`` of the view ``query``;
    ``collections`` by lower-case name."""
    parsed = _parse_select(tokenize(query, engine))
    items = parsed.items if parsed is not None and len(parsed.items) == len(names) else None
    out = []
    for i, name in enumerate(names):
        spec: dict[str, Any] = {"name": name, "type": "json"}
        if items is not None and parsed is not None:
            spec = _item_field(_without_alias(items[i], name), name, parsed.sources, collections) or spec
        if name == "id":
            spec = {"name": "id", "type": "text", "system": True, "primaryKey": True}
        out.append(spec)
    return out


def selects_wildcard(query: str, engine: DatabaseEngine) -> bool:
    """Whether the outermost select list has ``*`` or ``t.*`` (PocketBase refuses those)."""
    parsed = _parse_select(tokenize(query, engine))
    return parsed is not None and any(item and item[-1].text == "*" for item in parsed.items)


def _parse_select(tokens: list[SqlToken] | None) -> _Select | None:
    if not tokens or tokens[0].word != "select":
        return None  # WITH ... or something else: every column is json, as in PocketBase
    i = 1
    if i < len(tokens) and tokens[i].word in ("distinct", "all"):
        i += 1
        if i < len(tokens) and tokens[i].word == "on":  # PostgreSQL's DISTINCT ON (...)
            i = _skip_group(tokens, i + 1)
    items: list[list[SqlToken]] = [[]]
    depth = 0
    while i < len(tokens):
        tok = tokens[i]
        if depth == 0 and tok.word == "from":
            break
        if depth == 0 and tok.text == ",":
            items.append([])
        else:
            depth += (tok.text == "(") - (tok.text == ")")
            items[-1].append(tok)
        i += 1
    sources = _sources(tokens, i + 1)
    if sources is None:
        return None
    return _Select(items, sources)


def _skip_group(tokens: list[SqlToken], i: int) -> int:
    """The index after the parenthesised group starting at ``i`` (or ``i`` when none)."""
    if i >= len(tokens) or tokens[i].text != "(":
        return i
    depth = 0
    while i < len(tokens):
        depth += (tokens[i].text == "(") - (tokens[i].text == ")")
        i += 1
        if depth == 0:
            break
    return i


def _sources(tokens: list[SqlToken], i: int) -> dict[str, str | None] | None:
    """The tables of a FROM clause by alias; None when it holds a compound query."""
    out: dict[str, str | None] = {}
    want_table = True
    while i < len(tokens):
        tok = tokens[i]
        if tok.word in ("union", "intersect", "except"):
            return None
        if tok.word in _CLAUSE_END:
            break
        if tok.text == "(":
            end = _skip_group(tokens, i)
            if want_table:  # a subquery: its alias is no collection
                alias, end = _alias(tokens, end)
                if alias:
                    out[alias.lower()] = None
                want_table = False
            i = end
            continue
        if tok.text == "," or tok.word == "join":
            want_table = True
        elif tok.word in ("on", "using"):
            want_table = False
        elif want_table and tok.is_name and tok.word not in _NOT_ALIAS:
            table = tok.value
            while i + 2 < len(tokens) and tokens[i + 1].text == "." and tokens[i + 2].is_name:
                i += 2  # schema-qualified: main.posts, public.posts
                table = tokens[i].value
            alias, end = _alias(tokens, i + 1)
            resolved: str | None = table
            if end < len(tokens) and tokens[end].text == "(":
                resolved = None  # a function, or a table with renamed columns
            out[(alias or table).lower()] = resolved
            want_table = False
            i = end
            continue
        i += 1
    return out


def _alias(tokens: list[SqlToken], i: int) -> tuple[str, int]:
    if i < len(tokens) and tokens[i].word == "as":
        i += 1
        if i < len(tokens) and tokens[i].is_name:
            return tokens[i].value, i + 1
        return "", i
    if i < len(tokens) and tokens[i].is_name and tokens[i].word not in _NOT_ALIAS:
        return tokens[i].value, i + 1
    return "", i


def _without_alias(item: list[SqlToken], name: str) -> list[SqlToken]:
    """The expression of a select item whose result column is ``name``."""
    if len(item) >= 2 and item[-1].is_name and item[-1].value.lower() == name.lower() and item[-2].text != ".":
        item = item[:-1]
        if item and item[-1].word == "as":
            item = item[:-1]
    return item


def _item_field(expr: list[SqlToken], name: str, sources: dict[str, str | None],
                collections: dict[str, Collection]) -> dict[str, Any] | None:
    if len(expr) in (1, 3) and all(t.is_name for t in expr[::2]) and (len(expr) == 1 or expr[1].text == "."):
        return _column_field(expr[0].value if len(expr) == 3 else None, expr[-1].value, name, sources, collections)
    if len(expr) < 3 or expr[1].text != "(" or _skip_group(expr, 1) != len(expr):
        return None
    func = expr[0].word
    if func == "count":
        return {"name": name, "type": "number", "onlyInt": True}
    if func == "total":
        return {"name": name, "type": "number"}
    if func == "cast":
        inside = expr[2:-1]
        cut = max((i for i, t in enumerate(inside) if t.word == "as"), default=-1)
        kind = inside[cut + 1].word if 0 <= cut < len(inside) - 1 else ""
        if kind in _INT_TYPES:
            return {"name": name, "type": "number", "onlyInt": True}
        if kind in _NUMBER_TYPES:
            return {"name": name, "type": "number"}
        if kind in _TEXT_TYPES:
            return {"name": name, "type": "text"}
        if kind in _BOOL_TYPES:
            return {"name": name, "type": "bool"}
    return None


def column_source(query: str, engine: DatabaseEngine, names: list[str], column: str,
                  collections: dict[str, Collection]) -> tuple[Collection, Field] | None:
    """The collection and field that the view's result column ``column`` reads as it is
    (``t.col`` or ``col``), or None (an expression, or a query this reader cannot follow);
    ``names`` are the view's result columns in order, ``collections`` by lower-case name."""
    parsed = _parse_select(tokenize(query, engine))
    if parsed is None or len(parsed.items) != len(names) or column not in names:
        return None
    expr = _without_alias(parsed.items[names.index(column)], column)
    if not (len(expr) in (1, 3) and all(t.is_name for t in expr[::2]) and (len(expr) == 1 or expr[1].text == ".")):
        return None
    return _source(expr[0].value if len(expr) == 3 else None, expr[-1].value, parsed.sources, collections)


def _source(qualifier: str | None, column: str, sources: dict[str, str | None],
            collections: dict[str, Collection]) -> tuple[Collection, Field] | None:
    tables = [sources.get(qualifier.lower())] if qualifier is not None else list(sources.values())
    for table in tables:
        col = collections.get(table.lower()) if table else None
        if col is None:
            continue
        field = col.field(column) or next((f for f in col.fields if f.name.lower() == column.lower()), None)
        if field is not None:
            return col, field
    return None


def _column_field(qualifier: str | None, column: str, name: str, sources: dict[str, str | None],
                  collections: dict[str, Collection]) -> dict[str, Any] | None:
    found = _source(qualifier, column, sources, collections)
    if found is not None:
        col, field = found
        if field.name == "id":
            if name == "id":
                return None
            return {"name": name, "type": "relation", "collectionId": col.id, "maxSelect": 1}
        return {**field.to_dict(), "id": "", "name": name, "system": False, "required": False}
    return None
