"""The filter conformance table: one schema, eight records, and some 600 filters whose
expected rows are PocketBase's own answers.

``python -m tests.compat.record_filters`` runs every filter and sort here against the
real PocketBase binary and writes the answers to ``fixtures/filters.json``;
``test_filter_table.py`` asserts Bastion gives the same answers on SQLite, PostgreSQL and
MariaDB. The filters are a hand-written core (operators, null folding, LIKE escapes,
number and text coercion, JSON paths, multi-valued fields, relations, back-relations,
``@collection``, modifiers, functions, injection attempts) and a reproducible random
mix of every operand kind with every operator.

Records are written as short names (``r1``) in this file; on the servers they have
15-character ids (``r1xxxxxxxxxxxxx``). Filters use no date macro whose answer depends on
today's date: ``@now`` only against dates far from it.
"""

from __future__ import annotations

import random
import re
from typing import Any

ITEMS = "items"


def record_id(short: str) -> str:
    """``r1`` → ``r1xxxxxxxxxxxxx`` (PocketBase ids are 15 characters)."""
    return short + "x" * (15 - len(short))


_SHORT = re.compile(r"\b([rpn][1-8])\b")


def with_ids(text: str) -> str:
    """Short record names inside filter text replaced by their ids."""
    return _SHORT.sub(lambda m: record_id(m.group(1)), text)


def short_name(rid: str) -> str:
    return rid.rstrip("x")


PEOPLE_FIELDS = [
    {"name": "name", "type": "text"},
    {"name": "tags", "type": "select", "values": ["x", "y", "z"], "maxSelect": 3},
]
ITEM_FIELDS = [
    {"name": "title", "type": "text"},
    {"name": "n", "type": "number"},
    {"name": "flag", "type": "bool"},
    {"name": "when", "type": "date"},
    {"name": "tags", "type": "select", "values": ["a", "b", "c", "A", "x", "1", "10", "%", "_"], "maxSelect": 9},
    {"name": "kind", "type": "select", "values": ["red", "green", "blue"], "maxSelect": 1},
    {"name": "meta", "type": "json"},
    {"name": "lon", "type": "number"},
    {"name": "lat", "type": "number"},
    {"name": "owner", "type": "relation", "collectionId": "pbc_people", "maxSelect": 1},
    {"name": "crew", "type": "relation", "collectionId": "pbc_people", "maxSelect": 5},
    {"name": "secret", "type": "text", "hidden": True},
]
NOTE_FIELDS = [
    {"name": "item", "type": "relation", "collectionId": "pbc_items", "maxSelect": 1},
    {"name": "body", "type": "text"},
]
COLLECTIONS = [
    {"id": "pbc_people", "name": "people", "type": "base", "listRule": "", "viewRule": "", "fields": PEOPLE_FIELDS},
    {"id": "pbc_items", "name": ITEMS, "type": "base", "listRule": "", "viewRule": "", "fields": ITEM_FIELDS},
    {"id": "pbc_notes", "name": "notes", "type": "base", "listRule": "", "viewRule": "", "fields": NOTE_FIELDS},
]
PEOPLE = {
    "p1": {"name": "ann", "tags": ["x", "y"]},
    "p2": {"name": "bob", "tags": ["z"]},
    "p3": {"name": "", "tags": []},
}
ITEM_ROWS: dict[str, dict[str, Any]] = {
    "r1": {"title": "Hello World", "n": 10, "flag": True, "when": "2024-01-15 10:00:00.000Z", "tags": ["a", "b"],
           "kind": "red", "meta": {"a": 1, "b": "x", "c": True, "arr": [1, 2], "o": {"k": "v"}},
           "lon": 23.3219, "lat": 42.6977, "owner": "p1", "crew": ["p1", "p2"], "secret": "s1"},
    "r2": {"title": "hello", "n": 5.5, "flag": False, "when": "2023-06-01 00:00:00.000Z", "tags": ["b"],
           "kind": "green", "meta": {"a": 2, "b": "Y", "c": False}, "lon": -0.1276, "lat": 51.5072,
           "owner": "p2", "crew": ["p2"]},
    "r3": {"title": "", "n": 0, "flag": False, "when": "", "tags": [], "kind": "", "meta": None,
           "lon": 2.3522, "lat": 48.8566, "owner": "", "crew": []},
    "r4": {"title": "x y", "n": 0, "flag": False, "when": "", "tags": [], "kind": "", "meta": {},
           "lon": 0, "lat": 0, "owner": "p3", "crew": ["p3"]},
    "r5": {"title": "a_b%c\\d", "n": -3, "flag": True, "when": "2024-06-15 08:00:00.000Z", "tags": ["c", "a", "A"],
           "kind": "blue", "meta": {"a": "1", "b": None}, "lon": 23.32, "lat": 42.69, "owner": "p1",
           "crew": ["p1", "p3"], "secret": "s5"},
    "r6": {"title": "O'Brien \"q\"", "n": 100, "flag": True, "when": "2099-02-01 00:00:00.000Z", "tags": ["x"],
           "kind": "red", "meta": {"a": 1.5, "b": ""}, "lon": 139.6917, "lat": 35.6895, "owner": "",
           "crew": ["p2", "p3"]},
    "r7": {"title": "10", "n": 10, "flag": False, "when": "2024-01-15 10:00:00.000Z", "tags": ["1", "10"],
           "kind": "green", "meta": [1, 2, 3], "lon": -74.006, "lat": 40.7128, "owner": "p3", "crew": []},
    "r8": {"title": "Zebra crossing", "n": 2, "flag": True, "when": "2024-02-29 23:59:59.999Z", "tags": ["a"],
           "kind": "", "meta": "str", "lon": 151.2093, "lat": -33.8688, "owner": "p2", "crew": ["p1", "p2", "p3"]},
}
NOTES = {
    "n1": {"item": "r1", "body": "first"},
    "n2": {"item": "r1", "body": "second"},
    "n3": {"item": "r2", "body": "third"},
    "n4": {"item": "r6", "body": ""},
}


def _ids_in(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("owner", "item"):
            value = record_id(value) if value else ""
        elif key == "crew":
            value = [record_id(v) for v in value]
        out[key] = value
    return out


def seed_requests() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, JSON body) that build the scenario, as a superuser, in order."""
    out: list[tuple[str, str, dict[str, Any]]] = [("POST", "/api/collections", c) for c in COLLECTIONS]
    for collection, rows in (("people", PEOPLE), (ITEMS, ITEM_ROWS), ("notes", NOTES)):
        for short, values in rows.items():
            out.append(("POST", f"/api/collections/{collection}/records", {"id": record_id(short), **_ids_in(values)}))
    return out


# -- the hand-written core -------------------------------------------------------------
CORE = [
    # text: equality with empty values
    'title = "hello"', 'title = "Hello World"', 'title != "hello"', 'title = ""', "title = ''", "title = null",
    'title != ""', "title != null", '"" = title', "null = title", "title = NULL", '"" = ""', '"" != null',
    '"a" = "a"', '"a" != "a"', "title = title", "title != title", "title = id", "title != id",
    # text: LIKE
    'title ~ "hello"', 'title ~ "HELLO"', 'title !~ "hello"', 'title ~ "_"', 'title ~ "%"', 'title ~ "hel%"',
    'title ~ "%orld"', 'title ~ "h_llo"', 'title ~ "h_llo%"', r'title ~ "b\%c"', r'title ~ "c\d"',
    'title ~ "\'"', "title ~ '\"q\"'", r'title ~ "\"q\""', 'title ~ "o"', 'title ~ ""', "title ~ null",
    "title !~ null", 'title !~ ""', "title ~ title", '"hello world" ~ title', "title ~ 10", 'title ?~ "zebra"',
    r'title ~ "\\"', 'title ~ "x y"', 'title !~ "%"',
    # text: ordering, numbers and booleans against text
    'title > "a"', 'title >= "hello"', 'title < "B"', 'title <= ""', "title < null", "title > null",
    "title = 10", "title = 10.0", "10 = title", "title > 5", "title = true", "title != true",
    # :lower
    'title:lower = "hello world"', 'title:lower ~ "hello"', 'title:lower = ""', 'title:lower = "zebra crossing"',
    'title:lower > "h"', 'kind:lower = "red"',
    # numbers
    "n = 10", 'n = "10"', "n = 5.5", "n > 5", "n >= 10", "n < 0", "n <= 0", "n != 10", "n = 0", "n = -3",
    "n > -3.5", "n = null", 'n = ""', "n != null", 'n != ""', 'n > "abc"', 'n >= "abc"', 'n < "abc"',
    'n <= "abc"', 'n = "abc"', 'n != "abc"', '"abc" > n', '"abc" < n', 'n > " 5 "', "10 = n", "n = n",
    "n != n", 'n ~ "5"', 'n ~ "10"', "n = title", "n > 5 && n < 50", "n = 10 || n = 100", "n < @year",
    "n ?> 50", "1 = 1", "1 > 2", '1 = "1"', "n = lon", "n > lat",
    # booleans
    "flag = true", "flag = false", "flag != true", "flag != false", "flag = 1", "flag = 0", 'flag = "1"',
    'flag = "true"', "flag = null", 'flag = ""', "flag > 0", "true = flag", "flag = TRUE", "flag = flag",
    "true = true", "true = false",
    # dates
    'when > "2024-01-01"', 'when = "2024-01-15 10:00:00.000Z"', "when < @now", "when > @now", 'when ~ "2024-01"',
    'when = ""', 'when != ""', 'when >= "2024-02-29 23:59:59.999Z"', 'when < "2024"', "when = null",
    '@now > "2000-01-01"', "@now != null",
    # multiple select: a direct reference is the stored JSON text
    'tags = "a"', 'tags ?= "a"', 'tags != "a"', 'tags ?!= "a"', 'tags = ""', 'tags ?= ""', "tags = null",
    'tags != ""', 'tags ~ "a"', 'tags ?~ "a"', 'tags !~ "a"', 'tags > "a"', 'tags < "["', "tags = '[]'",
    'tags = \'["a","b"]\'', 'tags = \'["a", "b"]\'', 'tags ~ \'"a"\'', 'tags ~ "%"', r'tags ~ "\%"',
    "tags ~ '_'", "tags ?= title", "tags = title", "tags = tags", 'tags:lower ~ "a"',
    # :length and :each
    "tags:length = 0", "tags:length = 2", "tags:length > 2", "tags:length >= 1", "tags:length = n",
    'tags:each = "a"', 'tags:each ?= "b"', 'tags:each ?= "A"', 'tags:each != "a"', 'tags:each ?!= "a"',
    'tags:each ~ "a"', 'tags:each ?~ "a"', "tags:each ?> \"b\"", "tags:each ?= 10", "tags:each > 5",
    'tags:each ?= "a" || tags:length = 0', 'tags:each ?= "b" && (title ~ "hello" || n > 50)',
    'tags:each:lower = "a"', "kind:length = 1", "kind:length = 0", 'kind:each = "red"', 'kind:each ?= "green"',
    "title:length = 0", 'title:each = "hello"', 'title:isset = "hello"', "n:length > 5", "flag:each = true",
    # single select
    'kind = "red"', 'kind != "red"', 'kind = ""', 'kind ?= "red"', 'kind ~ "re"', 'kind > "green"',
    # JSON: type-strict
    "meta.a = 1", 'meta.a = "1"', "meta.a > 1", "meta.a >= 1", "meta.a = 1.5", "meta.a = null", "meta.a != null",
    'meta.b = "x"', 'meta.b = "X"', "meta.b = null", 'meta.b = ""', 'meta.b != "x"', 'meta.b ~ "y"',
    "meta.c = true", "meta.c = false", "meta.c != true", 'meta.o.k = "v"', "meta.arr.0 = 1", "meta.arr.1 > 1",
    "meta.0 = 1", "meta.2 = 3", "meta = null", 'meta = "str"', "meta != null", "meta.a = meta.a",
    "meta.b = title", 'meta.a:lower = "1"', 'meta.b:lower = "y"', "meta.a ?= 1", "meta.missing.deep = null",
    'meta ~ "1"', 'meta = "[1,2,3]"', "meta = '{}'", 'meta ~ "str"', "meta.k:length > 0", "meta:length = null",
    'meta.arr:each = 1', "meta.a = meta.b", "meta = meta",
    # structure
    'title = "hello" || n = 100', '(title = "hello" || n = 100) && flag = true',
    'title = "hello" || n = 100 && flag = false',
    'n = 100 && flag = false || title = "hello"', '(n > 0 && n < 50) || (flag = false && title = "")',
    "n > 0 // only positive\n && flag = true", "((((n = 10))))", 'id = "r1" || id = "r2" || id = "r3"',
    'id ?= "r1"', '(id = "r1" || id = "r2") && (id = "r2" || id = "r3")', 'id ~ "r"', 'id > "r4"',
    # strftime and geoDistance
    'strftime("%Y", when) = "2024"', 'strftime("%Y-%m", when) = "2024-01"', 'strftime("%m", when) = "02"',
    'strftime("%Y", when) = ""', 'strftime("%d", when, "+1 day") = "01"',
    'strftime("%Y-%m-%d", when, "start of month") = "2024-01-01"', 'strftime("%H:%M:%S", when) = "10:00:00"',
    'strftime("%w", when) = "1"', 'strftime("%j", when) = "060"', 'strftime("%s", when) = "1705312800"',
    'strftime("%W", when) = "03"', 'strftime("%Y", when, "+1 year") = "2025"',
    'strftime("%Y-%m-%d", "2024-03-10 08:00:00.000Z") = "2024-03-10"', 'strftime("%Y", when) = strftime("%Y", @now)',
    'strftime("%Y", n, "unixepoch") = "1970"', 'strftime("%%Y") = "%Y"', 'strftime("%Y", "not a date") = ""',
    "strftime('%Y', when) = 2024", 'strftime("%Y", meta.b) = ""',
    "geoDistance(lon, lat, 23.3219, 42.6977) < 1", "geoDistance(lon, lat, 2.3522, 48.8566) < 500",
    "geoDistance(lon, lat, -0.1276, 51.5072) > 5000", "geoDistance(lon, lat, lon, lat) < 0.001",
    "geoDistance(0, 0, 180, 0) > 20015 && geoDistance(0, 0, 180, 0) < 20016", "geoDistance(lon, lat, 0, 200) > 0",
    # a function on the right of ~: its given values are wrapped in %...%, not its result
    'title ~ strftime("o%%")', 'title !~ strftime("o%%")', 'title ~ strftime("%Y", "2024-01-01")',
    'title !~ strftime("%Y", when)', 'title ~ strftime("%Y", when, "start of month")', 'title ~ strftime("%Y", @now)',
    "n ~ geoDistance(0, 0, 0, 0)", "n !~ geoDistance(lon, lat, 1, 2)",
    'tags:each ?~ strftime("%%")', 'crew.name ?~ strftime("b%%")',
    # every item against a JSON value; one single relation's list read twice under ?
    "crew.name != meta.b", "crew.name = meta.b", "owner.tags:each ?> owner.tags:each",
    "title:lower ?> owner.tags:each || owner.tags:each ?> owner.tags:each",
    # a JSON boolean read as text is 1 or 0, as SQLite's json_extract gives it
    "n !~ meta.c", "n ~ meta.c", "crew.tags:length ?~ meta.c", "crew.tags:length !~ meta.c", "title ~ meta.c:lower",
    # relations: single, multiple, back-relations, @collection
    'owner = "p1"', 'owner != "p1"', 'owner = ""', 'owner.name = "ann"', 'owner.name != "ann"', 'owner.name = ""',
    'owner.id = "p2"', 'owner.tags ?= "x"', 'owner.tags ~ "x"', 'owner.tags:each ?= "z"', "owner.tags:length = 2",
    'owner:length = 1', 'owner:each = "p1"', 'owner.name:lower = "ANN"',
    'crew = "p2"', 'crew ?= "p2"', 'crew ~ "p2"', 'crew != "p2"', 'crew = \'[]\'', 'crew.id ?= "p2"',
    'crew.id = "p2"', 'crew.id != "p2"', 'crew.id ?!= "p2"', 'crew.name ?= "ann"', 'crew.name = "ann"',
    'crew.name != "ann"', 'crew.name ?~ "o"', 'crew.name = ""', 'crew.name ?= ""', "crew:length = 0",
    "crew:length > 1", 'crew:each ?= "p3"', 'crew:each = "p3"', 'crew.tags ?~ "y"', 'crew.tags:each ?= "z"',
    'crew.tags:each = "z"', "crew.tags:length ?> 1", 'crew.name:lower ?= "BOB"',
    'notes_via_item.body ?= "first"', 'notes_via_item.body = "first"', 'notes_via_item.body != "first"',
    'notes_via_item.body ?~ "ir"', 'notes_via_item.body = ""', 'notes_via_item.id ?= "n3"',
    'notes_via_item.item.title ?= "hello"', 'notes_via_item.body:lower ?= "FIRST"', "notes_via_item.body:length = 0",
    'notes_via_item.body:each ?= "first"',
    '@collection.people.name ?= "ann"', '@collection.people.name = "ann"', "@collection.people:p.id = owner",
    '@collection.people:p.id = owner && @collection.people:p.name = "bob"', "@collection.people:p.tags:length = 2",
    '@collection.notes:x.item = id && @collection.notes:x.body ~ "ir"', '@collection.people.tags ?~ "z"',
    "@collection.people:q.id ?= crew.id", '@collection.people:q.name = "ann" && crew.id ?= @collection.people:q.id',
    # @request and hidden fields (as a superuser)
    '@request.method = "GET"', '@request.context = "default"', "@request.auth.id != ''",
    "@request.auth.collectionName = '_superusers'", '@request.query.x = "1"', "@request.headers.x_nope = null",
    'secret = "s1"', 'secret != ""', '@request.body.title = ""',
    # refused
    "nope = 1", 'owner.nope = 1', "title:nope = 1", "@request.nope = 1", "title.x = 1", "notes_via_nope.body = 1",
    "crew_via_item.x = 1", "@collection.nope.x = 1", "title =", "= 1", "(title = 1", 'title = "x', "title == 1",
    "title = 1 &&", "title ?? 1", "unknownfn(title) = 1", 'strftime("%Y") = strftime()', "",
    # injection attempts are plain values
    "title = \"x' OR '1'='1\"", 'title = \'x" OR "1"="1\'', 'title ~ "\'; DROP TABLE items; --"',
    r'title = "\") OR 1=1 --"', 'meta.b = "x\' OR 1=1 --"', 'tags ?= "a\') OR 1=1 --"',
    "title != \"x' OR '1'='1\"", "title ~ \"%' OR 1=1 OR title LIKE '%\"",
]

SORTS = [
    "title,id", "-title,id", "n,id", "-n,id", "flag,id", "-flag,id", "when,id", "-when,id", "tags,id", "-tags,id",
    "kind,id", "kind:lower,id", "title:lower,id", "meta,id", "meta.a,id", "-meta.b,id", "owner,id", "owner.name,id",
    "-owner.name,id", "crew,id", "lon,-lat,id", "id", "-id", "secret,id", "nope", "title:each,id",
]

# -- the random mix -----------------------------------------------------------------------
OPERANDS = [
    "title", "n", "flag", "when", "tags", "kind", "meta", "meta.a", "meta.b", "meta.c", "meta.arr.0", "meta.o.k",
    "lon", "owner", "crew", "owner.name", "owner.id", "owner.tags", "crew.name", "crew.id", "crew.tags",
    "notes_via_item.body", "notes_via_item.id", "tags:each", "tags:length", "crew:length", "crew:each",
    "kind:each", "kind:length", "owner:length", "title:lower", "kind:lower", "tags:lower", "crew.name:lower",
    "id", "secret", "meta.a:lower", "@collection.people.name", "@collection.people:p.tags", "title:each",
    "crew.tags:each", "crew.tags:length", "owner.tags:each", "notes_via_item.body:lower", "@request.method",
]
VALUES = [
    '"a"', '"b"', '"x"', '""', "''", "null", "true", "false", "0", "1", "10", "5.5", "-3", '"10"', '"hello"',
    '"Hello World"', '"%"', '"_"', "'[]'", '\'["a","b"]\'', '"2024-01-15 10:00:00.000Z"', '"2024"', "@now",
    '"ann"', '"p1"', '"p2"', '"red"', '"r1"', "'x'", '"1"', "2", '"z"', '"[\\"z\\"]"',
]
OPERATORS = ["=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~"]
GENERATED = 360
SEED = 20261207


def _comparison(rng: random.Random) -> str:
    left = rng.choice(OPERANDS)
    right = rng.choice(VALUES) if rng.random() < 0.75 else rng.choice(OPERANDS)
    if rng.random() < 0.1:
        left, right = right, left
    return f"{left} {rng.choice(OPERATORS)} {right}"


def generated_filters() -> list[str]:
    """A reproducible mix: single comparisons, and pairs joined by ``&&`` or ``||``."""
    rng = random.Random(SEED)
    out: list[str] = []
    while len(out) < GENERATED:
        text = _comparison(rng)
        if rng.random() < 0.3:
            text = f"{text} {rng.choice(['&&', '||'])} {_comparison(rng)}"
            if rng.random() < 0.3:
                text = f"({text}) && {_comparison(rng)}"
        if text not in out and text not in CORE:
            out.append(text)
    return out


def all_filters() -> list[str]:
    return [*CORE, *generated_filters()]


def list_params(filter_text: str | None = None, sort: str | None = None) -> dict[str, str]:
    """The query of one list request of the table: every row, ids only."""
    params = {"perPage": "100", "fields": "id"}
    if filter_text is not None:
        params["filter"] = with_ids(filter_text)
        params["sort"] = "id"
    if sort is not None:
        params["sort"] = sort
    return params


def answer_of(status: int, body: Any) -> Any:
    """What the table records of one answer: the short names of the rows, or the status."""
    if status != 200:
        return status
    return [short_name(item["id"]) for item in body["items"]]
