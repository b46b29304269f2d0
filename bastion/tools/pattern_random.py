"""Random strings from a small regular-expression subset (for ``autogeneratePattern``).

Supported: literal characters, character classes with ranges (``[a-z0-9_]``) and the
quantifiers ``{n}`` and ``{m,n}``. That covers id and token patterns such as
``[a-z0-9]{15}``; anything else is rejected so a pattern never silently misbehaves.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache

from bastion.tools.ids import random_string

_TOKEN = re.compile(r"\[([^\]]+)\]|\\(.)|([^\[\]{}()*+?|^$\\.])")
_QUANT = re.compile(r"\{(\d+)(?:,(\d+))?\}")
MAX_LENGTH = 1000


class PatternError(ValueError):
    pass


def _expand_class(body: str) -> str:
    chars: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            start, end = ord(body[i]), ord(body[i + 2])
            if start > end:
                raise PatternError(f"bad range {body[i:i + 3]!r}")
            chars.extend(chr(c) for c in range(start, end + 1))
            i += 3
        else:
            chars.append(body[i])
            i += 1
    if not chars or body.startswith("^"):
        raise PatternError("negated or empty classes are not supported")
    return "".join(dict.fromkeys(chars))


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple[tuple[str, int, int], ...]:
    """Parse ``pattern`` into (alphabet, min, max) parts or raise PatternError."""
    parts: list[tuple[str, int, int]] = []
    pos = 0
    total = 0
    while pos < len(pattern):
        m = _TOKEN.match(pattern, pos)
        if not m:
            raise PatternError(f"unsupported syntax at position {pos}")
        alphabet = _expand_class(m.group(1)) if m.group(1) else (m.group(2) or m.group(3))
        pos = m.end()
        lo = hi = 1
        q = _QUANT.match(pattern, pos)
        if q:
            lo = int(q.group(1))
            hi = int(q.group(2)) if q.group(2) else lo
            if hi < lo:
                raise PatternError("bad quantifier")
            pos = q.end()
        total += hi
        if total > MAX_LENGTH:
            raise PatternError(f"generates more than {MAX_LENGTH} characters")
        parts.append((alphabet, lo, hi))
    if not parts:
        raise PatternError("empty pattern")
    return tuple(parts)


def random_from_pattern(pattern: str) -> str:
    out: list[str] = []
    for alphabet, lo, hi in compile_pattern(pattern):
        count = lo if lo == hi else lo + secrets.randbelow(hi - lo + 1)
        out.append(random_string(count, alphabet) if count else "")
    return "".join(out)
