"""SQLite's ``strftime()`` translated for PostgreSQL and MariaDB.

Supported on both: the directives SQLite 3.40 knows except ``%J`` (``%d %f %H %j %m %M
%s %S %w %W %Y %%``); time values that are datetime text (``YYYY-MM-DD[ HH:MM[:SS[.fff]]]``
with optional ``T``, ``Z`` or ``+HH:MM``), ``'now'``, or numbers with the
``'unixepoch'`` modifier; and the modifiers ``'unixepoch'``, ``'utc'`` (a no-op: all
times are UTC), ``'start of day|month|year'`` and ``'±N day|hour|minute|second|month|year'``.
Month arithmetic follows each database (PostgreSQL clamps Jan 31 + 1 month to Feb 29,
SQLite overflows into March). A modifier SQLite does not know gives NULL, as there;
anything else raises FilterError on these databases.
A NULL or unparsable time gives ``''`` (SQLite semantics). Bare numbers (and numeric
text) are Julian day numbers, as on SQLite, for the years 1 to 9999; outside them they
give ``''`` on these databases. Times without a date are not read. Stored
text shaped like a datetime that does not exist (``2024-02-30``) makes the query fail on
PostgreSQL; quoted literals are checked beforehand and give ``''``.
"""

from __future__ import annotations

import abc
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.rules.dialects import MysqlRuleDialect, PostgresRuleDialect, RuleDialect
from bastion.rules.errors import FilterError
from bastion.rules.operands import SqlOperand
from bastion.rules.resolver import Kind

_TIME_TEXT = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]+)?)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
_OFFSET_SUFFIX = r"[+-][0-9]{2}:[0-9]{2}$"
_JULIAN_TEXT = r"^[0-9]{1,7}([.][0-9]+)?$"
_UNIX_EPOCH_JULIAN_DAY = 2440587.5
_YEAR_1_JULIAN_DAY = 1721425.5  # 0001-01-01 00:00 UTC
_YEAR_10000_JULIAN_DAY = 5373484.5  # 10000-01-01 00:00 UTC
_SHIFT = re.compile(
    r"\s*([+-]?\d+(?:\.\d+)?)\s+(day|hour|minute|second|month|year)s?\s*", re.IGNORECASE
)
# Every modifier SQLite knows (the rest make its strftime NULL).
_SQLITE_MODIFIER = re.compile(
    r"\s*(?:[+-]?\d+(?:\.\d*)?\s+(?:day|hour|minute|second|month|year)s?|[+-]?\d{4}-\d{2}-\d{2}.*"
    r"|[+-]?\d{1,2}:\d{2}.*|start\s+of\s+(?:day|month|year)|weekday \d+|unixepoch|julianday|auto|localtime"
    r"|utc|subsec(?:ond)?|ceiling|floor)\s*",
    re.IGNORECASE,
)
_START = re.compile(r"\s*start\s+of\s+(day|month|year)\s*", re.IGNORECASE)
_DIRECTIVE = re.compile(r"%(.)", re.DOTALL)
_MICROSECONDS = {
    "day": 86_400_000_000,
    "hour": 3_600_000_000,
    "minute": 60_000_000,
    "second": 1_000_000,
}


def _mysql_datetime() -> Any:
    """MariaDB's DATETIME(6), with SQLAlchemy's MySQL types loaded on first use."""
    from sqlalchemy.dialects import mysql

    return mysql.DATETIME(fsp=6)


def _text(value: str) -> ColumnElement[Any]:
    return sa.literal(value, sa.String())


class _TimeBackend(abc.ABC):
    """Builds timestamps and formats them for one database."""

    name = ""

    def __init__(self, dialect: RuleDialect) -> None:
        self.dialect = dialect

    def strftime(
        self, fmt: str, time: SqlOperand, modifiers: list[str], pos: int
    ) -> ColumnElement[Any]:
        """SQL text for ``strftime(fmt, time, *modifiers)``; NULL when time is NULL or not a
        time, as SQLite's (and so PocketBase's) strftime answers."""
        pieces = self._pieces(fmt, pos)  # validate the format even when time is NULL
        timestamp = self._timestamp(time, modifiers, pos)
        if timestamp is None:
            return sa.null()
        parts = [_text(piece) if isinstance(piece, str) else piece(timestamp) for piece in pieces]
        body = _text("") if not parts else parts[0] if len(parts) == 1 else self.dialect.concat(*parts)
        return sa.case((timestamp.is_(None), sa.null()), else_=body)

    def _pieces(self, fmt: str, pos: int) -> list[Any]:
        pieces: list[Any] = []
        last = 0
        for match in _DIRECTIVE.finditer(fmt):
            if match.start() > last:
                pieces.append(fmt[last : match.start()])
            letter = match.group(1)
            if letter == "%":
                pieces.append("%")
            else:
                pieces.append(self._directive(letter, pos))
            last = match.end()
        if last < len(fmt):
            pieces.append(fmt[last:])
        return pieces

    def _directive(self, letter: str, pos: int) -> Any:
        formatter = self._formatters().get(letter)
        if formatter is None:
            raise FilterError(
                f'Unsupported strftime directive "%{letter}" at position {pos} on {self.name}', pos
            )
        return formatter

    def _timestamp(
        self, time: SqlOperand, modifiers: list[str], pos: int
    ) -> ColumnElement[Any] | None:
        unix = bool(modifiers) and modifiers[0].strip().lower() == "unixepoch"
        timestamp = self._base_time(time, unix, pos)
        if timestamp is None:
            return None
        for modifier in modifiers[1:] if unix else modifiers:
            if not _SQLITE_MODIFIER.fullmatch(modifier):
                return None  # SQLite answers NULL for a modifier it does not know
            timestamp = self._modify(timestamp, modifier, pos)
        return timestamp

    def _base_time(self, time: SqlOperand, unix: bool, pos: int) -> ColumnElement[Any] | None:
        if time.is_literal:
            return self._literal_time(time.value, unix, pos)
        if time.kind is Kind.NUMBER:
            assert time.sql is not None
            return self._from_unix(time.sql) if unix else self._from_julian(time.sql)
        if time.kind is Kind.BOOL or unix:
            raise FilterError(
                f"Unsupported strftime time value at position {pos} on {self.name}: "
                "'unixepoch' needs a number",
                pos,
            )
        sql = time.sql if time.json is None else self.dialect.json_text(time.json)
        assert sql is not None
        return self._parse(sql)

    def _literal_time(self, value: Any, unix: bool, pos: int) -> ColumnElement[Any] | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = sa.literal(float(value), sa.Float())
            return self._from_unix(seconds) if unix else self._from_julian(seconds)
        if isinstance(value, str) and not unix:
            if value.strip().lower() == "now":
                return self._now()
            if re.fullmatch(_JULIAN_TEXT, value):
                return self._from_julian(sa.literal(float(value), sa.Float()))
            return self._parse(_text(value)) if _valid_time_text(value) else None
        raise FilterError(
            f"Unsupported strftime time value at position {pos} on {self.name}: "
            "expected datetime text, 'now', or a number with 'unixepoch'",
            pos,
        )

    def _modify(self, timestamp: ColumnElement[Any], modifier: str, pos: int) -> ColumnElement[Any]:
        if modifier.strip().lower() == "utc":
            return timestamp
        if start := _START.fullmatch(modifier):
            return self._start_of(timestamp, start.group(1).lower())
        if shift := _SHIFT.fullmatch(modifier):
            return self._shift(timestamp, float(shift.group(1)), shift.group(2).lower(), pos)
        raise FilterError(
            f'Unsupported strftime modifier "{modifier}" at position {pos} on {self.name}', pos
        )

    def _from_julian(self, days: ColumnElement[Any]) -> ColumnElement[Any]:
        """A Julian day number (as SQLite reads bare numbers) -> UTC timestamp, for the
        years 1 to 9999 (NULL outside them, where the databases disagree)."""
        timestamp = self._from_unix((days - _UNIX_EPOCH_JULIAN_DAY) * 86_400.0)
        return sa.case((sa.and_(days >= _YEAR_1_JULIAN_DAY, days < _YEAR_10000_JULIAN_DAY), timestamp))

    def _parse_or_julian(self, text: ColumnElement[Any], zoned: ColumnElement[Any]) -> ColumnElement[Any]:
        """``zoned`` (the datetime text parsed) when ``text`` is datetime text; the Julian
        day when it is a bare number."""
        julian = self._from_julian(self._julian_days(text))
        return sa.case((self._matches(text, _JULIAN_TEXT), julian), (self._matches(text, _TIME_TEXT), zoned))

    @abc.abstractmethod
    def _matches(self, text: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        """``text`` matches the regular expression ``pattern``."""

    @abc.abstractmethod
    def _julian_days(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        """Numeric text as a floating point number."""

    @abc.abstractmethod
    def _formatters(self) -> dict[str, Any]:
        """Directive letter -> function of a timestamp returning its text."""

    @abc.abstractmethod
    def _parse(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        """Datetime text -> UTC timestamp, NULL when the text is not a datetime."""

    @abc.abstractmethod
    def _now(self) -> ColumnElement[Any]:
        """The current UTC timestamp."""

    @abc.abstractmethod
    def _from_unix(self, seconds: ColumnElement[Any]) -> ColumnElement[Any]:
        """Unix seconds -> UTC timestamp."""

    @abc.abstractmethod
    def _start_of(self, timestamp: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        """The timestamp truncated to the start of its day, month or year."""

    @abc.abstractmethod
    def _shift(
        self, timestamp: ColumnElement[Any], amount: float, unit: str, pos: int
    ) -> ColumnElement[Any]:
        """The timestamp moved by ``amount`` units."""


def _valid_time_text(value: str) -> bool:
    if not re.fullmatch(_TIME_TEXT, value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


class _PostgresTime(_TimeBackend):
    name = "postgresql"

    def _formatters(self) -> dict[str, Any]:
        def to_char(pattern: str) -> Any:
            return lambda ts: sa.func.to_char(ts, _text(pattern), type_=sa.String())

        def number(expr: ColumnElement[Any]) -> ColumnElement[Any]:
            return sa.cast(sa.cast(expr, sa.BigInteger), sa.Text)

        def week(ts: ColumnElement[Any]) -> ColumnElement[Any]:
            day = sa.cast(sa.extract("doy", ts), sa.Integer)
            monday_based = (sa.cast(sa.extract("dow", ts), sa.Integer) + 6) % 7
            return sa.func.lpad(number((day + 6 - monday_based) // 7), 2, _text("0"))

        patterns = {
            "d": "DD",
            "H": "HH24",
            "j": "DDD",
            "m": "MM",
            "M": "MI",
            "S": "SS",
            "Y": "YYYY",
            "f": "SS.MS",
        }
        formatters: dict[str, Any] = {
            letter: to_char(pattern) for letter, pattern in patterns.items()
        }
        formatters["w"] = lambda ts: number(sa.extract("dow", ts))
        formatters["s"] = lambda ts: number(sa.func.floor(sa.extract("epoch", ts)))
        formatters["W"] = week
        return formatters

    def _parse(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        text = sa.cast(text, sa.Text)
        with_offset = sa.func.timezone(_text("UTC"), sa.cast(text, sa.TIMESTAMP(timezone=True)))
        zoned = sa.case(
            (text.op("~")(_text(r"(Z|" + _OFFSET_SUFFIX + ")")), with_offset),
            else_=sa.cast(text, sa.TIMESTAMP()),
        )
        return self._parse_or_julian(text, zoned)

    def _matches(self, text: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        return text.op("~")(_text(pattern))

    def _julian_days(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.cast(text, sa.Float())

    def _now(self) -> ColumnElement[Any]:
        return sa.func.timezone(_text("UTC"), sa.func.now())

    def _from_unix(self, seconds: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.timezone(_text("UTC"), sa.func.to_timestamp(seconds))

    def _start_of(self, timestamp: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        return sa.func.date_trunc(_text(unit), timestamp, type_=sa.TIMESTAMP())

    def _shift(
        self, timestamp: ColumnElement[Any], amount: float, unit: str, pos: int
    ) -> ColumnElement[Any]:
        interval = sa.cast(_text(f"{amount!r} {unit}s"), sa.Interval())
        return timestamp.op("+")(interval)


class _MysqlTime(_TimeBackend):
    name = "mysql"

    def _formatters(self) -> dict[str, Any]:
        def date_format(pattern: str) -> Any:
            return lambda ts: sa.func.date_format(ts, _text(pattern), type_=sa.String())

        def millis(ts: ColumnElement[Any]) -> ColumnElement[Any]:
            fraction = sa.func.lpad(sa.func.floor(sa.func.microsecond(ts) / 1000), 3, _text("0"))
            return sa.func.concat(sa.func.date_format(ts, _text("%S.")), fraction)

        def week(ts: ColumnElement[Any]) -> ColumnElement[Any]:
            number = sa.func.floor((sa.func.dayofyear(ts) + 6 - sa.func.weekday(ts)) / 7)
            return sa.func.lpad(number, 2, _text("0"))

        def epoch(ts: ColumnElement[Any]) -> ColumnElement[Any]:
            seconds = sa.func.timestampdiff(
                sa.literal_column("SECOND"), _text("1970-01-01 00:00:00"), ts
            )
            return sa.cast(seconds, sa.CHAR)

        patterns = {
            "d": "%d",
            "H": "%H",
            "j": "%j",
            "m": "%m",
            "M": "%i",
            "S": "%S",
            "Y": "%Y",
            "w": "%w",
        }
        formatters: dict[str, Any] = {
            letter: date_format(pattern) for letter, pattern in patterns.items()
        }
        formatters.update({"f": millis, "W": week, "s": epoch})
        return formatters

    def _parse(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        naive = sa.func.replace(
            sa.func.replace(text, _text("T"), _text(" ")), _text("Z"), _text("")
        )
        as_datetime = sa.cast(naive, _mysql_datetime())
        without_offset = sa.cast(
            sa.func.left(text, sa.func.char_length(text) - 6), _mysql_datetime()
        )
        shifted = sa.func.convert_tz(without_offset, sa.func.right(text, 6), _text("+00:00"))
        zoned = sa.case((text.regexp_match(_text(_OFFSET_SUFFIX)), shifted), else_=as_datetime)
        return self._parse_or_julian(text, zoned)

    def _matches(self, text: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        return text.regexp_match(_text(pattern))

    def _julian_days(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return text.op("+", return_type=sa.Float())(sa.literal(0.0, sa.Float()))

    def _now(self) -> ColumnElement[Any]:
        return sa.func.utc_timestamp(6)

    def _from_unix(self, seconds: ColumnElement[Any]) -> ColumnElement[Any]:
        micros = sa.func.floor(seconds * 1_000_000)
        return self._add(
            "MICROSECOND", micros, sa.cast(_text("1970-01-01 00:00:00"), _mysql_datetime())
        )

    def _add(self, unit: str, amount: Any, timestamp: ColumnElement[Any]) -> ColumnElement[Any]:
        value = amount if isinstance(amount, ColumnElement) else sa.literal(amount, sa.BigInteger())
        return sa.func.timestampadd(sa.literal_column(unit), value, timestamp)

    def _start_of(self, timestamp: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        pattern = {"day": "%Y-%m-%d", "month": "%Y-%m-01", "year": "%Y-01-01"}[unit]
        return sa.cast(sa.func.date_format(timestamp, _text(pattern)), _mysql_datetime())

    def _shift(
        self, timestamp: ColumnElement[Any], amount: float, unit: str, pos: int
    ) -> ColumnElement[Any]:
        if unit in ("month", "year"):
            if not amount.is_integer():
                raise FilterError(
                    f'Unsupported strftime modifier at position {pos} on mysql: "{unit}" needs a whole number',
                    pos,
                )
            return self._add(unit.upper(), int(amount), timestamp)
        return self._add("MICROSECOND", round(amount * _MICROSECONDS[unit]), timestamp)


# The translator for each engine whose strftime() is not SQLite's (``native_strftime``).
_BACKENDS: dict[type[RuleDialect], type[_TimeBackend]] = {
    PostgresRuleDialect: _PostgresTime,
    MysqlRuleDialect: _MysqlTime,
}


def time_backend(dialect: RuleDialect) -> _TimeBackend:
    """The strftime translator for a dialect without SQLite's own strftime()."""
    backend = _BACKENDS.get(type(dialect))
    if backend is None:
        raise FilterError(f'Unsupported function "strftime" on {dialect.name}')
    return backend(dialect)
