"""Compiler behaviour that needs no database: binding, errors, helpers, sort parsing."""

from __future__ import annotations

import ast as python_ast
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

import bastion.rules
from bastion.rules import (
    FilterError,
    Identifier,
    Kind,
    ResolvedField,
    SimpleFieldResolver,
    SortItem,
    compile_filter,
    compile_sort,
    parse,
    parse_sort,
)
from bastion.rules.macros import macro_value
from bastion.rules.operands import like_pattern

DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.asyncpg.dialect(),
    "mysql": mysql.asyncmy.dialect(),
}
TABLE = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("id", sa.String),
    sa.Column("title", sa.String),
    sa.Column("n", sa.Float),
    sa.Column("flag", sa.Boolean),
    sa.Column("created", sa.String),
    sa.Column("tags", sa.JSON),
    sa.Column("meta", sa.JSON),
)
RESOLVER = SimpleFieldResolver(
    TABLE, {"id", "title", "n", "flag", "created"}, multi={"tags"}, json={"meta"}
)


def sql_and_params(condition: sa.ColumnElement[bool], dialect: str) -> tuple[str, list[Any]]:
    compiled = sa.select(TABLE.c.id).where(condition).compile(dialect=DIALECTS[dialect])
    return str(compiled), list(compiled.params.values())


# -- values are always bound parameters ------------------------------------------------------

PAYLOADS = [
    "x' OR '1'='1",
    'x" OR "1"="1',
    "'; DROP TABLE items; --",
    "a\\' OR 1=1 --",
    "%' OR 1=1 OR title LIKE '%",
    "$1::text; SELECT pg_sleep(1)",
    "` OR 1=1 #",
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(
    "template",
    [
        "title = {v}",
        "title ~ {v}",
        "tags ?= {v}",
        "meta.b != {v}",
        "strftime({v}) = title",
        "n > {v}",
    ],
)
def test_user_values_never_become_sql_text(dialect: str, payload: str, template: str) -> None:
    quote = "'" if '"' in payload else '"'
    literal = quote + payload.replace(quote, "\\" + quote) + quote
    text = template.format(v=literal)
    try:
        condition = compile_filter(text, RESOLVER, dialect)
    except FilterError:
        pytest.skip("not a valid filter on this dialect (e.g. strftime directive)")
    sql, _ = sql_and_params(condition, dialect)
    assert payload not in sql
    assert "DROP" not in sql and "1=1" not in sql and "pg_sleep" not in sql


def test_payload_is_passed_as_a_parameter() -> None:
    sql, params = sql_and_params(
        compile_filter("title = \"x' OR '1'='1\"", RESOLVER, "postgresql"), "postgresql"
    )
    assert "x' OR '1'='1" in params
    assert sql.endswith("items.title = $1::VARCHAR")


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dialect", "message"),
    [
        (
            "title = 1 && nope = 2",
            "sqlite",
            'Invalid field "nope" at position 13: unknown field "nope"',
        ),
        ("title.x = 1", "sqlite", 'Invalid field "title.x" at position 0: unknown field "title.x"'),
        ("title:length = 1", "sqlite", "the :length modifier needs a multi-valued field"),
        ('title:each = "a"', "sqlite", "the :each modifier needs a multi-valued field"),
        (
            "title:isset = true",
            "sqlite",
            "the :isset modifier is only supported on @request.* fields",
        ),
        (
            "n:changed = true",
            "sqlite",
            "the :changed modifier is only supported on @request.* fields",
        ),
        (
            'strftime("%J", created) = ""',
            "postgresql",
            'Unsupported strftime directive "%J" at position 0 on postgresql',
        ),
        (
            'strftime("%e", created) = ""',
            "mysql",
            'Unsupported strftime directive "%e" at position 0 on mysql',
        ),
        (
            'strftime(title) = ""',
            "sqlite",
            'Invalid argument 1 of "strftime" at position 9: the format must be a quoted string',
        ),
        (
            'strftime("%Y", created, n) = ""',
            "sqlite",
            "the modifier (argument 3) must be a quoted string",
        ),
        (
            'strftime("%Y", created, "localtime") = ""',
            "postgresql",
            'Unsupported strftime modifier "localtime"',
        ),
        (
            'strftime("%Y", created, "weekday 0") = ""',
            "mysql",
            'Unsupported strftime modifier "weekday 0"',
        ),
        ('strftime("%Y", created, "+1.5 months") = ""', "mysql", '"month" needs a whole number'),
        ('strftime("%Y", flag) = ""', "postgresql", "'unixepoch' needs a number"),
        ('strftime("%Y", title, "unixepoch") = ""', "mysql", "'unixepoch' needs a number"),
        ('strftime("%Y", true) = ""', "mysql", "Unsupported strftime time value"),
        ('strftime("%Y", tags) = ""', "sqlite", "multi-valued fields are not supported here"),
        (
            'geoDistance(n, n, "a", 1) < 1',
            "sqlite",
            'Invalid argument 3 of "geoDistance" at position 18: expected a number',
        ),
        ("geoDistance(tags, n, 1, 1) < 1", "sqlite", "multi-valued fields are not supported here"),
        ("title = 1", "oracle", "Unsupported database dialect 'oracle'"),
    ],
)
def test_compile_errors(text: str, dialect: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(text, RESOLVER, dialect)
    assert message in str(caught.value)


def test_sqlite_passes_strftime_through() -> None:
    condition = compile_filter('strftime("%J", created, "localtime") = ""', RESOLVER, "sqlite")
    assert "strftime(" in sql_and_params(condition, "sqlite")[0]


def test_errors_keep_the_identifier_position() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter('title = "a" || (n > 1 && missing.field ?= 2)', RESOLVER, "sqlite")
    assert caught.value.position == 25


def test_compile_accepts_a_parsed_tree() -> None:
    tree = parse('title = "x"')
    assert str(compile_filter(tree, RESOLVER, "sqlite")) == str(
        compile_filter('title = "x"', RESOLVER, "sqlite")
    )


def test_mariadb_is_an_alias_of_mysql() -> None:
    sql, _ = sql_and_params(compile_filter("title != 'a'", RESOLVER, "mariadb"), "mysql")
    assert "<=>" in sql


# -- resolvers ----------------------------------------------------------------------------------


def test_simple_resolver_kinds() -> None:
    def resolve(name: str) -> ResolvedField:
        return RESOLVER.resolve(Identifier(name, None, 0))

    assert resolve("title").kind is Kind.TEXT
    assert resolve("n").kind is Kind.NUMBER
    assert resolve("flag").kind is Kind.BOOL
    assert resolve("tags").multi and resolve("tags").array
    assert resolve("meta.a.0").json_path == ("a", 0)
    assert resolve("meta").json_path == ()


def test_simple_resolver_rejects_unknown_columns() -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        SimpleFieldResolver(TABLE, {"nope"})
    resolver = SimpleFieldResolver(TABLE, {"title"})
    with pytest.raises(FilterError, match='unknown field "n"'):
        resolver.resolve(Identifier("n", None, 0))


@pytest.mark.parametrize(
    ("value", "kind", "stored"),
    [
        (None, Kind.NULL, None),
        (True, Kind.BOOL, True),
        (3, Kind.NUMBER, 3),
        (2.5, Kind.NUMBER, 2.5),
        ("x", Kind.TEXT, "x"),
        (["a", 1], Kind.TEXT, '["a",1]'),
        ({"k": "v"}, Kind.TEXT, '{"k":"v"}'),
        (datetime(2024, 1, 2, tzinfo=UTC), Kind.TEXT, "2024-01-02 00:00:00+00:00"),
    ],
)
def test_resolved_literals(value: Any, kind: Kind, stored: Any) -> None:
    field = ResolvedField.literal(value)
    assert field.is_literal and field.kind is kind and field.value == stored
    assert field.array is isinstance(value, list)


# -- helpers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("abc", "%abc%"),
        ("a%b", "a%b"),
        ("a_b", "%a\\_b%"),
        ("50\\%", "%50\\%%"),
        ("c\\d", "%c\\\\d%"),
        ("\\", "%\\\\%"),
        ("", "%%"),
        (None, "%%"),
        (10, "%10%"),
        (1.5, "%1.5%"),
        (True, "%1%"),
        ("%abc\\", "%abc\\\\"),
        ("%abc\\\\", "%abc\\\\"),
    ],
)
def test_like_pattern(value: Any, pattern: str) -> None:
    assert like_pattern(value) == pattern


def test_macros() -> None:
    now = datetime(2024, 2, 11, 9, 8, 7, 654321, tzinfo=UTC)  # a Sunday in a leap February
    expected: dict[str, str | int] = {
        "@now": "2024-02-11 09:08:07.654Z",
        "@yesterday": "2024-02-10 09:08:07.654Z",
        "@tomorrow": "2024-02-12 09:08:07.654Z",
        "@todayStart": "2024-02-11 00:00:00.000Z",
        "@todayEnd": "2024-02-11 23:59:59.999Z",
        "@monthStart": "2024-02-01 00:00:00.000Z",
        "@monthEnd": "2024-02-29 23:59:59.999Z",
        "@yearStart": "2024-01-01 00:00:00.000Z",
        "@yearEnd": "2024-12-31 23:59:59.999Z",
        "@second": 7,
        "@minute": 8,
        "@hour": 9,
        "@day": 11,
        "@month": 2,
        "@weekday": 0,
        "@year": 2024,
    }
    assert {name: macro_value(name, now) for name in expected} == expected


# -- sort -------------------------------------------------------------------------------------------


def test_parse_sort() -> None:
    items = parse_sort("-created, +title,id,@random,-title:lower")
    assert [(item.name, item.descending) for item in items] == [
        ("created", True),
        ("title", False),
        ("id", False),
        ("@random", False),
        ("title", True),
    ]
    assert items[1].field == Identifier("title", None, 11)
    assert items[4].field.modifier == "lower"
    assert parse_sort("") == () and parse_sort("  ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,c,d,e,f,g,h,i", "Too many sort fields: the maximum is 8"),
        ("x" * 256, "Sort field too long at position 0: the maximum is 255"),
        ("a,,b", "Empty sort field at position 2"),
        ("a, -", "Empty sort field at position 4"),
        ("a b", 'Invalid sort field "a b" at position 0'),
        ("title desc", 'Invalid sort field "title desc"'),
        ("n = 1", 'Invalid sort field "n = 1"'),
        ("'title'", "Invalid sort field"),
        ("title:foo", 'Unknown modifier ":foo"'),
    ],
)
def test_parse_sort_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sort(text)


def test_parse_sort_limits_are_inclusive() -> None:
    assert len(parse_sort(",".join("abcdefgh"))) == 8
    assert parse_sort("x" * 255)[0].name == "x" * 255


def test_compile_sort() -> None:
    clauses = compile_sort(parse_sort("-n,title"), RESOLVER, "postgresql")
    rendered = [str(clause.compile(dialect=DIALECTS["postgresql"])) for clause in clauses]
    assert rendered == ["items.n DESC NULLS LAST", "items.title ASC NULLS FIRST"]
    assert "random()" in str(compile_sort(parse_sort("@random"), RESOLVER, "sqlite")[0])
    assert "rand()" in str(
        compile_sort(parse_sort("@random"), RESOLVER, "mysql")[0].compile(dialect=DIALECTS["mysql"])
    )
    assert "_rowid_" in str(compile_sort(parse_sort("@rowid"), RESOLVER, "sqlite")[0])
    rowid = compile_sort(parse_sort("-@rowid"), RESOLVER, "mysql", rowid=TABLE.c.id)[0]
    assert str(rowid.compile(dialect=DIALECTS["mysql"])) == "items.id DESC"


@pytest.mark.parametrize(
    ("text", "dialect", "message"),
    [
        ("nope", "sqlite", 'Invalid sort field "nope" at position 0: unknown field "nope"'),
        ("title:length", "sqlite", "the :length modifier needs a multiple field"),
        ("title:isset", "sqlite", "the :isset modifier cannot be used for sorting"),
        ("@rowid", "postgresql", "@rowid on postgresql"),
    ],
)
def test_compile_sort_errors(text: str, dialect: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        compile_sort(parse_sort(text), RESOLVER, dialect)


def test_sort_items_are_values() -> None:
    assert SortItem(Identifier("a", None, 0)) == SortItem(
        Identifier("a", None, 0), descending=False
    )


# -- package boundaries ---------------------------------------------------------------------------


def test_rules_imports_only_stdlib_sqlalchemy_and_itself() -> None:
    package = Path(bastion.rules.__file__).parent
    allowed_roots = set(sys.stdlib_module_names) | {"sqlalchemy", "__future__"}
    for path in package.glob("*.py"):
        for node in python_ast.walk(python_ast.parse(path.read_text())):
            modules: list[str] = []
            if isinstance(node, python_ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, python_ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                assert module.split(".")[0] in allowed_roots or module.startswith(
                    "bastion.rules"
                ), f"{path.name} imports {module}"


def test_public_api_is_explicit() -> None:
    public = {name for name in dir(bastion.rules) if not name.startswith("_")}
    modules = {name for name in public if isinstance(getattr(bastion.rules, name), type(sys))}
    assert public - modules == set(bastion.rules.__all__)
