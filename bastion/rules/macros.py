"""Time macros (``@now``, ``@todayStart``, ``@year`` ...), evaluated in UTC at compile time."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _start_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _end_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=23, minute=59, second=59, microsecond=999000)


def format_datetime(moment: datetime) -> str:
    """PocketBase's datetime text: ``YYYY-MM-DD HH:MM:SS.sssZ`` in UTC."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _month_end(now: datetime) -> datetime:
    last_day = calendar.monthrange(now.year, now.month)[1]
    return _end_of_day(now.replace(day=last_day))


_DATETIME_MACROS: dict[str, Callable[[datetime], datetime]] = {
    "@now": lambda now: now,
    "@yesterday": lambda now: now - timedelta(days=1),
    "@tomorrow": lambda now: now + timedelta(days=1),
    "@todayStart": _start_of_day,
    "@todayEnd": _end_of_day,
    "@monthStart": lambda now: _start_of_day(now.replace(day=1)),
    "@monthEnd": _month_end,
    "@yearStart": lambda now: _start_of_day(now.replace(month=1, day=1)),
    "@yearEnd": lambda now: _end_of_day(now.replace(month=12, day=31)),
}

_NUMBER_MACROS: dict[str, Callable[[datetime], int]] = {
    "@second": lambda now: now.second,
    "@minute": lambda now: now.minute,
    "@hour": lambda now: now.hour,
    "@day": lambda now: now.day,
    "@month": lambda now: now.month,
    "@weekday": lambda now: now.isoweekday() % 7,  # Sunday = 0, as Go's Weekday
    "@year": lambda now: now.year,
}


def macro_value(name: str, now: datetime) -> str | int:
    """The value of macro ``name`` at ``now`` (converted to UTC)."""
    now = now.astimezone(UTC)
    if name in _DATETIME_MACROS:
        return format_datetime(_DATETIME_MACROS[name](now))
    return _NUMBER_MACROS[name](now)
