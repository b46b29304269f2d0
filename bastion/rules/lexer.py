"""Tokenizer for the PocketBase filter language (fexpr).

Whitespace and ``// line comments`` separate tokens and are dropped. Tokens:

- identifiers: start with an ASCII letter, ``_``, ``@`` or ``#``; continue with ASCII
  letters, digits, ``_``, ``.`` and ``:`` (``@request.auth.id``, ``tags:length``);
- numbers: ``10``, ``-1.5`` (no exponent, no leading or trailing dot);
- strings: ``'...'`` or ``"..."``; as in PocketBase a backslash escapes the enclosing
  quote or another backslash (``"say \\"hi\\""``, ``"a\\\\b"`` is ``a\\b``), every other
  backslash is kept, so LIKE escapes such as ``"50\\%"`` reach the database unchanged;
- operators ``= != > >= < <= ~ !~`` and their ``?`` any-of variants, ``&&``, ``||``,
  ``(``, ``)`` and ``,``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from bastion.rules.errors import FilterError

_WHITESPACE = frozenset(" \t\n\r")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_@#")
_DIGITS = frozenset("0123456789")
_IDENT_PART = _IDENT_START - {"@", "#"} | _DIGITS | {".", ":"}
_SIGN_CHARS = frozenset("=?!<>~")
_SIGNS = frozenset(
    {"=", "!=", ">", ">=", "<", "<=", "~", "!~"}
    | {"?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~"}
)


class TokenKind(enum.Enum):
    """What a token is."""

    IDENT = "identifier"
    NUMBER = "number"
    STRING = "string"
    SIGN = "operator"
    AND = "&&"
    OR = "||"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    EOF = "end of filter"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, raw source text, decoded value and 0-based start offset."""

    kind: TokenKind
    text: str
    value: str | int | float
    pos: int

    @property
    def end(self) -> int:
        """Offset just past the token's last character."""
        return self.pos + len(self.text)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an EOF token; raise FilterError if invalid."""
    return _Lexer(text).run()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        while True:
            self._skip_blanks()
            if self.pos >= len(self.text):
                self.tokens.append(Token(TokenKind.EOF, "", "", self.pos))
                return self.tokens
            self.tokens.append(self._next())

    def _skip_blanks(self) -> None:
        text = self.text
        while self.pos < len(text):
            if text[self.pos] in _WHITESPACE:
                self.pos += 1
            elif text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline + 1
            else:
                return

    def _next(self) -> Token:
        ch = self.text[self.pos]
        if ch in _IDENT_START:
            return self._identifier()
        if ch in _DIGITS or (ch == "-" and self._peek(1) in _DIGITS):
            return self._number()
        if ch in "'\"":
            return self._string(ch)
        if ch in _SIGN_CHARS:
            return self._sign()
        if ch in "&|":
            return self._join(ch)
        simple = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA}
        if ch in simple:
            return self._take(simple[ch], self.pos + 1)
        raise FilterError(f"Unexpected character {ch!r} at position {self.pos}", self.pos)

    def _peek(self, offset: int) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def _take(self, kind: TokenKind, end: int, value: str | int | float | None = None) -> Token:
        raw = self.text[self.pos : end]
        token = Token(kind, raw, raw if value is None else value, self.pos)
        self.pos = end
        return token

    def _scan(self, start: int, allowed: frozenset[str]) -> int:
        end = start
        while end < len(self.text) and self.text[end] in allowed:
            end += 1
        return end

    def _identifier(self) -> Token:
        end = self._scan(self.pos + 1, _IDENT_PART)
        raw = self.text[self.pos : end]
        if raw[-1] in ".:" or ".." in raw or (len(raw) == 1 and raw in "_@#"):
            raise FilterError(f"Invalid identifier {raw!r} at position {self.pos}", self.pos)
        return self._take(TokenKind.IDENT, end)

    def _number(self) -> Token:
        end = self._scan(self.pos + 1, _DIGITS)
        if self.text.startswith(".", end):
            fraction_end = self._scan(end + 1, _DIGITS)
            if fraction_end == end + 1:
                raw = self.text[self.pos : end + 1]
                raise FilterError(
                    f"Invalid number {raw!r} at position {self.pos}: expected digits after '.'",
                    self.pos,
                )
            end = fraction_end
        raw = self.text[self.pos : end]
        value: int | float = float(raw) if "." in raw else int(raw)
        if len(raw) > 300 or not math.isfinite(float(value)):
            raise FilterError(f"Number out of range at position {self.pos}: {raw}", self.pos)
        return self._take(TokenKind.NUMBER, end, value)

    def _string(self, quote: str) -> Token:
        index = self.pos + 1
        text = self.text
        value: list[str] = []
        while index < len(text):
            ch = text[index]
            if ch == quote:
                return self._take(TokenKind.STRING, index + 1, "".join(value))
            following = text[index + 1] if index + 1 < len(text) else ""
            if ch == "\\" and following in (quote, "\\"):
                value.append(following)  # an escaped quote or backslash
                index += 2
                continue
            value.append(ch)
            index += 1
        raise FilterError(
            f"Unterminated string at position {self.pos}: expected a closing {quote}", self.pos
        )

    def _sign(self) -> Token:
        end = self._scan(self.pos, _SIGN_CHARS)
        raw = self.text[self.pos : end]
        if raw not in _SIGNS:
            raise FilterError(f"Invalid operator {raw!r} at position {self.pos}", self.pos)
        return self._take(TokenKind.SIGN, end)

    def _join(self, ch: str) -> Token:
        if self._peek(1) != ch:
            raise FilterError(
                f"Unexpected character {ch!r} at position {self.pos}: expected {ch * 2!r}",
                self.pos,
            )
        return self._take(TokenKind.AND if ch == "&" else TokenKind.OR, self.pos + 2)
