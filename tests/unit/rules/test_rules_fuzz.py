"""Property tests: parse never fails with anything but FilterError; trees round-trip."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql, sqlite

from bastion.rules import (
    And,
    Comparison,
    Expr,
    FilterError,
    Identifier,
    Literal,
    Macro,
    Op,
    Or,
    SimpleFieldResolver,
    compile_filter,
    parse,
    unparse,
)
from bastion.rules.ast import DATETIME_MACROS, MODIFIERS

FRAGMENTS = [
    "a",
    "b.c",
    "tags:each",
    "x:lower",
    "@request.auth.id",
    "@now",
    "true",
    "null",
    "1",
    "-2.5",
    '"s"',
    "'t'",
    '"',
    "'",
    "\\",
    "=",
    "!=",
    "?=",
    "?!~",
    "~",
    ">=",
    "<",
    "&&",
    "||",
    "&",
    "|",
    "(",
    ")",
    ",",
    "strftime(",
    "geoDistance(",
    "//",
    "\n",
    " ",
    "?",
    "!",
    ":",
    ".",
    "@",
    "#",
    "-",
]

# No example database: the tests leave nothing behind in the working tree.
FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _parse_or_filter_error(text: str) -> None:
    try:
        parse(text)
    except FilterError as error:
        assert error.position is None or 0 <= error.position <= len(text)
        assert str(error)


@FUZZ
@given(st.text(max_size=120))
def test_random_text_parses_or_raises_filter_error(text: str) -> None:
    _parse_or_filter_error(text)


@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join))
def test_token_soup_parses_or_raises_filter_error(text: str) -> None:
    _parse_or_filter_error(text)


@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25).map(" ".join))
def test_spaced_token_soup_parses_or_raises_filter_error(text: str) -> None:
    _parse_or_filter_error(text)


# -- generated valid trees ------------------------------------------------------------------

names = st.sampled_from(["title", "n", "flag", "tags", "meta.a", "meta.b.0"])
identifiers = st.builds(
    Identifier,
    names,
    st.sampled_from([None, "lower"]) | st.sampled_from(sorted(MODIFIERS - {"isset", "changed"})),
    st.just(0),
)
strings = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\\"), max_size=12)
literals = st.builds(
    Literal,
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3))
    | strings,
    st.just(0),
)
operands = (
    identifiers | literals | st.builds(Macro, st.sampled_from(sorted(DATETIME_MACROS)), st.just(0))
)
comparisons = st.builds(Comparison, operands, st.sampled_from(list(Op)), operands, st.just(0))


def _combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    items = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.builds(And, items) | st.builds(Or, items)


trees = st.recursive(comparisons, _combine, max_leaves=8)


@FUZZ
@given(trees)
def test_unparsed_trees_parse_back_to_the_same_text(tree: Expr) -> None:
    text = unparse(tree)
    assert unparse(parse(text)) == text


TABLE = sa.Table(
    "t",
    sa.MetaData(),
    sa.Column("title", sa.String),
    sa.Column("n", sa.Float),
    sa.Column("flag", sa.Boolean),
    sa.Column("tags", sa.JSON),
    sa.Column("meta", sa.JSON),
)
RESOLVER = SimpleFieldResolver(TABLE, {"title", "n", "flag"}, multi={"tags"}, json={"meta"})
DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.asyncpg.dialect(),
    "mysql": mysql.asyncmy.dialect(),
}


@settings(max_examples=60, deadline=None, database=None)
@given(trees)
def test_generated_trees_compile_on_every_dialect(tree: Expr) -> None:
    for name, dialect in DIALECTS.items():
        try:
            condition = compile_filter(tree, RESOLVER, name)
        except FilterError:
            continue  # e.g. :length on a plain text field
        str(sa.select(TABLE.c.title).where(condition).compile(dialect=dialect))
