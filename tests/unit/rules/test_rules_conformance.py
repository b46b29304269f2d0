"""One table of filters, executed on every reachable rules_db with identical expectations.

Rows (see rules_backends.ROWS): r1 "Hello World" 10 true [a,b]; r2 "hello" 5.5 false [b];
r3 "" 0 false []; r4 all NULL (meta {}); r5 "a_b%c\\d" -3 true [c,a,A];
r6 "O'Brien \"q\"" 100 true [x]; r7 "10" 10 false ["1","10"] (meta is an array);
r8 "Zebra crossing" 2 true [a,a] (meta is the JSON string "str").
Macros use NOW = 2024-06-15 12:34:56.789Z (a Saturday).
"""

from __future__ import annotations

import pytest
from rules_backends import ALL_IDS, Backend


def ids(text: str) -> list[str]:
    return sorted(text.split()) if text.strip() else []


def but(text: str) -> list[str]:
    excluded = set(text.split())
    return [row_id for row_id in ALL_IDS if row_id not in excluded]


CASES: list[tuple[str, list[str]]] = [
    # -- text: equality with null folding ----------------------------------------------
    ('title = "hello"', ids("r2")),
    ('title = "Hello World"', ids("r1")),
    ('title != "hello"', but("r2")),
    ('title = ""', ids("r3 r4")),
    ("title = ''", ids("r3 r4")),
    ("title = null", ids("r3 r4")),
    ('title != ""', but("r3 r4")),
    ("title != null", but("r3 r4")),
    ('"" = title', ids("r3 r4")),
    ("null = title", ids("r3 r4")),
    ("title = NULL", ids("r3 r4")),
    ('"" = ""', ALL_IDS),
    ('"" != null', []),
    ('"a" = "a"', ALL_IDS),
    ('"a" != "a"', []),
    ("title = title", ALL_IDS),
    ("title != title", []),
    ("title = id", []),
    ("title != id", ALL_IDS),
    # -- text: LIKE ----------------------------------------------------------------------
    ('title ~ "hello"', ids("r1 r2")),
    ('title ~ "HELLO"', ids("r1 r2")),
    ('title !~ "hello"', ids("r3 r5 r6 r7 r8")),
    ('title ~ "_"', ids("r5")),
    ('title ~ "%"', but("r4")),
    ('title ~ "hel%"', ids("r1 r2")),
    ('title ~ "%orld"', ids("r1")),
    ('title ~ "h_llo"', []),
    ('title ~ "h_llo%"', ids("r1 r2")),
    (r'title ~ "b\%c"', ids("r5")),
    (r'title ~ "c\d"', ids("r5")),
    ('title ~ "\'"', ids("r6")),
    ("title ~ '\"q\"'", ids("r6")),
    (r'title ~ "\"q\""', ids("r6")),
    ('title ~ "o"', ids("r1 r2 r6 r8")),
    ('title ~ ""', but("r4")),
    ("title ~ null", []),  # LIKE NULL is unknown, as in PocketBase
    ("title !~ null", []),
    ('title !~ ""', []),
    ("title ~ title", ids("r1 r2 r3 r6 r7 r8")),
    ('"hello world" ~ title', ids("r1 r2 r3")),
    ("title ~ 10", ids("r7")),
    ('title ?~ "zebra"', ids("r8")),
    # -- text: ordering and number/bool literals ---------------------------------------------
    ('title > "a"', ids("r2 r5")),
    ('title >= "hello"', ids("r2")),
    ('title < "B"', ids("r3 r7")),
    ('title <= ""', ids("r3")),
    ("title < null", []),
    ("title > null", []),
    ("title = 10", []),  # a filter's 10 is REAL: a text column reads "10.0" (SQLite, PocketBase)
    ("title = 10.0", []),
    ("10 = title", []),
    ("title > 5", ids("r1 r2 r5 r6 r8")),
    ("title = true", []),
    ("title != true", ALL_IDS),
    # -- :lower ----------------------------------------------------------------------------
    ('title:lower = "hello world"', ids("r1")),
    ('title:lower ~ "hello"', ids("r1 r2")),
    ('title:lower = ""', ids("r3 r4")),
    ('title:lower = "zebra crossing"', ids("r8")),
    ('title:lower > "h"', ids("r1 r2 r6 r8")),
    # -- numbers -----------------------------------------------------------------------
    ("n = 10", ids("r1 r7")),
    ('n = "10"', ids("r1 r7")),
    ("n = 5.5", ids("r2")),
    ("n > 5", ids("r1 r2 r6 r7")),
    ("n >= 10", ids("r1 r6 r7")),
    ("n < 0", ids("r5")),
    ("n <= 0", ids("r3 r5")),
    ("n != 10", ids("r2 r3 r4 r5 r6 r8")),
    ("n = 0", ids("r3")),
    ("n = -3", ids("r5")),
    ("n > -3.5", but("r4")),
    ("n = null", ids("r4")),
    ('n = ""', ids("r4")),
    ("n != null", but("r4")),
    ('n != ""', but("r4")),
    ('n > "abc"', []),
    ('n >= "abc"', []),
    ('n < "abc"', but("r4")),
    ('n <= "abc"', but("r4")),
    ('n = "abc"', []),
    ('n != "abc"', ALL_IDS),
    ('"abc" > n', but("r4")),
    ('"abc" < n', []),
    ('n > " 5 "', ids("r1 r2 r6 r7")),
    ("10 = n", ids("r1 r7")),
    ("n = n", ALL_IDS),
    ("n != n", []),
    ('n ~ "5"', ids("r2")),
    ('n ~ "10"', ids("r1 r6 r7")),
    ("n = title", ids("r4")),  # two fields compare without affinity: 10 is not "10"
    ("n > 5 && n < 50", ids("r1 r2 r7")),
    ("n = 10 || n = 100", ids("r1 r6 r7")),
    ("n < @year", but("r4")),
    ("n ?> 50", ids("r6")),
    ("1 = 1", ALL_IDS),
    ("1 > 2", []),
    ('1 = "1"', []),  # a number never equals a text
    # -- booleans ----------------------------------------------------------------------
    ("flag = true", ids("r1 r5 r6 r8")),
    ("flag = false", ids("r2 r3 r7")),
    ("flag != true", ids("r2 r3 r4 r7")),
    ("flag != false", ids("r1 r4 r5 r6 r8")),
    ("flag = 1", ids("r1 r5 r6 r8")),
    ("flag = 0", ids("r2 r3 r7")),
    ('flag = "1"', ids("r1 r5 r6 r8")),
    ('flag = "true"', []),
    ("flag = null", ids("r4")),
    ('flag = ""', ids("r4")),
    ("flag > 0", ids("r1 r5 r6 r8")),
    ("true = flag", ids("r1 r5 r6 r8")),
    ("flag = TRUE", ids("r1 r5 r6 r8")),
    ("flag = flag", ALL_IDS),
    ("true = true", ALL_IDS),
    ("true = false", []),
    # -- date strings and datetime macros -------------------------------------------------
    ('created > "2024-01-01"', ids("r1 r5 r6 r7 r8")),
    ('created = "2024-01-15 10:00:00.000Z"', ids("r1 r7")),
    ("created < @now", ids("r1 r2 r3 r7 r8")),
    ("created >= @todayStart", ids("r5 r6")),
    ("created <= @yearEnd", ids("r1 r2 r3 r5 r7 r8")),
    ("created >= @yearStart && created <= @yearEnd", ids("r1 r5 r7 r8")),
    ("created > @monthEnd", ids("r5 r6")),
    ("created < @monthStart", ids("r1 r2 r3 r7 r8")),
    ('created ~ "2024-01"', ids("r1 r7")),
    ('created = ""', ids("r3 r4")),
    ("created > @yesterday", ids("r5 r6")),
    ("created < @tomorrow", ids("r1 r2 r3 r7 r8")),
    ("@todayEnd > created", ids("r1 r2 r3 r7 r8")),
    ('@now = "2024-06-15 12:34:56.789Z"', ALL_IDS),
    ('@todayEnd = "2024-06-15 23:59:59.999Z"', ALL_IDS),
    # -- number macros ---------------------------------------------------------------------
    ("@month = 6", ALL_IDS),
    ("@weekday = 6", ALL_IDS),
    ("@hour = 12 && @minute = 34 && @second = 56", ALL_IDS),
    ("@year > n", but("r4")),
    ("@day = 14", []),
    # -- multi-valued JSON array: all-of (plain) and any-of (?) -----------------------------
    ('tags = "a"', ids("r8")),
    ('tags ?= "a"', ids("r1 r5 r8")),
    ('tags ?= "A"', ids("r5")),
    ('tags != "a"', ids("r2 r3 r4 r6 r7")),
    ('tags ?!= "a"', but("r8")),
    ('tags = ""', ids("r3 r4")),
    ('tags ?= ""', ids("r3 r4")),
    ("tags = null", ids("r3 r4")),
    ("tags ?= null", ids("r3 r4")),
    ('tags != ""', but("r3 r4")),
    ('tags ~ "a"', ids("r8")),
    ('tags ?~ "a"', ids("r1 r5 r8")),
    ('tags !~ "a"', ids("r2 r6 r7")),
    ('tags ?!~ "a"', ids("r1 r2 r5 r6 r7")),
    ('tags > "a"', ids("r2 r6")),
    ('tags ?> "w"', ids("r6")),
    ('tags ?< "a"', ids("r5 r7")),
    ('tags >= "a"', ids("r1 r2 r6 r8")),
    ('tags ?~ "%"', but("r3 r4")),
    ("tags:length = 0", ids("r3 r4")),
    ("tags:length = 2", ids("r1 r7 r8")),
    ("tags:length > 2", ids("r5")),
    ("tags:length >= 1", but("r3 r4")),
    ("tags:length = n", ids("r3 r8")),
    ('tags:each = "a"', ids("r8")),
    ('tags:each ?= "b"', ids("r1 r2")),
    ('tags:lower = "a"', ids("r8")),
    ('tags:lower ?= "a"', ids("r1 r5 r8")),
    ("tags ?= title", ids("r3 r4 r7")),
    ("tags = title", ids("r3 r4")),
    ("tags ?= 10", []),
    ("tags ?> 5", ids("r1 r2 r5 r6 r8")),
    ('"a" ?= tags', ids("r1 r5 r8")),
    ('"a" = tags', ids("r8")),
    ("tags = tags", ids("r2 r3 r4 r6 r8")),
    ("tags ?= tags", ALL_IDS),
    ("tags ?!= tags", ids("r1 r5 r7")),
    ('tags ?!= "a" && tags ?= "a"', ids("r1 r5")),
    ('tags ?= "a" || tags:length = 0', ids("r1 r3 r4 r5 r8")),
    ('tags ?= "b" && (title ~ "hello" || n > 50)', ids("r1 r2")),
    # -- JSON paths: type-strict, no null folding --------------------------------------------
    ("meta.a = 1", ids("r1")),
    ('meta.a = "1"', ids("r5")),
    ("meta.a > 1", ids("r2 r5 r6")),  # every text (r5: "1") sorts after every number
    ("meta.a >= 1", ids("r1 r2 r5 r6")),
    ("meta.a = 1.5", ids("r6")),
    ("meta.a = null", ids("r3 r4 r7 r8")),
    ("meta.a != null", ids("r1 r2 r5 r6")),
    ('meta.b = "x"', ids("r1")),
    ('meta.b = "X"', []),
    ("meta.b = null", ids("r3 r4 r5 r7 r8")),
    ('meta.b = ""', ids("r6")),
    ('meta.b != "x"', but("r1")),
    ('meta.b ~ "y"', ids("r2")),
    ("meta.c = true", ids("r1")),
    ("meta.c = false", ids("r2")),
    ("meta.c != true", but("r1")),
    ('meta.o.k = "v"', ids("r1")),
    ("meta.arr.0 = 1", ids("r1")),
    ("meta.arr.1 > 1", ids("r1")),
    ("meta.0 = 1", ids("r7")),
    ("meta.2 = 3", ids("r7")),
    ("meta = null", ids("r3")),
    ('meta = "str"', ids("r8")),
    ("meta != null", but("r3")),
    ("meta.a = meta.a", ALL_IDS),
    ("meta.b = title", ids("r4")),
    ('meta.a:lower = "1"', ids("r1 r5")),
    ('meta.b:lower = "y"', ids("r2")),
    ("meta.a ?= 1", ids("r1")),
    ("meta.missing.deep = null", ALL_IDS),
    # -- structure: precedence, parentheses, comments -------------------------------------
    ('title = "hello" || n = 100', ids("r2 r6")),
    ('(title = "hello" || n = 100) && flag = true', ids("r6")),
    ('title = "hello" || n = 100 && flag = false', ids("r2")),
    ('n = 100 && flag = false || title = "hello"', ids("r2")),
    ('(n > 0 && n < 50) || (flag = false && title = "")', ids("r1 r2 r3 r7 r8")),
    ("n > 0 // only positive\n && flag = true", ids("r1 r6 r8")),
    ("((((n = 10))))", ids("r1 r7")),
    ('id = "r1" || id = "r2" || id = "r3"', ids("r1 r2 r3")),
    ('id ?= "r1"', ids("r1")),
    ('(id = "r1" || id = "r2") && (id = "r2" || id = "r3")', ids("r2")),
    # -- strftime ---------------------------------------------------------------------------
    ('strftime("%Y", created) = "2024"', ids("r1 r5 r7 r8")),
    ('strftime("%Y-%m", created) = "2024-01"', ids("r1 r7")),
    ('strftime("%m", created) = "02"', ids("r6 r8")),
    ('strftime("%Y", created) = ""', ids("r3 r4")),
    ('strftime("%d", created, "+1 day") = "01"', ids("r5 r6 r8")),
    ('strftime("%Y-%m-%d", created, "start of month") = "2024-01-01"', ids("r1 r7")),
    ('strftime("%H:%M:%S", created) = "10:00:00"', ids("r1 r7")),
    ('strftime("%w", created) = "1"', ids("r1 r7")),
    ('strftime("%j", created) = "060"', ids("r8")),
    ('strftime("%s", created) = "1705312800"', ids("r1 r7")),
    ('strftime("%W", created) = "03"', ids("r1 r7")),
    ('strftime("%f", created) = "59.999"', ids("r5")),
    ('strftime("%Y", created, "+1 year") = "2025"', ids("r1 r5 r7 r8")),
    ('strftime("%H", created, "-2 hours") = "22"', ids("r2 r8")),
    ('strftime("%Y-%m-%d", "2024-03-10 08:00:00.000Z") = "2024-03-10"', ALL_IDS),
    ('strftime("%Y", created) = strftime("%Y", @now)', ids("r1 r5 r7 r8")),
    ('strftime("%Y", created) > "2023" && strftime("%Y", created) < "2025"', ids("r1 r5 r7 r8")),
    ('strftime("%Y", n, "unixepoch") = "1970"', ids("r1 r2 r3 r6 r7 r8")),
    ('strftime("%%Y") = "%Y"', ALL_IDS),
    ('strftime("%Y", "not a date") = ""', ALL_IDS),
    ('strftime("%Y", meta.b) = ""', ALL_IDS),
    # -- geoDistance ------------------------------------------------------------------------
    ("geoDistance(lon, lat, 23.3219, 42.6977) < 1", ids("r1 r5")),
    ("geoDistance(lon, lat, 2.3522, 48.8566) < 500", ids("r2 r3")),
    ("geoDistance(lon, lat, -0.1276, 51.5072) > 5000", ids("r6 r7 r8")),
    ("geoDistance(lon, lat, lon, lat) < 0.001", but("r4")),
    ("geoDistance(lon, lat, lon, lat) = 0", but("r4")),
    ("geoDistance(0, 0, 180, 0) > 20015 && geoDistance(0, 0, 180, 0) < 20016", ALL_IDS),
    ("geoDistance(lon, lat, 0, 200) > 0", but("r4")),  # out of range: no error
    ("geoDistance(lon, lat, 0, 0) = null", ids("r4")),
    # -- injection attempts are plain values -------------------------------------------------
    ("title = \"x' OR '1'='1\"", []),
    ('title = \'x" OR "1"="1\'', []),
    ('title ~ "\'; DROP TABLE items; --"', []),
    (r'title = "\") OR 1=1 --"', []),
    ('meta.b = "x\' OR 1=1 --"', []),
    ('tags ?= "a\') OR 1=1 --"', []),
    ("title != \"x' OR '1'='1\"", ALL_IDS),
    ("title ~ \"%' OR 1=1 OR title LIKE '%\"", []),
]


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 150
    assert len({text for text, _ in CASES}) == len(CASES), "duplicate filters in the table"


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text for text, _ in CASES])
async def test_filter(rules_db: Backend, text: str, expected: list[str]) -> None:
    assert await rules_db.ids(text) == expected


SORTS = [
    ("n,id", ["r4", "r5", "r3", "r8", "r2", "r1", "r7", "r6"]),
    ("-n,-id", ["r6", "r7", "r1", "r2", "r8", "r3", "r5", "r4"]),
    ("title", ["r4", "r3", "r7", "r1", "r6", "r8", "r5", "r2"]),
    ("+title:lower", ["r4", "r3", "r7", "r5", "r2", "r1", "r6", "r8"]),
    ("-flag, id", ["r1", "r5", "r6", "r8", "r2", "r3", "r7", "r4"]),
    ("created,-id", ["r4", "r3", "r2", "r7", "r1", "r8", "r5", "r6"]),
]


@pytest.mark.parametrize(("text", "expected"), SORTS, ids=[text for text, _ in SORTS])
async def test_sort(rules_db: Backend, text: str, expected: list[str]) -> None:
    assert await rules_db.sorted_ids(text) == expected


async def test_random_sort_returns_every_row(rules_db: Backend) -> None:
    assert sorted(await rules_db.sorted_ids("@random")) == ALL_IDS
