"""Pratt parser: filter text -> immutable :mod:`bastion.rules.ast` tree.

Grammar (``&&`` binds tighter than ``||``; both are left-associative and flattened
into n-ary :class:`~bastion.rules.ast.And` / :class:`~bastion.rules.ast.Or` nodes)::

    expr       := comparison | "(" expr ")" | expr "&&" expr | expr "||" expr
    comparison := operand OP operand
    operand    := IDENT | NUMBER | STRING | call
    call       := IDENT "(" [ operand ("," operand)* [","] ] ")"   # no space before "("

``true``, ``false`` and ``null`` (any case) are literals; ``@now`` and friends are
macros; every other identifier is left for the field resolver.
"""

from __future__ import annotations

import functools
from typing import NoReturn

from bastion.rules.ast import (
    FUNCTION_ARITY,
    MACROS,
    MAX_CALL_NESTING,
    MAX_DEPTH,
    MAX_EXPRESSIONS,
    MAX_FILTER_LENGTH,
    MODIFIERS,
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
)
from bastion.rules.errors import FilterError
from bastion.rules.lexer import Token, TokenKind, tokenize

_BINDING_POWER = {TokenKind.OR: 10, TokenKind.AND: 20}
_KEYWORDS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
_OPERAND_TOKENS = (TokenKind.IDENT, TokenKind.NUMBER, TokenKind.STRING)


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Expr:
    """Parse filter ``text`` into an expression tree (cached per distinct string).

    Raises :class:`~bastion.rules.errors.FilterError` for empty, malformed or too
    large filters (over 3500 characters, 200 comparisons or 64 nested parentheses).
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(
            f"Filter too long at position {MAX_FILTER_LENGTH}: "
            f"the maximum is {MAX_FILTER_LENGTH} characters",
            MAX_FILTER_LENGTH,
        )
    return _Parser(tokenize(text)).parse()


def parse_identifier(raw: str, pos: int = 0) -> Identifier:
    """Split a raw identifier token into name and modifier, validating the modifier."""
    head, dot, last = raw.rpartition(".")
    if ":" not in last:
        return Identifier(raw, None, pos)
    field, _, modifier = last.partition(":")
    if modifier not in MODIFIERS:
        known = ", ".join(sorted(MODIFIERS))
        raise FilterError(
            f'Unknown modifier ":{modifier}" at position {pos}: expected one of {known}', pos
        )
    return Identifier(f"{head}{dot}{field}", modifier, pos)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.comparisons = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _at(self, kind: TokenKind) -> bool:
        # A method rather than "self.current.kind is ...", which mypy would narrow
        # across _advance() calls.
        return self.tokens[self.index].kind is kind

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not TokenKind.EOF:
            self.index += 1
        return token

    def parse(self) -> Expr:
        if self._at(TokenKind.EOF):
            raise FilterError("Empty filter at position 0: expected an expression", 0)
        expr = self._expression(0, depth=0)
        if not self._at(TokenKind.EOF):
            self._fail('expected "&&", "||" or the end of the filter')
        return expr

    def _expression(self, min_power: int, depth: int) -> Expr:
        left = self._prefix(depth)
        while (power := _BINDING_POWER.get(self.current.kind, 0)) > min_power:
            joiner = self._advance()
            right = self._expression(power, depth)
            left = _join(joiner.kind, left, right)
        return left

    def _prefix(self, depth: int) -> Expr:
        token = self.current
        if token.kind is TokenKind.LPAREN:
            if depth >= MAX_DEPTH:
                raise FilterError(
                    f"Filter nested too deeply at position {token.pos}: "
                    f"the maximum depth is {MAX_DEPTH}",
                    token.pos,
                )
            self._advance()
            if self._at(TokenKind.RPAREN):
                self._fail("expected an expression inside the parentheses")
            inner = self._expression(0, depth + 1)
            if not self._at(TokenKind.RPAREN):
                self._fail(f'expected ")" to close the "(" at position {token.pos}')
            self._advance()
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        start = self.current
        left = self._operand("expected an expression such as 'field = value'", nesting=0)
        sign = self.current
        if sign.kind is not TokenKind.SIGN:
            previous = _shorten(self.tokens[self.index - 1].text)
            self._fail(f'expected a comparison operator after "{previous}"')
        self._advance()
        right = self._operand(f'expected a value after "{sign.text}"', nesting=0)
        self.comparisons += 1
        if self.comparisons > MAX_EXPRESSIONS:
            raise FilterError(
                f"Too many expressions at position {start.pos}: the maximum is {MAX_EXPRESSIONS}",
                start.pos,
            )
        return Comparison(left, Op(sign.text), right, start.pos)

    def _operand(self, expected: str, nesting: int) -> Operand:
        token = self.current
        if token.kind not in _OPERAND_TOKENS:
            self._fail(expected)
        self._advance()
        if token.kind is TokenKind.IDENT:
            following = self.current
            if following.kind is TokenKind.LPAREN and following.pos == token.end:
                return self._call(token, nesting)
            return _identifier_operand(token)
        return Literal(token.value, token.pos)

    def _call(self, name: Token, nesting: int) -> Call:
        if nesting > MAX_CALL_NESTING:
            raise FilterError(
                f"Function calls nested too deeply at position {name.pos}: "
                f"at most {MAX_CALL_NESTING} calls may be nested inside another",
                name.pos,
            )
        arity = FUNCTION_ARITY.get(name.text)
        if arity is None:
            known = ", ".join(sorted(FUNCTION_ARITY))
            raise FilterError(
                f'Unknown function "{name.text}" at position {name.pos}: expected one of {known}',
                name.pos,
            )
        self._advance()  # "("
        args = self._arguments(name, nesting)
        low, high = arity
        if not low <= len(args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise FilterError(
                f'Wrong number of arguments for "{name.text}" at position {name.pos}: '
                f"expected {expected}, got {len(args)}",
                name.pos,
            )
        return Call(name.text, tuple(args), name.pos)

    def _arguments(self, name: Token, nesting: int) -> list[Operand]:
        args: list[Operand] = []
        while not self._at(TokenKind.RPAREN):
            expected = f'expected an argument or ")" in the call to "{name.text}"'
            args.append(self._operand(expected, nesting + 1))
            if self._at(TokenKind.COMMA):
                self._advance()
            elif not self._at(TokenKind.RPAREN):
                self._fail(f'expected "," or ")" in the call to "{name.text}"')
        self._advance()  # ")"
        return args

    def _fail(self, expected: str) -> NoReturn:
        token = self.current
        if token.kind is TokenKind.EOF:
            message = f"Unexpected end of filter at position {token.pos}: {expected}"
        else:
            message = f'Unexpected "{_shorten(token.text)}" at position {token.pos}: {expected}'
        raise FilterError(message, token.pos)


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _identifier_operand(token: Token) -> Operand:
    raw = token.text
    if raw.lower() in _KEYWORDS:
        return Literal(_KEYWORDS[raw.lower()], token.pos)
    if raw in MACROS:
        return Macro(raw, token.pos)
    return parse_identifier(raw, token.pos)


def _join(kind: TokenKind, left: Expr, right: Expr) -> Expr:
    node_type: type[And] | type[Or] = And if kind is TokenKind.AND else Or
    items: list[Expr] = []
    for side in (left, right):
        items.extend(side.items if isinstance(side, node_type) else (side,))
    return node_type(tuple(items))
