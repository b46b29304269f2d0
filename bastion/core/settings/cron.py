"""Cron expressions as PocketBase accepts them (``backups.cron``): five fields (minute,
hour, day of month, month, day of week), each ``*`` or a comma list of values and
``a-b`` ranges, any of them with a ``/step``; or one of the macros ``@yearly``,
``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight``, ``@hourly``."""

from __future__ import annotations

MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))


def cron_problem(expr: str) -> str | None:
    """What is wrong with ``expr``, or None when it is a valid schedule."""
    text = expr.strip()
    if text in MACROS:
        return None
    parts = text.split()
    if len(parts) != len(FIELDS):
        return f"expected {len(FIELDS)} space separated segments, got {len(parts)}"
    for part, (name, lo, hi) in zip(parts, FIELDS, strict=True):
        for item in part.split(","):
            problem = _item_problem(item, lo, hi)
            if problem:
                return f"invalid {name} segment {part!r}: {problem}"
    return None


def _item_problem(item: str, lo: int, hi: int) -> str | None:
    span, slash, step = item.partition("/")
    if slash and not (step.isdigit() and 0 < int(step) <= hi):
        return f"the step must be a number from 1 to {hi}"
    if span == "*":
        return None
    start, dash, end = span.partition("-")
    bounds = [start, end] if dash else [start]
    if not all(b.isdigit() for b in bounds):
        return "expected *, a number or a range a-b"
    values = [int(b) for b in bounds]
    if not all(lo <= v <= hi for v in values):
        return f"values must be between {lo} and {hi}"
    if dash and values[0] > values[1]:
        return "a range must go from the smaller to the larger value"
    return None
