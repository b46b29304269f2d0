"""Submitted values turned into field values the way PocketBase turns them.

PocketBase casts whatever a client sends into the field's type and drops what does not
cast (``spf13/cast`` with the error ignored): a number field given ``"abc"`` stores 0, a
bool field given ``"on"`` stores false, a text field given ``[1]`` stores ``""``. The
functions here do the same, with Go's own number syntax (``strconv.ParseFloat``) and
number formatting (``strconv.FormatFloat(f, 'f', -1, 64)``), so a migrated client gets
the value it got from PocketBase.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def format_float(value: float) -> str:
    """``value`` in plain decimal notation with the fewest digits that read back as it
    (``1e-07`` is ``0.0000001``, ``100.0`` is ``100``, ``-0.0`` is ``-0``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def underscores_ok(text: str) -> bool:
    """Underscores only between digits, or between a base prefix and a digit."""
    saw = "^"
    i = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexa = False
    if len(text) >= 2 and text[0] == "0" and text[1] in "bBoOxX":
        i, saw, hexa = 2, "0", text[1] in "xX"
    for ch in text[i:]:
        if ch.isascii() and (ch.isdigit() or (hexa and ch in _HEX_DIGITS)):
            saw = "0"
            continue
        if ch == "_":
            if saw != "0":
                return False
            saw = "_"
            continue
        if saw == "_":
            return False
        saw = "!"
    return saw != "_"


def _special(text: str) -> float | None:
    """``inf``, ``infinity`` (either with a sign) and ``nan``, in any letter case."""
    lowered = text.lower()
    body = lowered[1:] if lowered[:1] in ("+", "-") else lowered
    if body in ("inf", "infinity"):
        return -math.inf if lowered[0] == "-" else math.inf
    if lowered == "nan":
        return math.nan
    return None


def parse_float(text: str) -> float | None:
    """``text`` read as Go reads a float64 literal: decimal or ``0x`` hexadecimal with a
    ``p`` exponent, ``_`` between digits, ``inf``/``nan``; no surrounding spaces. None
    when it is no number or is too large for a float64."""
    special = _special(text)
    if special is not None:
        return special
    i, n = 0, len(text)
    if i < n and text[i] in "+-":
        i += 1
    hexa = i + 2 < n and text[i] == "0" and text[i + 1] in "xX"
    if hexa:
        i += 2
    digits = False
    dot = underscores = False
    while i < n:
        ch = text[i]
        if ch == "_":
            underscores = True
        elif ch == ".":
            if dot:
                break
            dot = True
        elif ch.isascii() and (ch.isdigit() or (hexa and ch in _HEX_DIGITS)):
            digits = True
        else:
            break
        i += 1
    if not digits:
        return None
    if i < n and text[i].lower() == ("p" if hexa else "e"):
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        if i >= n or not (text[i].isascii() and text[i].isdigit()):
            return None
        while i < n and ((text[i].isascii() and text[i].isdigit()) or text[i] == "_"):
            underscores = underscores or text[i] == "_"
            i += 1
    elif hexa:
        return None  # a hexadecimal mantissa needs its p exponent
    if i != n or (underscores and not underscores_ok(text)):
        return None
    plain = text.replace("_", "")
    try:
        value = float.fromhex(plain) if hexa else float(plain)
    except (ValueError, OverflowError):
        return None
    return None if math.isinf(value) else value


def to_string(raw: Any) -> str:
    """Any JSON value as text: floats as Go prints a float64, lists and objects as ``""``."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        # Exact digits: a form's "12345678901234567890" reaches here as an int and
        # PocketBase keeps such a text as sent. (A JSON number past 2**53 it would round.)
        return str(raw)
    if isinstance(raw, float):
        return format_float(raw)
    return ""


def to_float(raw: Any) -> float:
    """Any JSON value as a number: booleans as 1/0, text through ``parse_float``, anything
    that does not read as a number as 0 (infinities and NaN are kept for the caller)."""
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, (int, float)):
        try:
            return float(raw)
        except OverflowError:
            return 0.0
    if isinstance(raw, str):
        if raw == "":
            return 0.0
        value = parse_float(raw)
        return 0.0 if value is None else value
    return 0.0


def to_bool(raw: Any) -> bool:
    """Any JSON value as a boolean: numbers other than 0 and the texts ``1 t T TRUE true
    True`` are true; everything else, ``"on"`` and ``"yes"`` included, is false."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)):
        return raw != 0
    if isinstance(raw, str):
        return raw in _TRUE
    return False
