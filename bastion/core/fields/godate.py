"""Date texts read as PocketBase reads a date field value.

PocketBase tries its own layout (``2006-01-02 15:04:05.000Z``) and then, in order, the
layouts of ``spf13/cast`` (ISO dates, RFC 3339, RFC 1123/822/850, ANSI C, Unix and Ruby
dates, kitchen time, time stamps), each with Go's ``time.Parse`` rules: fixed-width
fields, any run of spaces where the layout has one, a fractional second allowed after
the seconds, month and weekday names in any letter case. A value no layout accepts, and
the zero time, is stored as ``""``. Layouts whose zone is a name (``MST``) keep the wall
clock as UTC, as cast does.

Years are not limited to 1..9999 (``3:04PM`` is in year 0), so instants are computed
here in days and seconds rather than with ``datetime``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Layout items: a literal text, or one of these field names.
Y4, Y2, MONTH, DAY2, DAY_, HOUR, HOUR12, MIN, SEC = "Y4", "Y2", "MON", "D2", "D_", "H", "H12", "MI", "S"
WEEKDAY, LONG_WEEKDAY, PM, TZ_NAME = "WD", "WDL", "PM", "TZN"
TZ_ISO_COLON, TZ_ISO, TZ_NUM, TZ_NUM_COLON = "Z07:00", "Z0700", "-0700", "-07:00"
FRAC_ANY = "FRAC9"  # optional fraction of any length
FRAC3, FRAC6, FRAC9_FIXED = "FRAC0:3", "FRAC0:6", "FRAC0:9"

NUM_MONTH = "01"

_DATE = [Y4, "-", NUM_MONTH, "-", DAY2]
_CLOCK = [HOUR, ":", MIN, ":", SEC]

# (items, zone kind): "none" and "named" keep the wall clock as UTC.
_PB_LAYOUT = ([*_DATE, " ", *_CLOCK, FRAC3, "Z"], "numeric")
_CAST_LAYOUTS: list[tuple[list[str], str]] = [
    (_DATE, "none"),
    ([*_DATE, "T", *_CLOCK, TZ_ISO_COLON], "numeric"),
    ([*_DATE, "T", *_CLOCK], "none"),
    ([WEEKDAY, ", ", DAY2, " ", MONTH, " ", Y4, " ", *_CLOCK, " ", TZ_NUM], "numeric"),
    ([WEEKDAY, ", ", DAY2, " ", MONTH, " ", Y4, " ", *_CLOCK, " ", TZ_NAME], "named"),
    ([DAY2, " ", MONTH, " ", Y2, " ", HOUR, ":", MIN, " ", TZ_NUM], "numeric"),
    ([DAY2, " ", MONTH, " ", Y2, " ", HOUR, ":", MIN, " ", TZ_NAME], "named"),
    ([LONG_WEEKDAY, ", ", DAY2, "-", MONTH, "-", Y2, " ", *_CLOCK, " ", TZ_NAME], "named"),
    ([*_DATE, " ", *_CLOCK, FRAC_ANY, " ", TZ_NUM, " ", TZ_NAME], "numeric"),
    ([*_DATE, "T", *_CLOCK, TZ_NUM], "numeric"),
    ([*_DATE, " ", *_CLOCK, TZ_ISO], "numeric"),
    ([*_DATE, " ", *_CLOCK], "none"),
    ([WEEKDAY, " ", MONTH, " ", DAY_, " ", *_CLOCK, " ", Y4], "none"),
    ([WEEKDAY, " ", MONTH, " ", DAY_, " ", *_CLOCK, " ", TZ_NAME, " ", Y4], "named"),
    ([WEEKDAY, " ", MONTH, " ", DAY2, " ", *_CLOCK, " ", TZ_NUM, " ", Y4], "numeric"),
    ([*_DATE, " ", *_CLOCK, TZ_ISO_COLON], "numeric"),
    ([DAY2, " ", MONTH, " ", Y4], "none"),
    ([*_DATE, " ", *_CLOCK, " ", TZ_NUM_COLON], "numeric"),
    ([*_DATE, " ", *_CLOCK, " ", TZ_NUM], "numeric"),
    ([HOUR12, ":", MIN, PM], "time"),
    ([MONTH, " ", DAY_, " ", *_CLOCK], "time"),
    ([MONTH, " ", DAY_, " ", *_CLOCK, FRAC3], "time"),
    ([MONTH, " ", DAY_, " ", *_CLOCK, FRAC6], "time"),
    ([MONTH, " ", DAY_, " ", *_CLOCK, FRAC9_FIXED], "time"),
]

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
_LONG_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


class _Bad(Exception):
    pass


@dataclass
class _Parsed:
    year: int = 0
    month: int = -1
    day: int = -1
    hour: int = 0
    minute: int = 0
    second: int = 0
    nsec: int = 0
    offset: int | None = None  # seconds east of UTC, when the text gives a number
    zone_name: str = ""
    utc: bool = False
    pm: bool = False
    am: bool = False


def _digit(text: str, i: int) -> bool:
    return i < len(text) and "0" <= text[i] <= "9"


def _getnum(text: str, fixed: bool) -> tuple[int, str]:
    """One or two leading digits (exactly two when ``fixed``)."""
    if not _digit(text, 0):
        raise _Bad
    if not _digit(text, 1):
        if fixed:
            raise _Bad
        return int(text[0]), text[1:]
    return int(text[:2]), text[2:]


def _atoi(text: str) -> int:
    """A decimal integer with an optional sign and nothing else."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not all("0" <= c <= "9" for c in body):
        raise _Bad
    return -int(body) if text[0] == "-" else int(body)


def _lookup(names: list[str], text: str) -> tuple[int, str]:
    for i, name in enumerate(names):
        if len(text) >= len(name) and text[:len(name)].lower() == name.lower():
            return i, text[len(name):]
    raise _Bad


def _skip(text: str, literal: str) -> str:
    """``literal`` off the front of ``text``; a space matches any run of spaces."""
    while literal:
        if literal[0] == " ":
            if text and text[0] != " ":
                raise _Bad
            literal = literal.lstrip(" ")
            text = text.lstrip(" ")
            continue
        if not text or text[0] != literal[0]:
            raise _Bad
        literal, text = literal[1:], text[1:]
    return text


def _fraction(text: str, width: int) -> int:
    """Nanoseconds from ``text[:width]`` (a ``.`` or ``,`` and digits, at most nine used)."""
    if text[0] not in ".,":
        raise _Bad
    width = min(width, 10)
    ns = _atoi(text[1:width])
    if ns < 0:
        raise _Bad
    return int(ns * 10 ** (10 - width))


def _signed_offset_len(text: str) -> int:
    if not text or text[0] not in "+-":
        return 0
    i = 1
    while i < len(text) and "0" <= text[i] <= "9":
        i += 1
    if i == 1 or int(text[1:i]) > 12:
        return 0
    return i


def _zone_name_len(text: str) -> int:
    """The length of a zone abbreviation at the front of ``text``; 0 when there is none."""
    if len(text) < 3:
        return 0
    if text[:4] in ("ChST", "MeST"):
        return 4
    if text[:3] == "GMT":
        return 3 + _signed_offset_len(text[3:]) if len(text) > 3 else 3
    if text[0] in "+-":
        return _signed_offset_len(text)
    upper = 0
    while upper < 6 and upper < len(text) and "A" <= text[upper] <= "Z":
        upper += 1
    if upper == 3:
        return 3
    if upper == 4 and (text[3] == "T" or text[:4] == "WITA"):
        return 4
    if upper == 5 and text[4] == "T":
        return 5
    return 0


def _numeric_zone(text: str, item: str, p: _Parsed) -> str:
    if item in (TZ_ISO, TZ_ISO_COLON) and text[:1] == "Z":
        p.utc = True
        return text[1:]
    if item in (TZ_ISO_COLON, TZ_NUM_COLON):
        if len(text) < 6 or text[3] != ":":
            raise _Bad
        sign, hh, mm, text = text[0], text[1:3], text[4:6], text[6:]
    else:
        if len(text) < 5:
            raise _Bad
        sign, hh, mm, text = text[0], text[1:3], text[3:5], text[5:]
    hours, _ = _getnum(hh, True)
    minutes, _ = _getnum(mm, True)
    if hours > 24 or minutes > 60 or sign not in "+-":
        raise _Bad
    p.offset = (hours * 60 + minutes) * 60 * (-1 if sign == "-" else 1)
    return text


def _field(item: str, text: str, rest: list[str], p: _Parsed) -> str:
    if item == Y4:
        if len(text) < 4 or not _digit(text, 0):
            raise _Bad
        p.year, text = _atoi(text[:4]), text[4:]
    elif item == Y2:
        if len(text) < 2:
            raise _Bad
        year, text = _atoi(text[:2]), text[2:]
        p.year = year + (1900 if year >= 69 else 2000)
    elif item == MONTH:
        index, text = _lookup(_MONTHS, text)
        p.month = index + 1
    elif item == NUM_MONTH:
        p.month, text = _getnum(text, True)
        if not 1 <= p.month <= 12:
            raise _Bad
    elif item in (DAY2, DAY_):
        if item == DAY_ and text[:1] == " ":
            text = text[1:]
        p.day, text = _getnum(text, item == DAY2)
    elif item == WEEKDAY:
        _, text = _lookup(_DAYS, text)
    elif item == LONG_WEEKDAY:
        _, text = _lookup(_LONG_DAYS, text)
    elif item in (HOUR, HOUR12):
        p.hour, text = _getnum(text, False)
        if p.hour > (12 if item == HOUR12 else 23):
            raise _Bad
    elif item == MIN:
        p.minute, text = _getnum(text, True)
        if p.minute >= 60:
            raise _Bad
    elif item == SEC:
        p.second, text = _getnum(text, True)
        if p.second >= 60:
            raise _Bad
        # A fraction may follow the seconds even where the layout has none.
        if len(text) >= 2 and text[0] in ".," and _digit(text, 1):
            following = next((r for r in rest if r in _FIELDS), "")
            if not following.startswith("FRAC"):
                width = 2
                while _digit(text, width):
                    width += 1
                p.nsec, text = _fraction(text, width), text[width:]
    elif item.startswith("FRAC0:"):
        width = 1 + int(item.partition(":")[2])
        if len(text) < width:
            raise _Bad
        p.nsec, text = _fraction(text, width), text[width:]
    elif item == FRAC_ANY:
        if len(text) >= 2 and text[0] in ".," and _digit(text, 1):
            width = 2
            while _digit(text, width):
                width += 1
            p.nsec, text = _fraction(text, width), text[width:]
    elif item == PM:
        if len(text) < 2 or text[:2] not in ("AM", "PM"):
            raise _Bad
        p.pm, p.am = text[:2] == "PM", text[:2] == "AM"
        text = text[2:]
    elif item == TZ_NAME:
        if text[:3] == "UTC":
            p.utc = True
            return text[3:]
        length = _zone_name_len(text)
        if not length:
            raise _Bad
        p.zone_name, text = text[:length], text[length:]
    else:
        text = _numeric_zone(text, item, p)
    return text


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar, for any year."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


_ZERO_SECONDS = _days_from_civil(1, 1, 1) * 86400


def _parse(items: list[str], text: str) -> _Parsed:
    p = _Parsed()
    for i, item in enumerate(items):
        if item in _FIELDS:
            text = _field(item, text, items[i + 1:], p)
        else:
            text = _skip(text, item)
    if text:
        raise _Bad
    if p.pm and p.hour < 12:
        p.hour += 12
    elif p.am and p.hour == 12:
        p.hour = 0
    if p.month < 0:
        p.month = 1
    if p.day < 0:
        p.day = 1
    if p.day < 1 or p.day > _days_in(p.month, p.year):
        raise _Bad
    return p


_FIELDS = frozenset({
    Y4, Y2, MONTH, NUM_MONTH, DAY2, DAY_, HOUR, HOUR12, MIN, SEC, WEEKDAY, LONG_WEEKDAY, PM,
    TZ_NAME, TZ_ISO_COLON, TZ_ISO, TZ_NUM, TZ_NUM_COLON, FRAC_ANY, FRAC3, FRAC6, FRAC9_FIXED,
})


def _instant(p: _Parsed, kind: str) -> tuple[int, int]:
    """(seconds since the epoch, nanoseconds) of the parsed time."""
    seconds = (_days_from_civil(p.year, p.month, p.day) * 86400
               + p.hour * 3600 + p.minute * 60 + p.second)
    if p.utc:
        return seconds, p.nsec
    if p.offset is not None:
        return seconds - p.offset, p.nsec
    if kind == "named" and p.zone_name[:3] == "GMT" and len(p.zone_name) > 3:
        # An unknown "GMT+h" zone keeps the instant and moves the wall clock by h hours;
        # cast then reads that wall clock as UTC.
        return seconds + int(p.zone_name[3:]) * 3600, p.nsec
    return seconds, p.nsec


def format_instant(seconds: int, nsec: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmmZ``; ``""`` for Go's zero time (0001-01-01 00:00:00 UTC)."""
    if seconds == _ZERO_SECONDS and nsec == 0:
        return ""
    days, secs = divmod(seconds, 86400)
    y, m, d = _civil_from_days(days)
    year = f"-{-y:04d}" if y < 0 else f"{y:04d}"
    return (f"{year}-{m:02d}-{d:02d} {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            f".{nsec // 1_000_000:03d}Z")


def parse_date(text: str) -> str:
    """``text`` as a stored date value, or ``""`` when no layout reads it."""
    if not text:
        return ""
    for items, kind in (_PB_LAYOUT, *_CAST_LAYOUTS):
        try:
            parsed = _parse(items, text)
        except (_Bad, ValueError, IndexError):
            continue
        return format_instant(*_instant(parsed, kind))
    return ""
