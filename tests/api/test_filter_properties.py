"""Property tests for ``filter`` and ``sort`` through the HTTP API.

1. Differential: random *well-formed* filters over one seeded schema give the same ids
   (or the same 400) on SQLite, PostgreSQL and MariaDB, in one test.
2. Robustness: random text as ``filter`` / ``sort`` answers 200, 400 (or 403 for a guest),
   never 500.
3. SQL injection through every parameter returns nothing it should not, and changes
   nothing (no extra rows, no schema change, the users table keeps its rows).

The three apps are built once for the module, like ``tests/conftest.py`` builds one per
test. Record ids are fixed (15-char custom ids) so id sets compare across databases.

Divergences the properties found are kept as minimal ``xfail(strict=True)`` regressions at
the end of the differential part, and the generators steer around them (each spot says
which): JSON nodes against true/false, JSON index paths on non-arrays, number fields read
as text, strftime() of numeric text, non-ASCII case folding, sorting by @collection.* and
by JSON fields.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.adapters.database import open_database
from bastion.api.app import HttpOptions, create_asgi
from bastion.core.app import App
from bastion.testing import SUPERUSER_EMAIL, SUPERUSER_PASSWORD
from tests.services import BACKENDS

# -- the seeded schema -------------------------------------------------------------------

CATS = {
    "cat00000000000a": {"name": "Alpha", "rank": 1},
    "cat00000000000b": {"name": "beta", "rank": 2},
    "cat00000000000c": {"name": "", "rank": 0},
    "cat00000000000d": {"name": "ünïcode ✓", "rank": -3.5},
}
A, B, C, D = sorted(CATS)
TAGS = ["a", "b", "c", "ü", "x y", "%", "_"]
# Non-ASCII letters in the seed are all lower case, and generated literals hold no upper-case
# non-ASCII letter: folding beyond ASCII differs between databases (see the regressions).
ITEMS: dict[str, dict[str, Any]] = {
    "item00000000001": {"title": "Hello World", "n": 10, "flag": True, "when": "2020-01-15 10:00:00.000Z",
                        "tags": ["a", "b"], "kind": "red",
                        "meta": {"a": 1, "b": "x", "c": True, "arr": [1, 2], "o": {"k": "v"}},
                        "cat": A, "cats": [A, B], "secret": "s1"},
    "item00000000002": {"title": "hello", "n": 5.5, "flag": False, "when": "2023-06-01 00:00:00.000Z",
                        "tags": ["b"], "kind": "green", "meta": {"a": 2, "b": "Y", "c": False},
                        "cat": B, "cats": [B], "secret": "s2"},
    "item00000000003": {"title": "", "n": 0, "flag": False, "when": "", "tags": [], "kind": "",
                        "meta": None, "cat": "", "cats": [], "secret": ""},
    "item00000000004": {"title": 'it\'s "quoted"', "n": -1, "flag": True, "when": "2099-12-31 23:59:59.999Z",
                        "tags": ["c", "x y"], "kind": "blue", "meta": {"a": "1", "b": None},
                        "cat": C, "cats": [C, D], "secret": "s4"},
    "item00000000005": {"title": "50% off_sale\\path", "n": 100, "flag": False,
                        "when": "2024-02-29 12:00:00.000Z", "tags": ["%", "_"], "kind": "red",
                        "meta": [1, "a", None], "cat": D, "cats": [A, C, D], "secret": "s5"},
    "item00000000006": {"title": "ünïcode ✓ straße 中文 😀", "n": 2.25, "flag": True,
                        "when": "1999-01-01 00:00:00.000Z", "tags": ["ü"], "kind": "", "meta": "just a string",
                        "cat": A, "cats": [], "secret": "S6"},
    "item00000000007": {"title": "  spaced  ", "n": 1000000, "flag": False, "when": "2024-06-15 12:34:56.789Z",
                        "tags": ["a", "c"], "kind": "green", "meta": 42, "cat": "", "cats": [B, D],
                        "secret": "s7"},
    "item00000000008": {"title": "NULL", "n": -0.5, "flag": True, "when": "2024-06-15 00:00:00.000Z",
                        "tags": ["a", "b", "c"], "kind": "blue", "meta": {"a": {"b": [1, {"c": "deep"}]}},
                        "cat": B, "cats": [A], "secret": "s8"},
    "item00000000009": {"title": "10", "n": 10, "flag": False, "when": "2021-03-04 05:06:07.000Z",
                        "tags": ["b", "c"], "kind": "red", "meta": True, "cat": C, "cats": [B],
                        "secret": "s9"},
    "item00000000010": {"title": "tab\there", "n": 3, "flag": True, "when": "2022-01-01 00:00:00.000Z",
                        "tags": ["x y"], "kind": "", "meta": {"": "empty key", "a": [1, 2, 3]},
                        "cat": D, "cats": [D], "secret": "s10"},
}
NOTES = {
    "note00000000001": {"item": "item00000000001", "body": "first"},
    "note00000000002": {"item": "item00000000001", "body": "second"},
    "note00000000003": {"item": "item00000000004", "body": "ünï"},
    "note00000000004": {"item": "item00000000008", "body": ""},
    "note00000000005": {"item": "", "body": "orphan"},
}
SCHEMA = [
    {"name": "cats", "listRule": "", "viewRule": "",
     "fields": [{"name": "name", "type": "text"}, {"name": "rank", "type": "number"}]},
    {"name": "items", "listRule": "", "viewRule": "",
     "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"},
                {"name": "flag", "type": "bool"}, {"name": "when", "type": "date"},
                {"name": "tags", "type": "select", "values": TAGS, "maxSelect": len(TAGS)},
                {"name": "kind", "type": "select", "values": ["red", "green", "blue"], "maxSelect": 1},
                {"name": "meta", "type": "json"},
                {"name": "cat", "type": "relation", "collectionId": "cats", "maxSelect": 1},
                {"name": "cats", "type": "relation", "collectionId": "cats", "maxSelect": 5},
                {"name": "secret", "type": "text", "hidden": True}]},
    {"name": "notes", "listRule": "", "viewRule": "",
     "fields": [{"name": "item", "type": "relation", "collectionId": "items", "maxSelect": 1},
                {"name": "body", "type": "text"}]},
]
SEED = {"cats": CATS, "items": ITEMS, "notes": NOTES}


# -- three apps, one seed --------------------------------------------------------------

@dataclass
class Node:
    name: str
    app: App
    client: httpx.AsyncClient
    su: dict[str, str]


async def _start(name: str, url: str, tmp: Path) -> Node:
    app = App(open_database(url, tmp / "data"), tmp / "migrations")
    await app.start()
    await app.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
    asgi = create_asgi(app, HttpOptions(manage_lifespan=False, body_limit=1024 * 1024))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bastion.test")
    res = await client.post("/api/collections/_superusers/auth-with-password",
                            json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD})
    assert res.status_code == 200, res.text
    su = {"Authorization": res.json()["token"]}
    for collection in SCHEMA:
        res = await client.post("/api/collections", json=collection, headers=su)
        assert res.status_code == 200, res.text
    for collection, records in SEED.items():
        for rid, record in records.items():
            res = await client.post(f"/api/collections/{collection}/records", json={"id": rid, **record},
                                    headers=su)
            assert res.status_code == 200, (name, rid, res.text)
    return Node(name, app, client, su)


UNREACHABLE: list[str] = []  # why a backend is missing from ``nodes``


@pytest.fixture(scope="module")
async def nodes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Node]]:
    """A started, seeded app per reachable backend (missing ones are reported, not hidden)."""
    started: dict[str, Node] = {}
    made: list[tuple[Any, str]] = []
    skipped: list[str] = []
    try:
        for name, backend in BACKENDS.items():
            problem = backend.unavailable()
            if problem:
                if os.environ.get("BASTION_TEST_SERVICES") == "required":
                    pytest.fail(f"required service unavailable: {problem}")
                skipped.append(problem)
                continue
            db_name = f"bt_{secrets.token_hex(6)}"
            tmp = tmp_path_factory.mktemp(f"props_{name}")
            url = await backend.create_database(db_name, tmp)
            made.append((backend, db_name))
            started[name] = await _start(name, url, tmp)
        UNREACHABLE[:] = skipped
        yield started
    finally:
        for node in started.values():
            await node.client.aclose()
            await node.app.close()
        for backend, db_name in made:
            await backend.drop_database(db_name)


def _need(nodes: dict[str, Node], *names: str, at_least: int = 1) -> list[Node]:
    """The reachable nodes among ``names``; skip (with the reasons) if fewer than ``at_least``."""
    present = [nodes[n] for n in names if n in nodes]
    if len(present) < at_least:
        pytest.skip("; ".join(UNREACHABLE) or f"need {at_least} of {names}")
    return present


async def _list(node: Node, headers: dict[str, str] | None = None, **params: str) -> tuple[int, Any]:
    res = await node.client.get("/api/collections/items/records", params={"perPage": "1000", **params},
                                headers=node.su if headers is None else headers)
    body = res.json()
    if res.status_code == 200:
        ids = sorted(r["id"] for r in body["items"])
        assert body["totalItems"] == len(ids), (node.name, params, body["totalItems"], ids)
        return 200, ids
    return res.status_code, body.get("message")


# -- a strategy for well-formed filters --------------------------------------------------

def quoted(text: str, quote: str) -> str:
    """A string literal the lexer reads back as ``text`` (a backslash escapes a quote or a
    backslash)."""
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


def _uncased_beyond_ascii(ch: str) -> bool:
    """No upper- or title-case letter outside ASCII (see the case-folding regressions)."""
    return ord(ch) < 128 or ch.lower() == ch


SAFE_TEXT = st.text(
    alphabet=st.sampled_from(list("aAbBxyzü '\"%_\\.-019ß✓\t中😀"))
    | st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")).filter(_uncased_beyond_ascii),
    max_size=6,
).map(lambda s: s.rstrip("\\"))  # a trailing backslash would escape the closing quote
INTERESTING = ["hello", "Hello", "HELLO", "hello world", "a", "b", "x y", "%", "_", "50%", "50\\%", "\\",
               "'", '"', "ü", "straße", "STRASSE", "", " ", "  spaced  ", "10", "10.0", "1e3", "-1",
               "true", "null", "NULL", "2020-01-15", "2024-06-15 12:34:56.789Z", "2024", "x", "v", "deep",
               "red", "Alpha", "alpha", "beta", "ünïcode ✓", "first", "ünï", "1", "s1", "S6", "it's",
               "o%f", "o_f", "%a%", "h%", "%e", "_ello", "\\%", "tab\there", "tab", "中", "😀", "✓ S"]
STRINGS = st.one_of(st.sampled_from(INTERESTING), SAFE_TEXT)
STRING_LITERALS = st.builds(quoted, STRINGS, st.sampled_from(["'", '"']))
NUMBERS = st.one_of(
    st.sampled_from(["0", "1", "-1", "10", "5.5", "2.25", "-0.5", "100", "1000000", "3", "-3.5", "2", "0.0",
                     "10.00", "42"]),
    st.integers(-20, 20).map(str),
    st.tuples(st.integers(-20, 20), st.integers(0, 99)).map(lambda t: f"{t[0]}.{t[1]:02d}"),
)
KEYWORDS = st.sampled_from(["true", "false", "null", "TRUE", "Null"])
MACROS = st.sampled_from(["@now", "@yesterday", "@tomorrow", "@todayStart", "@todayEnd", "@monthStart",
                          "@monthEnd", "@yearStart", "@yearEnd", "@year", "@month"])
FUNCTIONS = st.builds(
    lambda fmt, field: f"strftime({quoted(fmt, chr(39))}, {field})",
    st.sampled_from(["%Y", "%m", "%d", "%Y-%m-%d", "%H:%M", "%Y-%m", "%j", "%w"]),
    st.sampled_from(["when", "cat.name", "meta.b", "notes_via_item.body"]),  # not "10": see the regressions
)
# no "meta.0": an index step on a non-array differs on MariaDB (see the regressions)
FIELDS = st.sampled_from([
    "id", "title", "n", "flag", "when", "tags", "kind", "meta", "meta.a", "meta.b", "meta.c", "meta.arr",
    "meta.arr.0", "meta.o.k", "meta.a.b.1.c", "cat", "cats", "cat.name", "cat.rank", "cats.name",
    "cats.rank", "cats.id", "notes_via_item.body", "notes_via_item.id", "secret", "title:lower",
    "tags:length", "tags:each", "cats:length", "kind:lower", "cat.name:lower", "meta.b:lower",
    "cat.id", "notes_via_item.body:lower", "cats.name:lower", "cats:each",
    "@collection.cats.name", "@collection.cats.rank", "@collection.notes.body", "@collection.cats:c.id",
    "@request.auth.email", "@request.auth.collectionName", "@request.method",  # (ids differ per node)
    "@request.query.perPage", "@request.query.nope", "@request.headers.x_nope", "@request.context",
])
NUMBER_FIELDS = {"n", "cat.rank", "cats.rank", "@collection.cats.rank"}
LIKE_OPERATORS = {"~", "!~", "?~", "?!~"}
OPERATORS = st.sampled_from(["=", "!=", ">", ">=", "<", "<=", "~", "!~",
                             "?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~"])
VALUES = st.one_of(STRING_LITERALS, STRING_LITERALS, NUMBERS, KEYWORDS, MACROS, FIELDS, FUNCTIONS)


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    left = draw(st.one_of(FIELDS, FIELDS, FIELDS, VALUES))
    right = draw(VALUES)
    op = draw(OPERATORS)
    for a, b in ((left, right), (right, left)):
        if a.startswith("meta") and b.lower() in ("true", "false"):
            # a JSON node against true/false: a 500 on MariaDB, see the regressions
            left, right = a, draw(st.sampled_from(["1", "0", "null"]))
    if op in LIKE_OPERATORS:
        # a number field as text is "10.0" on SQLite (see the regressions); "@now ~ x" would
        # depend on the milliseconds at which each database is asked (@yesterday and @tomorrow
        # are now -/+ one day, to the millisecond, too)
        swap = {**dict.fromkeys(NUMBER_FIELDS, "tags:length"),
                **dict.fromkeys(("@now", "@yesterday", "@tomorrow"), "@todayStart")}
        left, right = swap.get(left, left), swap.get(right, right)
    if draw(st.booleans()):
        left, right = right, left
    space = draw(st.sampled_from([" ", "", "  ", "\n"]))
    return f"{left}{space}{op}{space}{right}"


def _join(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["&&", "||"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(["&&", "||"]), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    )


FILTERS = st.recursive(comparisons(), _join, max_leaves=4)

# BASTION_FILTER_EXAMPLES scales every property here (default 200: ~15 s on an idle laptop for
# the differential test); derandomized, no example database left in the working tree.
EXAMPLES = int(os.environ.get("BASTION_FILTER_EXAMPLES", "200"))


def _settings(examples: int) -> settings:
    return settings(max_examples=max(examples, 1), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


DIFFERENTIAL = _settings(EXAMPLES)


def _same_everywhere(text: str, results: dict[str, tuple[int, Any]]) -> None:
    for name, (status, _) in results.items():
        assert status in (200, 400), (name, text, results)
    statuses = {status for status, _ in results.values()}
    assert len(statuses) == 1, (text, results)
    if statuses == {200}:
        id_sets = {name: tuple(ids) for name, (_, ids) in results.items()}
        assert len(set(id_sets.values())) == 1, (text, id_sets)


@DIFFERENTIAL
@given(text=FILTERS)
async def test_same_results_on_every_database(nodes, text):
    present = _need(nodes, "sqlite", "postgres", "mariadb", at_least=2)
    results = {node.name: await _list(node, filter=text) for node in present}
    _same_everywhere(text, results)
    # metamorphic: OR-ing a clause that is never true, or AND-ing one that always is,
    # changes nothing (one database is enough: the ids were just compared)
    status, ids = results[present[0].name]
    if status == 200:
        for wrapped in (f"({text}) || id = ''", f"id != '' && ({text})", f"({text}) && (title = title || 1 = 1)"):
            assert await _list(present[0], filter=wrapped) == (200, ids), (text, wrapped)


SORT_KEYS = st.sampled_from(["title", "n", "flag", "when", "kind", "tags", "cat", "cats", "cat.name",
                             "cat.rank", "title:lower", "cat.name:lower", "secret", "id", "@rowid",
                             "cat.id", "tags:length", "meta", "meta.a", "meta.b", "meta.c", "meta.arr.0",
                             "meta.o.k"])


@_settings(EXAMPLES // 2)
@given(keys=st.lists(st.tuples(st.sampled_from(["", "-", "+"]), SORT_KEYS), min_size=1, max_size=3),
       text=st.none() | FILTERS)
async def test_same_order_on_every_database(nodes, keys, text):
    # "id" last makes the order total
    sort = ",".join(f"{sign}{key}" for sign, key in keys) + ",id"
    params = {"sort": sort, **({"filter": text} if text else {})}
    results = {}
    for node in _need(nodes, "sqlite", "postgres", "mariadb", at_least=2):
        res = await node.client.get("/api/collections/items/records", params={"perPage": "1000", **params},
                                    headers=node.su)
        assert res.status_code in (200, 400), (node.name, params, res.text)
        results[node.name] = (res.status_code, [r["id"] for r in res.json()["items"]]
                              if res.status_code == 200 else None)
    assert len(set(map(str, results.values()))) == 1, (params, results)


# -- random text: 200 or 400, never 500 -------------------------------------------------

FRAGMENTS = ["title", "n", "meta.a", "tags", "cats.name", "notes_via_item.body", "cat.name:lower", "tags:each",
             "tags:length", "secret", "@request.auth.id", "@collection.cats.name", "@now", "@rowid", "@random",
             "strftime(", "geoDistance(", "'", '"', "\\", "=", "!=", "?=", "~", "?!~", ">=", "<", "&&", "||", "(",
             ")", ",", "-", "+", ":", ".", "@", "#", "//", "\n", " ", "1", "-2.5", "true", "null", "%", "_",
             "'x'", '"y"', "id", "@collection.", "@request.", "_via_", ":lower", ":nope", "\x00", "é", "😀"]
SOUP = st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join)
# a sort on @collection.* is a 500 today (see the regressions): left out of the sort side
SORT_SOUP = st.lists(st.sampled_from([f for f in FRAGMENTS if "@collection" not in f]), max_size=20).map("".join)
SPACED_SOUP = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(" ".join)
ROBUST = _settings(EXAMPLES // 2)


@ROBUST
@given(text=st.one_of(st.text(max_size=80), SOUP, SPACED_SOUP, FILTERS),
       sort=st.one_of(st.text(max_size=30), SORT_SOUP, st.lists(SORT_KEYS | SORT_SOUP, max_size=4).map(",".join)),
       guest=st.booleans())
async def test_random_filter_and_sort_never_500(nodes, text, sort, guest):
    for node in _need(nodes, "sqlite", "postgres"):
        headers = {} if guest else node.su
        for params in ({"filter": text}, {"sort": sort}, {"filter": text, "sort": sort}):
            res = await node.client.get("/api/collections/items/records", params=params, headers=headers)
            allowed = {200, 400, 403} if guest else {200, 400}
            assert res.status_code in allowed, (node.name, params, guest, res.status_code, res.text)
            body = res.json()
            if res.status_code != 200:
                assert body["status"] == res.status_code and body["data"] == {} and body["message"], body
            elif guest:
                assert all("secret" not in item for item in body["items"])


# -- regressions found by the properties (minimal examples) ----------------------------

def _on(nodes: dict[str, Node], backend: str) -> None:
    """These tests fail on ``backend`` only; without it they would pass vacuously."""
    if backend not in nodes:
        pytest.skip(f"{backend} is not reachable")


async def _expect(nodes: dict[str, Node], text: str, ids: list[str], collection: str = "items") -> None:
    got = {}
    for node in nodes.values():
        res = await node.client.get(f"/api/collections/{collection}/records", headers=node.su,
                                    params={"filter": text, "perPage": "1000"})
        got[node.name] = (res.status_code, sorted(r["id"] for r in res.json().get("items", [])))
    assert got == {name: (200, sorted(ids)) for name in nodes}, text


async def test_json_node_against_a_bool_on_mariadb(nodes):
    _on(nodes, "mariadb")
    await _expect(nodes, "meta.c = true", ["item00000000001"])
    await _expect(nodes, "meta.c != false", [i for i in ITEMS if i != "item00000000002"])
    await _expect(nodes, "meta = true", ["item00000000009"])


async def test_json_index_on_a_non_array(nodes):
    _on(nodes, "mariadb")
    await _expect(nodes, "meta.0 = 'just a string'", [])
    await _expect(nodes, "meta.0 = 42", [])
    await _expect(nodes, "meta.0.a = 1", [])
    await _expect(nodes, "meta.0 = 1", ["item00000000005"])


async def test_number_fields_as_text(nodes):
    await _expect(nodes, "n ~ '.0'", [])
    await _expect(nodes, "title ~ n", ["item00000000009"])
    await _expect(nodes, "cats.rank ?~ '.0'", [])


async def test_strftime_of_julian_days(nodes):
    """Bare numbers and numeric text are Julian day numbers, as SQLite (PocketBase) reads
    them, for the years 1 to 9999 (before year 1, SQLite prints negative years where the
    others give '')."""
    _on(nodes, "postgres")
    for node in nodes.values():
        if not any(c["name"] == "jdays" for c in (await node.client.get(
                "/api/collections", headers=node.su, params={"perPage": 500})).json()["items"]):
            res = await node.client.post("/api/collections", headers=node.su, json={
                "name": "jdays", "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]})
            assert res.status_code == 200, res.text
            for rid, title, n in (("jday00000000001", "2459000.5", 2460000.25), ("jday00000000002", "500000", 10)):
                res = await node.client.post("/api/collections/jdays/records", headers=node.su,
                                             json={"id": rid, "title": title, "n": n})
                assert res.status_code == 200, res.text
    first, second = "jday00000000001", "jday00000000002"
    await _expect(nodes, "strftime('%Y-%m-%d %H:%M', title) = '2020-05-31 00:00'", [first], "jdays")
    await _expect(nodes, "strftime('%Y-%m-%d %H:%M', n) = '2023-02-24 18:00'", [first], "jdays")
    await _expect(nodes, "strftime('%Y', '2459000.5') = '2020' && strftime('%m', 2459000.5) = '05'",
                  [first, second], "jdays")


async def test_case_folding_is_ascii_only(nodes):
    _on(nodes, "mariadb")
    for node in nodes.values():
        if not any(c["name"] == "folds" for c in (await node.client.get(
                "/api/collections", headers=node.su, params={"perPage": 500})).json()["items"]):
            res = await node.client.post("/api/collections", headers=node.su, json={
                "name": "folds", "fields": [{"name": "title", "type": "text"}, {"name": "meta", "type": "json"},
                                            {"name": "tags", "type": "select", "values": ["ü", "Ü"],
                                             "maxSelect": 2}]})
            assert res.status_code == 200, res.text
            for rid, title, tags in (("fold00000000001", "Ünïcode", ["ü"]), ("fold00000000002", "ünïcode", ["Ü"])):
                res = await node.client.post("/api/collections/folds/records", headers=node.su,
                                             json={"id": rid, "title": title, "meta": {"t": title}, "tags": tags})
                assert res.status_code == 200, res.text
    upper, lower = "fold00000000001", "fold00000000002"
    await _expect(nodes, "title ~ 'ünï'", [lower], "folds")
    await _expect(nodes, "title ~ 'ÜNÏ'", [], "folds")
    await _expect(nodes, "title:lower = 'ünïcode'", [lower], "folds")
    await _expect(nodes, "tags ?~ 'ü'", [upper], "folds")
    await _expect(nodes, "meta.t ~ 'Ünï'", [upper], "folds")


async def test_collection_join_keeps_relation_paths_correlated(nodes):
    # Regression (c53ee43, found by the differential property): with @collection.* in a filter,
    # relation paths lost their correlation to the record, so "x || cat.name = 'Alpha'" tested
    # ANY item's cat (every row matched) and a JSON comparison even differed by database.
    never = "@collection.cats.id = 'nope' || "
    await _expect(nodes, never + "cat.name = 'Alpha'", ["item00000000001", "item00000000006"])
    await _expect(nodes, never + "notes_via_item.body ?= 'first'", ["item00000000001"])
    # a JSON number or bool reads as text beside a text column ("42" < "Alpha"), as on SQLite
    await _expect(nodes, never + "meta ?< cats.name",
                  [f"item0000000000{n}" for n in (4, 5, 7, 9)] + ["item00000000010"])


async def test_sort_by_a_collection_field_is_not_a_500(nodes):
    for node in nodes.values():
        for headers in (node.su, {}):
            res = await node.client.get("/api/collections/items/records", headers=headers,
                                        params={"sort": "@collection.cats.name"})
            assert res.status_code in (200, 400, 403), (node.name, res.status_code)


async def test_non_superuser_sort_with_request_or_collection_is_403(nodes):
    for node in nodes.values():
        for sort, marker in (("@request.method", "@request."), ("title,@collection.cats.name", "@collection.")):
            res = await node.client.get("/api/collections/items/records", params={"sort": sort})
            assert (res.status_code, res.json()["message"]) == (403, f"Only superusers can filter by {marker}")


async def test_json_sort_order(nodes):
    _on(nodes, "postgres")
    orders = {}
    for node in nodes.values():
        for sort in ("meta.b,id", "meta.a,id", "meta,id", "-meta,id", "-meta.a,-id", "meta.arr.0,id"):
            res = await node.client.get("/api/collections/items/records", headers=node.su,
                                        params={"sort": sort, "perPage": "1000"})
            orders.setdefault(sort, {})[node.name] = [r["id"][-2:] for r in res.json()["items"]]
    assert all(len({tuple(v) for v in by_node.values()}) == 1 for by_node in orders.values()), orders


# -- SQL injection through every parameter ---------------------------------------------

PAYLOADS = [
    "' OR '1'='1", "' OR 1=1 --", '" OR ""="', "') OR ('1'='1", "1; DROP TABLE users; --",
    "'; DROP TABLE users; --", "\\'; DROP TABLE users; -- ", "' UNION SELECT id, email FROM _superusers --",
    "$$; DROP TABLE users; $$", "1) OR 1=1 #", "' OR 1=1 /*", "*/ OR 1=1 --", "%' OR '%'='", "`id`",
    "users; DELETE FROM users", "ʼ OR 1=1 --", "＇ OR 1=1 --", 'id" OR "1"="1', "\\", "0x27",
    "' || (SELECT 1) || '", "'; SELECT pg_sleep(3); --", "'; SELECT SLEEP(3); --", "1 OR 1=1",
    "title) OR (1=1", "id != '' || public = false", "public = false", "@request.auth.id = ''",
    "title'--", "title:lower--", "-title;DROP TABLE users", "*,secret", "public=false&perPage=1000",
]


async def _db_state(app: App) -> dict[str, Any]:
    """Every table with its columns and row count, straight from the database."""
    import sqlalchemy as sa

    state = {}
    async with app.db.read() as conn:
        for name in sorted(await app.db.table_names()):
            count = await conn.scalar(sa.select(sa.func.count()).select_from(sa.table(name)))
            state[name] = (sorted(await conn.column_names(name)), count)
    return state


async def test_sql_injection_through_every_parameter(client, app):
    from urllib.parse import quote

    su = client.su()
    for email in ("alice@example.com", "bob@example.com"):
        res = await client.post("/api/collections/users/records", json={
            "email": email, "password": "password-1", "passwordConfirm": "password-1"})
        assert res.status_code == 200, res.text
    res = await client.post("/api/collections", headers=su, json={
        "name": "vault", "listRule": "public = true", "viewRule": "public = true", "createRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "public", "type": "bool"},
                   {"name": "secret", "type": "text", "hidden": True}]})
    assert res.status_code == 200, res.text
    res = await client.post("/api/collections", headers=su, json={
        "name": "keyed", "listRule": "@request.query.key = 'k3y' || @request.headers.x_key = 'k3y'",
        "fields": [{"name": "title", "type": "text"}]})
    assert res.status_code == 200, res.text
    public = {"vaultpublic0001", "vaultpublic0002"}
    for rid in (*public, "vaultprivate001", "vaultprivate002"):
        res = await client.post("/api/collections/vault/records", headers=su,
                                json={"id": rid, "title": rid, "public": rid in public, "secret": "s"})
        assert res.status_code == 200, res.text
    res = await client.post("/api/collections/keyed/records", headers=su, json={"title": "k"})
    assert res.status_code == 200
    collections_before = (await client.get("/api/collections", headers=su, params={"perPage": 500})).json()
    state_before = await _db_state(app)
    assert state_before["users"][1] == 2

    async def guest_list(params: dict[str, str], headers: dict[str, Any] | None = None) -> None:
        res = await client.get("/api/collections/vault/records", params=params, headers=headers or {})
        assert res.status_code in (200, 400, 403), (params, res.status_code, res.text)
        if res.status_code == 200:
            items = res.json().get("items", [])
            assert len(items) <= len(public) and {r["id"] for r in items if "id" in r} <= public, (params, items)
            assert all("secret" not in r for r in items), (params, items)
            assert res.json().get("totalItems", 0) <= len(public)

    for payload in PAYLOADS:
        started = time.perf_counter()
        for text in (payload, f"title = {quoted(payload, chr(39))}", f"title ~ {quoted(payload, chr(34))}",
                     f"title = 'x' || {payload}", f"({payload})"):
            await guest_list({"filter": text})
        assert time.perf_counter() - started < 2.5, payload  # pg_sleep(3) / SLEEP(3) did not run
        if not payload.endswith("\\"):  # a trailing backslash cannot be quoted (it escapes the quote)
            exact = await client.get("/api/collections/vault/records", headers=su,
                                     params={"filter": f"title = {quoted(payload, chr(39))}"})
            assert exact.status_code == 200 and exact.json()["items"] == [], payload
        for key in ("sort", "fields", "page", "perPage", "skipTotal", "expand"):
            await guest_list({key: payload})
        await guest_list({"sort": f"title,{payload}"})
        await guest_list({"filter": "id != ''"}, headers={"Authorization": payload.encode()})
        # rules reading @request.* compare the payload as a value
        for params, headers in (({"key": payload}, {}), ({}, {"X-Key": payload.encode()})):
            res = await client.get("/api/collections/keyed/records", params=params, headers=headers)
            assert res.status_code == 200 and res.json()["items"] == [], payload
        # path ids and collection names
        encoded = quote(payload, safe="")
        for headers in ({}, su):
            res = await client.get(f"/api/collections/vault/records/{encoded}", headers=headers)
            assert res.status_code == 404, (payload, res.text)
            for method in ("PATCH", "DELETE"):
                res = await client.request(method, f"/api/collections/vault/records/{encoded}", headers=headers,
                                           json={"title": payload} if method == "PATCH" else None)
                # a guest meets the null update/delete rule first; "/" splits the path (no route)
                expected = 404 if headers or "/" in payload else 403
                assert res.status_code == expected, (method, payload, res.text)
            res = await client.get(f"/api/collections/{encoded}/records", headers=headers)
            assert res.status_code == 404, (payload, res.text)
        res = await client.get(f"/api/collections/{encoded}", headers=su)
        assert res.status_code == 404, (payload, res.text)
        valid = re.fullmatch(r"\w+", payload) is not None  # e.g. "0x27" is a fine name
        res = await client.post("/api/collections", headers=su, json={"name": payload, "fields": []})
        assert res.status_code == (200 if valid else 400), (payload, res.text)
        res = await client.post("/api/collections", headers=su, json={
            "name": "injected", "fields": [{"name": payload, "type": "text"}]})
        assert res.status_code == (200 if valid else 400), (payload, res.text)
        if valid:
            for name in (payload, "injected"):
                assert (await client.delete(f"/api/collections/{name}", headers=su)).status_code == 204
        # JSON body keys and values: values are stored verbatim, unknown keys ignored
        res = await client.post("/api/collections/vault/records", json={
            "title": payload, payload: payload, "public": False, "secret": payload})
        assert res.status_code == 200, (payload, res.text)
        created = res.json()
        assert created["title"] == payload and payload not in created and "secret" not in created
        stored = await client.get(f"/api/collections/vault/records/{created['id']}", headers=su)
        assert stored.json()["title"] == payload and stored.json()["secret"] == ""
        assert (await client.delete(f"/api/collections/vault/records/{created['id']}", headers=su)).status_code == 204
        res = await client.post("/api/collections/vault/records", json={"id": payload, "title": "x"})
        assert res.status_code == 400 and "id" in res.json()["data"], (payload, res.text)
        if payload in PAYLOADS[:8]:  # each sign-in attempt costs a password hash
            res = await client.post("/api/collections/users/auth-with-password",
                                    json={"identity": payload, "password": payload})
            assert res.status_code == 400 and res.json()["message"] == "Failed to authenticate."

    assert (await client.get("/api/collections", headers=su, params={"perPage": 500})).json() == collections_before
    state_after = await _db_state(app)
    # only the migration log grew (the "0x27" collection made and dropped above)
    assert state_after.pop("_migrations")[0] == state_before.pop("_migrations")[0]
    assert state_after == state_before
    users = await client.get("/api/collections/users/records", headers=su)
    assert {u["email"] for u in users.json()["items"]} == {"alice@example.com", "bob@example.com"}
