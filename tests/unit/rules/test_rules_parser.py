"""Lexer and parser: tokens, tree shapes, error messages with positions, limits."""

from __future__ import annotations

import pytest

from bastion.rules import (
    And,
    Call,
    Comparison,
    FilterError,
    Identifier,
    Literal,
    Macro,
    Op,
    Or,
    parse,
    unparse,
)
from bastion.rules.lexer import TokenKind, tokenize


def ident(name: str, pos: int, modifier: str | None = None) -> Identifier:
    return Identifier(name, modifier, pos)


# -- lexer -------------------------------------------------------------------------------


def test_tokens_with_positions() -> None:
    tokens = tokenize('a.b:lower?!="x" && (n>=-1.5)')
    assert [(t.kind, t.value, t.pos) for t in tokens] == [
        (TokenKind.IDENT, "a.b:lower", 0),
        (TokenKind.SIGN, "?!=", 9),
        (TokenKind.STRING, "x", 12),
        (TokenKind.AND, "&&", 16),
        (TokenKind.LPAREN, "(", 19),
        (TokenKind.IDENT, "n", 20),
        (TokenKind.SIGN, ">=", 21),
        (TokenKind.NUMBER, -1.5, 23),
        (TokenKind.RPAREN, ")", 27),
        (TokenKind.EOF, "", 28),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"plain"', "plain"),
        ("'single'", "single"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'it\'s'", "it's"),
        ("\"mixed 'quotes'\"", "mixed 'quotes'"),
        (r'"50\%"', r"50\%"),
        (r'"back\slash"', r"back\slash"),
        (r"'\"kept\"'", r"\"kept\""),
        ('"multi\nline"', "multi\nline"),
        ('""', ""),
    ],
)
def test_string_escapes_follow_pocketbase(text: str, value: str) -> None:
    token = tokenize(text)[0]
    assert (token.kind, token.value) == (TokenKind.STRING, value)


@pytest.mark.parametrize(
    ("text", "value"), [("10", 10), ("-1", -1), ("1.25", 1.25), ("-0.5", -0.5), ("007", 7)]
)
def test_numbers(text: str, value: float) -> None:
    token = tokenize(text)[0]
    assert token.kind is TokenKind.NUMBER and token.value == value
    assert type(token.value) is type(value)


@pytest.mark.parametrize(
    "name",
    [
        "id",
        "_id",
        "@request.auth.id",
        "#tag",
        "author.name",
        "tags:length",
        "@collection.users:u.name",
        "comments_via_post.msg",
        "a1.b2_c3",
    ],
)
def test_identifiers_are_single_tokens(name: str) -> None:
    tokens = tokenize(name)
    assert [t.kind for t in tokens] == [TokenKind.IDENT, TokenKind.EOF]
    assert tokens[0].value == name


def test_comments_and_whitespace_are_skipped() -> None:
    tokens = tokenize("// heading\n a = 1 // trailing\n\t&& b = 2 //")
    assert [t.text for t in tokens] == ["a", "=", "1", "&&", "b", "=", "2", ""]


# -- parser: tree shapes ------------------------------------------------------------------------


def test_simple_comparison() -> None:
    assert parse('title = "x"') == Comparison(ident("title", 0), Op.EQ, Literal("x", 8), 0)


def test_and_binds_tighter_than_or() -> None:
    tree = parse("a = 1 || b = 2 && c = 3 || d = 4")
    assert isinstance(tree, Or) and len(tree.items) == 3
    assert isinstance(tree.items[1], And)
    assert unparse(tree) == "a = 1 || b = 2 && c = 3 || d = 4"


def test_chains_are_flattened() -> None:
    tree = parse("a = 1 && (b = 2 && c = 3) && d = 4")
    assert isinstance(tree, And) and len(tree.items) == 4


def test_parentheses_override_precedence() -> None:
    tree = parse("(a = 1 || b = 2) && c = 3")
    assert isinstance(tree, And) and isinstance(tree.items[0], Or)
    assert unparse(tree) == "(a = 1 || b = 2) && c = 3"


@pytest.mark.parametrize(
    ("text", "value"),
    [("x = true", True), ("x = FALSE", False), ("x = null", None), ("x = Null", None)],
)
def test_keywords_are_literals(text: str, value: bool | None) -> None:
    tree = parse(text)
    assert isinstance(tree, Comparison) and tree.right == Literal(value, 4)


def test_every_operator() -> None:
    for op in Op:
        tree = parse(f"a {op.value} 1")
        assert isinstance(tree, Comparison) and tree.op is op
    assert Op.ANY_GTE.is_any and Op.ANY_GTE.base is Op.GTE and Op.LIKE.base is Op.LIKE


def test_modifiers_and_macros() -> None:
    tree = parse("tags:length > @hour && @collection.users:u.name:lower = @now")
    assert isinstance(tree, And)
    first, second = tree.items
    assert isinstance(first, Comparison) and isinstance(second, Comparison)
    assert first.left == ident("tags", 0, "length") and first.right == Macro("@hour", 14)
    assert second.left == ident("@collection.users:u.name", 23, "lower")
    assert second.right == Macro("@now", 56)


def test_function_calls() -> None:
    tree = parse('strftime("%Y", created, "+1 day",) = "2024"')
    assert isinstance(tree, Comparison)
    assert tree.left == Call(
        "strftime", (Literal("%Y", 9), ident("created", 15), Literal("+1 day", 24)), 0
    )
    nested = parse('strftime("%Y", strftime("%Y-%m", strftime("%Y", created))) != ""')
    assert isinstance(nested, Comparison) and isinstance(nested.left, Call)


def test_cache_returns_the_same_tree() -> None:
    assert parse("cached = 1") is parse("cached = 1")


@pytest.mark.parametrize(
    "text",
    [
        'a = 1 && (b ?~ "x" || c != null) && d:lower >= @todayStart',
        "geoDistance(lon, lat, 1.5, -2) < 10",
        'x = \'say "hi"\' || y = "it\'s"',
        "n = -0.001 && m = 123456789",
    ],
)
def test_unparse_round_trips(text: str) -> None:
    tree = parse(text)
    assert unparse(parse(unparse(tree))) == unparse(tree)


# -- parser: errors carry a position and say what was expected ---------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("title = ", 'Unexpected end of filter at position 8: expected a value after "="', 8),
        ("created >= ", 'Unexpected end of filter at position 11: expected a value after ">="', 11),
        (
            "title",
            'Unexpected end of filter at position 5: expected a comparison operator after "title"',
            5,
        ),
        (
            "a = 1 b = 2",
            'Unexpected "b" at position 6: expected "&&", "||" or the end of the filter',
            6,
        ),
        ("a = 1 &&", "Unexpected end of filter at position 8: expected an expression", 8),
        (
            "(a = 1",
            'Unexpected end of filter at position 6: expected ")" to close the "(" at position 0',
            6,
        ),
        ("a = 1)", 'Unexpected ")" at position 5', 5),
        ("()", 'Unexpected ")" at position 1: expected an expression inside the parentheses', 1),
        ("", "Empty filter at position 0", 0),
        ("   // only a comment", "Empty filter at position 0", 0),
        ('a = "open', "Unterminated string at position 4", 4),
        (r'a = "ends with \"', "Unterminated string at position 4", 4),
        ("a => 1", "Invalid operator '=>' at position 2", 2),
        ("a == 1", "Invalid operator '==' at position 2", 2),
        ("a ! 1", "Invalid operator '!' at position 2", 2),
        ("a = 1 & b = 2", "Unexpected character '&' at position 6: expected '&&'", 6),
        ("a = 1 | b = 2", "Unexpected character '|' at position 6: expected '||'", 6),
        ("a = $1", "Unexpected character '$' at position 4", 4),
        ("a = 1.", "Invalid number '1.' at position 4", 4),
        ("a = -", "Unexpected character '-' at position 4", 4),
        ("a. = 1", "Invalid identifier 'a.' at position 0", 0),
        ("a.. = 1", "Invalid identifier", 0),
        ("@ = 1", "Invalid identifier '@' at position 0", 0),
        ("tags:foo = 1", 'Unknown modifier ":foo" at position 0', 0),
        ("a = 1 = 2", 'Unexpected "=" at position 6', 6),
        ("= 1", 'Unexpected "=" at position 0: expected an expression', 0),
        ("a = (1)", 'Unexpected "(" at position 4: expected a value after "="', 4),
        (
            "foo(1) = 1",
            'Unknown function "foo" at position 0: expected one of geoDistance, strftime',
            0,
        ),
        (
            "geoDistance(1, 2) < 1",
            'Wrong number of arguments for "geoDistance" at position 0: expected 4, got 2',
            0,
        ),
        (
            "strftime() = 1",
            'Wrong number of arguments for "strftime" at position 0: expected 1 to 10, got 0',
            0,
        ),
        (
            "strftime('%Y' created) = 1",
            'Unexpected "created" at position 14: expected "," or ")"',
            14,
        ),
        ("strftime('%Y',, x) = 1", 'Unexpected "," at position 14: expected an argument', 14),
        ("strftime('%Y' = 1", 'Unexpected "=" at position 14', 14),
        ("strftime (1) = 1", 'Unexpected "(" at position 9', 9),
        ("a = " + "9" * 400, "Number out of range at position 4", 4),
    ],
)
def test_errors(text: str, message: str, position: int | None) -> None:
    with pytest.raises(FilterError) as caught:
        parse(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
    if position is not None:
        assert caught.value.position == position


# -- limits -------------------------------------------------------------------------------------


def test_length_limit() -> None:
    padding = " " * (3500 - len("a = 1"))
    assert isinstance(parse("a = 1" + padding), Comparison)
    with pytest.raises(FilterError, match="Filter too long at position 3500: the maximum is 3500"):
        parse("a = 1" + padding + " ")


def test_expression_limit() -> None:
    assert isinstance(parse(" && ".join(["a = 1"] * 200)), And)
    with pytest.raises(
        FilterError, match="Too many expressions at position 1800: the maximum is 200"
    ):
        parse(" || ".join(["a = 1"] * 201))


def test_depth_limit() -> None:
    assert isinstance(parse("(" * 64 + "a = 1" + ")" * 64), Comparison)
    with pytest.raises(
        FilterError, match="nested too deeply at position 64: the maximum depth is 64"
    ):
        parse("(" * 65 + "a = 1" + ")" * 65)


def test_function_nesting_limit() -> None:
    ok = 'strftime("%Y", strftime("%Y", strftime("%Y"))) = 1'
    assert isinstance(parse(ok), Comparison)
    too_deep = 'strftime("%Y", strftime("%Y", strftime("%Y", strftime("%Y")))) = 1'
    with pytest.raises(FilterError, match="Function calls nested too deeply at position 45"):
        parse(too_deep)
