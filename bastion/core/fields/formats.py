"""The url and email checks of PocketBase's url and email fields.

PocketBase validates both with the ``is.URL`` and ``is.EmailFormat`` rules of
ozzo-validation, which use the govalidator package. Those rules are broader than the
names suggest: ``example.com``, ``mailto:a@b.c`` and ``ws://x.com`` are urls, while
``HTTPS://x.com`` and ``http://0.0.0.0`` are not; ``"a"@b.com`` and ``ü@b.com`` are
email addresses, while ``a..b@c.com`` and ``a@b.c1`` are not. This module reproduces
both checks:

* ``is_url``: the text is no longer than 2082 characters, does not start with ``.``,
  parses as Go's ``net/url`` parses it (``http://`` put in front when it holds a ``:`` but
  no ``://``), and matches the url grammar below;
* ``is_email``: the text matches the email grammar below.

The grammars are regular expressions whose alternatives overlap a lot, which a
backtracking engine (Python's ``re``) can take exponential time to reject. They are run
here on a small Thompson automaton instead, in time linear in the text, with Go's
meaning of ``\\d`` (ASCII digits) and ``\\s`` (``\\t \\n \\f \\r`` and space only).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache

# -- a small regular-expression automaton ------------------------------------------------

Ranges = tuple[tuple[int, int], ...]
_SPACE: Ranges = ((9, 10), (12, 13), (32, 32))
_DIGIT: Ranges = ((48, 57),)


def _negate(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    low = 0
    for lo, hi in sorted(ranges):
        if lo > low:
            out.append((low, lo - 1))
        low = max(low, hi + 1)
    if low <= 0x10FFFF:
        out.append((low, 0x10FFFF))
    return tuple(out)


class _Automaton:
    """A Thompson NFA compiled from a pattern with ``| ( ) (?: ) ? * + {m,n} [ ]``,
    ``\\d \\s \\S \\xHH \\x{H...}`` and escaped punctuation; it answers full matches."""

    def __init__(self, pattern: str):
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple[Ranges, int]]] = []
        self.text = pattern
        self.pos = 0
        start = self._state()
        self.accept = self._alternation(start)
        if self.pos != len(pattern):
            raise ValueError(f"unexpected {pattern[self.pos]!r} at {self.pos}")
        self.start = self._closure([start])

    # building ---------------------------------------------------------------------
    def _state(self) -> int:
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _alternation(self, start: int) -> int:
        branches = [self._branch(start)]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self._branch(start))
        if len(branches) == 1:
            return branches[0]
        end = self._state()
        for b in branches:
            self.eps[b].append(end)
        return end

    def _branch(self, start: int) -> int:
        # Each branch starts from its own state so that sibling branches never share
        # outgoing moves.
        cur = self._state()
        self.eps[start].append(cur)
        while self._peek() not in ("", "|", ")"):
            cur = self._quantified(cur)
        return cur

    def _quantified(self, start: int) -> int:
        atom_start = self.pos
        self._atom(self._state())  # parsed once to find its extent, then rebuilt
        atom_end = self.pos
        low, high = 1, 1
        ch = self._peek()
        if ch in ("?", "*", "+"):
            self.pos += 1
            low, high = {"?": (0, 1), "*": (0, -1), "+": (1, -1)}[ch]
        elif ch == "{":
            close = self.text.index("}", self.pos)
            low_text, comma, high_text = self.text[self.pos + 1:close].partition(",")
            low = int(low_text)
            high = low if not comma else (int(high_text) if high_text else -1)
            self.pos = close + 1
        after = self.pos
        cur = start
        for _ in range(low):
            cur = self._rebuild(atom_start, atom_end, cur)
        if high == -1:
            loop = self._state()
            self.eps[cur].append(loop)
            self.eps[self._rebuild(atom_start, atom_end, loop)].append(loop)
            cur = loop
        else:
            ends = []
            for _ in range(high - low):
                ends.append(cur)
                cur = self._rebuild(atom_start, atom_end, cur)
            end = self._state()
            for e in (*ends, cur):
                self.eps[e].append(end)
            cur = end
        self.pos = after
        return cur

    def _rebuild(self, begin: int, end: int, start: int) -> int:
        saved = self.pos
        self.pos = begin
        first = self._state()
        self.eps[start].append(first)
        last = self._atom(first)
        assert self.pos == end
        self.pos = saved
        return last

    def _atom(self, start: int) -> int:
        ch = self._peek()
        if ch == "(":
            self.pos += 1
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            end = self._alternation(start)
            if self._peek() != ")":
                raise ValueError("unbalanced parenthesis")
            self.pos += 1
            return end
        if ch == "[":
            return self._move(start, self._class())
        if ch == "\\":
            return self._move(start, self._escape())
        self.pos += 1
        return self._move(start, ((ord(ch), ord(ch)),))

    def _move(self, start: int, ranges: Ranges) -> int:
        end = self._state()
        self.moves[start].append((ranges, end))
        return end

    def _escape(self) -> Ranges:
        self.pos += 1
        ch = self._peek()
        self.pos += 1
        if ch == "d":
            return _DIGIT
        if ch == "s":
            return _SPACE
        if ch == "S":
            return _negate(_SPACE)
        if ch == "x":
            if self._peek() == "{":
                close = self.text.index("}", self.pos)
                code = int(self.text[self.pos + 1:close], 16)
                self.pos = close + 1
            else:
                code = int(self.text[self.pos:self.pos + 2], 16)
                self.pos += 2
            return ((code, code),)
        return ((ord(ch), ord(ch)),)

    def _class(self) -> Ranges:
        self.pos += 1
        negate = self._peek() == "^"
        if negate:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        while self._peek() != "]":
            lo = self._escape() if self._peek() == "\\" else self._char()
            if len(lo) != 1 or lo[0][0] != lo[0][1]:
                ranges.extend(lo)  # \d, \s, \S inside a class
                continue
            if self._peek() == "-" and self.text[self.pos + 1] != "]":
                self.pos += 1
                hi = self._escape() if self._peek() == "\\" else self._char()
                ranges.append((lo[0][0], hi[0][0]))
            else:
                ranges.append(lo[0])
        self.pos += 1
        out = tuple(ranges)
        return _negate(out) if negate else out

    def _char(self) -> Ranges:
        ch = self._peek()
        self.pos += 1
        return ((ord(ch), ord(ch)),)

    # running ----------------------------------------------------------------------
    def _closure(self, states: Iterable[int]) -> frozenset[int]:
        seen = set(states)
        stack = list(seen)
        while stack:
            for nxt in self.eps[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return frozenset(seen)

    def fullmatch(self, text: str) -> bool:
        current = self.start
        for ch in text:
            code = ord(ch)
            reached = [target for s in current for ranges, target in self.moves[s]
                       if any(lo <= code <= hi for lo, hi in ranges)]
            if not reached:
                return False
            current = self._closure(reached)
        return self.accept in current


# -- the grammars ---------------------------------------------------------------------

_ALNUM = "a-zA-Z0-9"
_WIDE = "\\x{00a1}-\\x{ffff}"  # any character from U+00A1 to U+FFFF
_HEX4 = "[0-9a-fA-F]{1,4}"
_OCTET = "(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])"
_DOTTED = f"(?:{_OCTET}\\.){{3}}{_OCTET}"
_IPV6 = "|".join([
    f"(?:{_HEX4}:){{7}}{_HEX4}",
    f"(?:{_HEX4}:){{1,7}}:",
    f"(?:{_HEX4}:){{1,6}}:{_HEX4}",
    f"(?:{_HEX4}:){{1,5}}(?::{_HEX4}){{1,2}}",
    f"(?:{_HEX4}:){{1,4}}(?::{_HEX4}){{1,3}}",
    f"(?:{_HEX4}:){{1,3}}(?::{_HEX4}){{1,4}}",
    f"(?:{_HEX4}:){{1,2}}(?::{_HEX4}){{1,5}}",
    f"{_HEX4}:(?::{_HEX4}){{1,6}}",
    f":(?:(?::{_HEX4}){{1,7}}|:)",
    "fe80:(?::[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]+",
    f"::(?:ffff(?::0{{1,4}})?:)?{_DOTTED}",
    f"(?:{_HEX4}:){{1,4}}:{_DOTTED}",
])
# A dotted IPv4 address whose first number is 1-223 or 240-255.
_IPV4 = ("(?:[1-9]\\d?|1\\d\\d|2[01]\\d|22[0-3]|24\\d|25[0-5])"
         "(?:\\.(?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])){2}"
         "\\.(?:[0-9]\\d?|1\\d\\d|2[0-4]\\d|25[0-5])")
# An optional prefix (ASCII labels joined by - or ., or a "www." / "ab.c"-like
# subdomain), then labels of letters, digits and U+00A1..U+FFFF with at most two
# hyphens in a row, then an optional ".tld" of letters.
_NAME = (
    f"(?:[{_ALNUM}][{_ALNUM}_\\-]*[{_ALNUM}](?:[\\-.][{_ALNUM}]+)*"
    f"|(?:www\\.|[{_ALNUM}]+(?:[\\-_.]?[{_ALNUM}])*[{_ALNUM}]\\.[{_ALNUM}]+)?)?"
    f"(?:[a-zA-Z{_WIDE}0-9]+-?-?)*[a-zA-Z{_WIDE}0-9]+"
    f"(?:\\.[a-zA-Z{_WIDE}]+)?"
)
_URL = (
    "(?:(?:ftp|tcp|udp|wss?|https?)://)?"  # scheme
    "(?:\\S+(?::\\S*)?@)?"  # user info
    f"(?:{_IPV4}|\\[(?:{_IPV6})\\]|{_NAME})"
    "\\.?"
    "(?::\\d{1,5})?"  # port
    "(?:[/?#]\\S*)?"  # path, query, fragment
)

_UNI = "\\x{00A0}-\\x{D7FF}\\x{F900}-\\x{FDCF}\\x{FDF0}-\\x{FFEF}"
_ATOM = f"[a-zA-Z0-9!#$%&'*+\\-/=?^_`{{|}}~{_UNI}]"
_FWS = "(?:(?:[\\x20\\x09]*\\x0d\\x0a)?[\\x20\\x09]+)"
_QTEXT = f"[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\x21\\x23-\\x5b\\x5d-\\x7e{_UNI}]"
# In the Go pattern the "quoted pair" is a literal "(" then a character, and the
# repetition covers the opening quote too: a quoted local part is any number of
# (quote, optional folding white space, one character), then white space and a quote,
# so '"a"@x.com' and '"a"b"@x.com' pass while '"ab"@x.com' does not.
_PAREN_PAIR = f"(?:\\([\\x01-\\x09\\x0b\\x0c\\x0d-\\x7f]|[{_UNI}])"
_LABEL_CHAR = f"[a-zA-Z0-9{_UNI}]"
_TLD_CHAR = f"[a-zA-Z{_UNI}]"
_EMAIL = (
    f"(?:{_ATOM}+(?:\\.{_ATOM}+)*"  # dot-atom local part
    f"|(?:\\x22{_FWS}?(?:{_QTEXT}|{_PAREN_PAIR}))*{_FWS}?\\x22)"  # or "quoted" forms
    "@"
    f"(?:(?:{_LABEL_CHAR}|{_LABEL_CHAR}[a-zA-Z0-9\\-._~{_UNI}]*{_LABEL_CHAR})\\.)+"
    f"(?:{_TLD_CHAR}|{_TLD_CHAR}[a-zA-Z0-9\\-_~{_UNI}]*{_TLD_CHAR})"
    "\\.?"
)


@cache
def _automaton(name: str) -> _Automaton:
    return _Automaton(_URL if name == "url" else _EMAIL)


# -- Go's net/url parsing, as far as it decides acceptance -------------------------------

_HEX = frozenset("0123456789abcdefABCDEF")
_HOST_OK = frozenset("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_OK = frozenset("-._:~!$&'()*+,;=%@")


class _UrlError(Exception):
    pass


def _should_escape_host(ch: str) -> bool:
    return not (ch.isascii() and ch.isalnum()) and ch not in _HOST_OK


def _unescape_check(text: str, mode: str) -> str:
    """Go's ``unescape``: raise on a malformed ``%`` escape (or, in a host, on a character
    that would need one); return the unescaped text."""
    out = bytearray()
    raw = text.encode("utf-8")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            pair = raw[i + 1:i + 3].decode("latin-1")
            if i + 2 >= len(raw) or not set(pair) <= _HEX:
                raise _UrlError
            value = int(pair, 16)
            if mode == "host" and int(pair[0], 16) < 8 and pair != "25":
                raise _UrlError
            if mode == "zone" and pair != "25" and value != 0x20 and _should_escape_host(chr(value)):
                raise _UrlError
            out.append(value)
            i += 3
            continue
        if mode in ("host", "zone") and c < 0x80 and _should_escape_host(chr(c)):
            raise _UrlError
        out.append(c)
        i += 1
    return out.decode("utf-8", "replace")


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _parse_host(host: str) -> str:
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0 or not _valid_optional_port(host[close + 1:]):
            raise _UrlError
        zone = host[:close].find("%25")
        try:
            ipaddress.IPv6Address(host[1:zone if zone >= 0 else close])
        except ValueError:
            raise _UrlError from None  # the brackets must hold an IPv6 address
        if zone >= 0:
            return (_unescape_check(host[:zone], "host") + _unescape_check(host[zone:close], "zone")
                    + _unescape_check(host[close:], "host"))
    elif ":" in host and not _valid_optional_port(host[host.find(":"):]):
        raise _UrlError  # a host holds at most one colon, before its port
    return _unescape_check(host, "host")


def _parse_authority(authority: str) -> str:
    at = authority.rfind("@")
    host = _parse_host(authority[at + 1:])
    if at >= 0:
        userinfo = authority[:at]
        if not all((c.isascii() and c.isalnum()) or c in _USERINFO_OK for c in userinfo):
            raise _UrlError
        for part in userinfo.split(":", 1):
            _unescape_check(part, "user")
    return host


def _scheme(text: str) -> tuple[str, str]:
    for i, ch in enumerate(text):
        if ch.isascii() and ch.isalpha():
            continue
        if ch.isascii() and (ch.isdigit() or ch in "+-."):
            if i == 0:
                return "", text
            continue
        if ch == ":":
            if i == 0:
                raise _UrlError  # missing protocol scheme
            return text[:i].lower(), text[i + 1:]
        return "", text
    return "", text


def go_url_parse(text: str) -> tuple[str, str]:
    """(host, path) of ``text`` as Go's ``url.Parse`` reads them; _UrlError when it fails."""
    text, hashed, fragment = text.partition("#")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise _UrlError
    scheme, rest = _scheme(text)
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.partition("?")[0]
    host = ""
    if not rest.startswith("/"):
        if scheme:
            rest = ""  # opaque: "mailto:a@b.c"
        elif ":" in rest.partition("/")[0]:
            raise _UrlError  # first path segment in URL cannot contain colon
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        host = _parse_authority(authority)
        rest = slash + path
    path = _unescape_check(rest, "path")
    if hashed and fragment:
        _unescape_check(fragment, "fragment")
    return host, path


def url_host(text: str) -> str:
    """The host (with its port) of a valid url, as PocketBase compares it with a field's
    ``onlyDomains``/``exceptDomains``: ``""`` when the url has no ``//`` authority."""
    try:
        return go_url_parse(text)[0]
    except _UrlError:
        return ""


# -- the checks ------------------------------------------------------------------------

MAX_URL_LENGTH = 2082


def is_url(text: str) -> bool:
    if not text or len(text) > MAX_URL_LENGTH or len(text.encode("utf-8")) <= 3 or text.startswith("."):
        return False
    parsed = f"http://{text}" if ":" in text and "://" not in text else text
    try:
        host, path = go_url_parse(parsed)
    except _UrlError:
        return False
    if host.startswith(".") or (host == "" and path != "" and "." not in path):
        return False
    return _automaton("url").fullmatch(text)


def is_email(text: str) -> bool:
    return bool(text) and _automaton("email").fullmatch(text)
