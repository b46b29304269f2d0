"""The ``fields`` query parameter: pick keys (dot paths, ``*``) from any JSON response.

As in PocketBase: the parameter is split at commas outside parentheses and quotes, each
part trimmed; ``path:modifier(args)`` applies a modifier to the value at ``path``. The
only modifier is ``excerpt(max[, withEllipsis])`` (plain text of an HTML string, ``max``
a positive integer; ``withEllipsis`` true for ``1 t T TRUE true True``). A malformed
parameter (unbalanced parenthesis or quote, unknown modifier, bad arguments) answers 400.

A path keeps the key it names (with the modifier applied when it ends there) or, when it
goes deeper, the keys it names inside; ``*`` keeps every key of its level no other path
starts with. A key named twice keeps the last path's modifier. On a list page the paths
apply to each item.
"""

from __future__ import annotations

import re
from typing import Any

from bastion.api.html_text import TooDeep, excerpt
from bastion.core.errors import BadRequest
from bastion.core.fields.gocast import underscores_ok

_TOKEN_SPACE = "\t\n\v\f\r \x85\xa0"
_GO_SPACE = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
             "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_DECIMAL = re.compile(r"^([-+]?[0-9]*)(\.[0-9]*)?$")


class FieldsParamError(BadRequest):
    """A ``fields`` parameter PocketBase refuses (answered with the generic 400)."""

    def __init__(self) -> None:
        super().__init__()


def tokens(text: str, separators: str = ",", parentheses: bool = True) -> list[str]:
    """``text`` split at ``separators`` outside quotes (and parentheses when
    ``parentheses``), each part trimmed of whitespace that is no separator; empty parts
    are dropped. Unbalanced parentheses or quotes raise FieldsParamError."""
    text = text.split("\x00", 1)[0]  # a NUL ends the text, as in PocketBase's reader
    trim = "".join(c for c in _TOKEN_SPACE if c not in separators)
    out: list[str] = []
    buf: list[str] = []
    depth = 0
    quote = ""
    prev = ""
    for ch in text:
        if prev != "\\":
            if parentheses and ch == "(" and not quote:
                depth += 1
            elif parentheses and ch == ")" and depth and not quote:
                depth -= 1
            elif ch in "'\"`":
                if quote == ch:
                    quote = ""
                elif not quote:
                    quote = ch
        if ch in separators and not depth and not quote:
            token = "".join(buf).strip(trim)
            if token:
                out.append(token)
            buf, prev = [], ""
            continue
        buf.append(ch)
        prev = ch
    if depth or quote:
        raise FieldsParamError()
    token = "".join(buf).strip(trim)
    if token:
        out.append(token)
    return out


def go_int(text: str) -> int:
    """``text`` as PocketBase's cast reads an int: a decimal part cut off, then a signed
    integer with an optional ``0x``/``0o``/``0b``/``0`` base prefix and ``_`` between
    digits; 0 when it is none or does not fit in 64 bits."""
    if "." in text:
        m = _DECIMAL.match(text)
        if m:
            text = m.group(1)
            text = text + "0" if text in ("", "-", "+") else text
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body:
        return 0
    base, digits = 10, body
    if body[0] == "0":
        if len(body) >= 3 and body[1] in "bBoOxX":
            base, digits = {"b": 2, "o": 8, "x": 16}[body[1].lower()], body[2:]
        else:
            base, digits = 8, body[1:]
    value = 0
    for ch in digits:
        if ch == "_":
            continue
        if "0" <= ch <= "9":
            digit = ord(ch) - 48
        elif "a" <= ch.lower() <= "z":
            digit = ord(ch.lower()) - 87
        else:
            return 0
        if digit >= base:
            return 0
        value = value * base + digit
    if "_" in digits and not underscores_ok(body):
        return 0
    value = -value if text[0] == "-" else value
    return value if -(2**63) <= value < 2**63 else 0


class Excerpt:
    def __init__(self, limit: int, ellipsis: bool):
        self.limit = limit
        self.ellipsis = ellipsis

    def __call__(self, value: Any) -> Any:
        return excerpt(value, self.limit, self.ellipsis) if isinstance(value, str) else value


def _modifier(text: str) -> Excerpt:
    parts = tokens(text, ",() ", parentheses=False)
    if not parts or parts[0] != "excerpt":
        raise FieldsParamError()
    args = parts[1:]
    if not 1 <= len(args) <= 2:
        raise FieldsParamError()
    limit = go_int(args[0])
    if limit <= 0:
        raise FieldsParamError()
    return Excerpt(limit, len(args) > 1 and args[1] in _TRUE)


Fields = dict[str, "Excerpt | None"]


def parse_fields(spec: str) -> Fields:
    """``fields`` as {path: modifier or None}; a path given twice keeps its last form."""
    out: Fields = {}
    for token in tokens(spec):
        path, colon, modifier = token.strip(_GO_SPACE).partition(":")
        out[path] = _modifier(modifier) if colon else None
    return out


class _Level:
    """The paths that apply at one level of the data, with lookups by key."""

    def __init__(self, fields: Fields):
        self.fields = fields
        self.by_prefix: dict[str, list[str]] = {}
        for path in fields:
            self._index(path)
        self.children: dict[str, _Level] = {}

    def _index(self, path: str) -> None:
        # A key k is matched by the paths p with (p + ".").startswith(k + "."): index
        # every prefix of p that ends before a dot, and p itself.
        full = path + "."
        at = full.find(".")
        while at >= 0:
            self.by_prefix.setdefault(full[:at], []).append(path)
            at = full.find(".", at + 1)

    def add(self, path: str, modifier: Excerpt | None) -> None:
        if path not in self.fields:
            self._index(path)
        self.fields[path] = modifier

    def pick(self, data: dict[str, Any]) -> dict[str, Any]:
        if "*" in self.fields:
            star = self.fields["*"]
            for key in data:
                if key not in self.by_prefix:
                    self.add(key, star)
        out: dict[str, Any] = {}
        for key, value in data.items():
            paths = self.by_prefix.get(key)
            if not paths:
                continue
            exact = [p for p in paths if p == key or p == key + "."]
            if exact:
                modifier = self.fields[exact[-1]]
                out[key] = modifier(value) if modifier is not None else value
                continue
            child = self.children.get(key)
            if child is None:
                child = self.children[key] = _Level({p[len(key) + 1:]: self.fields[p] for p in paths})
            out[key] = child.apply(value)
        return out

    def apply(self, data: Any) -> Any:
        if isinstance(data, dict):
            return self.pick(data)
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return [self.pick(item) if isinstance(item, dict) else item for item in data]
        return data


def pick_fields(data: Any, spec: str) -> Any:
    fields = parse_fields(spec)
    if not fields:
        return data
    level = _Level(fields)
    try:
        if isinstance(data, dict) and isinstance(data.get("items"), list) and "page" in data:
            return {**data, "items": level.apply(data["items"])}
        return level.apply(data)
    except TooDeep:
        # PocketBase's HTML parser gives up past 512 nested elements; the response then
        # goes out whole, nothing picked.
        return data
