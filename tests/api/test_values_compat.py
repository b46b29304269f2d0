"""Record values, ``fields`` and ``expand`` as PocketBase answers them, on every engine.

tests/compat/test_record_values.py compares these with the PocketBase binary; this file
pins the same behaviour without it, on SQLite, PostgreSQL and MariaDB (values must also
store and read back alike on each), plus the pure functions behind it.
"""

from __future__ import annotations

from typing import Any

import pytest

from bastion.api.fields_param import go_int, parse_fields, pick_fields, tokens
from bastion.api.html_text import TooDeep, excerpt
from bastion.core.errors import BadRequest
from bastion.core.fields.formats import is_email, is_url, url_host
from bastion.core.fields.gocast import format_float, parse_float, to_bool, to_float, to_string
from bastion.core.fields.godate import parse_date
from bastion.core.records.expand import merge_expand, parse_expand

GENERIC_400 = {"data": {}, "message": "Something went wrong while processing your request.", "status": 400}


async def setup(client: Any) -> dict[str, str]:
    su = client.su()
    for body in (
        {"name": "authors", "listRule": "", "viewRule": "", "fields": [{"name": "name", "type": "text"}]},
        {"name": "locked", "fields": [{"name": "name", "type": "text"}]},
    ):
        res = await client.post("/api/collections", headers=su, json=body)
        assert res.status_code == 200, res.text
    authors = (await client.get("/api/collections/authors", headers=su)).json()
    locked = (await client.get("/api/collections/locked", headers=su)).json()
    res = await client.patch("/api/collections/authors", headers=su, json={"fields": [
        *authors["fields"], {"name": "mentor", "type": "relation", "collectionId": authors["id"]},
        {"name": "secret", "type": "relation", "collectionId": authors["id"], "hidden": True}]})
    assert res.status_code == 200, res.text
    res = await client.post("/api/collections", headers=su, json={
        "name": "vals", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [
            {"name": "t", "type": "text"}, {"name": "n", "type": "number"}, {"name": "b", "type": "bool"},
            {"name": "d", "type": "date"}, {"name": "u", "type": "url"}, {"name": "e", "type": "email"},
            {"name": "body", "type": "editor"},
            {"name": "author", "type": "relation", "collectionId": authors["id"]},
            {"name": "authors", "type": "relation", "collectionId": authors["id"], "maxSelect": 5},
            {"name": "lock", "type": "relation", "collectionId": locked["id"]},
        ]})
    assert res.status_code == 200, res.text
    ids = {"ann": "ann000000000001", "bob": "bob000000000001", "lock": "lck000000000001", "rec": "rec000000000001"}
    for path, body in (
        ("authors", {"id": ids["ann"], "name": "Ann"}),
        ("authors", {"id": ids["bob"], "name": "Bob", "mentor": ids["ann"], "secret": ids["ann"]}),
        ("locked", {"id": ids["lock"], "name": "L"}),
        ("vals", {"id": ids["rec"], "t": "hello", "body": "<p>Hello <b>world</b></p><p>again</p>",
                  "author": ids["bob"], "authors": [ids["ann"], ids["bob"]], "lock": ids["lock"]}),
    ):
        res = await client.post(f"/api/collections/{path}/records", headers=su, json=body)
        assert res.status_code == 200, res.text
    return ids


async def create(client: Any, body: dict[str, Any], form: bool = False) -> Any:
    if form:
        return await client.post("/api/collections/vals/records", files={k: (None, v) for k, v in body.items()})
    return await client.post("/api/collections/vals/records", json=body)


# -- values through the API ---------------------------------------------------------------

STORED = [  # (field, sent as JSON, stored); every one also read back from the database
    ("u", "example.com", "example.com"), ("u", "mailto:a@b.c", "mailto:a@b.c"), ("u", "ws://x.com", "ws://x.com"),
    ("e", '"a"@b.com', '"a"@b.com'), ("e", "ü@b.com", "ü@b.com"),
    ("n", "abc", 0), ("n", " 12 ", 0), ("n", "1e3", 1000), ("n", "0x1p-2", 0.25), ("n", True, 1), ("n", [1], 0),
    ("n", 1e308, 1e308), ("b", "on", False), ("b", "T", True), ("b", 2, True), ("b", {}, False),
    ("d", "not a date", ""), ("d", 1704067200, ""), ("d", "2024-01-02T10:00", ""),
    ("d", "Tue, 02 Jan 2024 10:00:00 +0200", "2024-01-02 08:00:00.000Z"), ("d", "3:04PM", "0000-01-01 15:04:00.000Z"),
    ("d", "0001-01-01 00:00:00.000Z", ""), ("d", "2024-01-02 10:00:00 +02:00", "2024-01-02 08:00:00.000Z"),
    ("t", 1e-7, "0.0000001"), ("t", ["x"], ""), ("t", {"a": 1}, ""), ("body", 100.0, "100"),
]


async def test_values_are_cast_and_stored_as_pocketbase_does(client):
    await setup(client)
    for field, sent, stored in STORED:
        res = await create(client, {field: sent})
        assert res.status_code == 200, (field, sent, res.text)
        assert res.json()[field] == stored, (field, sent)
        got = await client.get(f"/api/collections/vals/records/{res.json()['id']}")
        assert got.json()[field] == stored, (field, sent, "read back")


REFUSED = [
    ("u", "HTTP://EXAMPLE.COM", "validation_invalid_url"), ("u", " http://a.com", "validation_invalid_url"),
    ("u", "http://0.0.0.0", "validation_invalid_url"), ("u", "http://a.com/%zz", "validation_invalid_url"),
    ("e", "a..b@c.com", "validation_is_email"), ("e", '"ab"@c.com', "validation_is_email"),
    ("e", "a@b.c1", "validation_is_email"), ("e", 5, "validation_is_email"),
    ("n", "Infinity", "validation_not_a_number"),
]


async def test_values_pocketbase_refuses(client):
    await setup(client)
    for field, sent, code in REFUSED:
        res = await create(client, {field: sent})
        assert res.status_code == 400, (field, sent, res.text)
        assert res.json()["data"][field]["code"] == code, (field, sent)
    res = await create(client, {"n": "-inf"})
    assert res.json()["data"]["n"]["message"] == "The submitted number is not properly formatted."


FORM = [  # multipart form values: (field, sent, stored)
    ("n", "12", 12), ("n", "", 0), ("n", "1,5", 0), ("b", "on", False), ("b", "2", True), ("b", "1", True),
    ("d", "2024-01-02", "2024-01-02 00:00:00.000Z"), ("d", "2024-01-02T10:00", ""), ("d", "1704067200", ""),
    ("t", "12345678901234567890", "12345678901234567890"), ("t", "1.50", "1.50"), ("t", "true", "true"),
]


async def test_form_values(client):
    await setup(client)
    for field, sent, stored in FORM:
        res = await create(client, {field: sent}, form=True)
        assert res.status_code == 200, (field, sent, res.text)
        assert res.json()[field] == stored, (field, sent)


async def test_only_supported_modifiers_count(client):
    await setup(client)
    res = await create(client, {"t+": "x", "+t": "x", "d+": "2024-01-01", "b+": 1, "u-": "x", "n+": "abc"})
    assert res.status_code == 200, res.text
    assert (res.json()["t"], res.json()["d"], res.json()["b"], res.json()["n"]) == ("", "", False, 0)
    res = await create(client, {"n": "2", "n+": "5", "n-": True})
    assert res.json()["n"] == 6


async def test_url_and_email_domains_compare_exactly(client):
    su = client.su()
    res = await client.post("/api/collections", headers=su, json={"name": "doms", "createRule": "", "fields": [
        {"name": "only", "type": "url", "onlyDomains": ["Example.COM"]},
        {"name": "mail", "type": "email", "exceptDomains": ["spam.com"]}]})
    assert res.status_code == 200, res.text
    assert res.json()["fields"][1]["onlyDomains"] == ["Example.COM"]  # kept as given
    for body, code in (
        ({"only": "http://Example.COM/x"}, None), ({"only": "http://example.com"}, "validation_url_domain_not_allowed"),
        ({"only": "http://Example.COM:80"}, "validation_url_domain_not_allowed"),
        ({"only": "Example.COM"}, "validation_url_domain_not_allowed"),
        ({"mail": "a@SPAM.com"}, None), ({"mail": "a@spam.com"}, "validation_email_domain_not_allowed"),
    ):
        res = await client.post("/api/collections/doms/records", json=body)
        if code is None:
            assert res.status_code == 200, (body, res.text)
        else:
            assert res.json()["data"][next(iter(body))]["code"] == code, body


# -- fields ---------------------------------------------------------------------------------

async def test_fields_parameter(client):
    ids = await setup(client)
    view = f"/api/collections/vals/records/{ids['rec']}"
    for spec in ("body:excerpt(0)", "body:nope", "body:excerpt(5,true,1)", "id,(t", "body:excerpt('5')",
                 "body:EXCERPT(5)", "body:excerpt"):
        for path in (view, "/api/collections/vals/records"):
            res = await client.get(path, params={"fields": spec})
            assert (res.status_code, res.json()) == (400, GENERIC_400), (spec, path)
    cases = [
        ("body:excerpt(5,true)", {"body": "Hello..."}),
        ("body:excerpt(50)", {"body": "Hello world again"}),
        ("t:excerpt(2),t", {"t": "hello"}),  # the last mention of a key decides
        ("t,t:excerpt(2)", {"t": "he"}),
        ("body:excerpt(5)x", {"body": "Hello"}),  # extra words after the call are arguments
        ("id\\,t", {"t": "hello"}),
        ("expand.author.name,id", {"id": ids["rec"], "expand": {"author": {"name": "Bob"}}}),
        ("t.x,n", {"t": "hello", "n": 0}),
    ]
    for spec, want in cases:
        res = await client.get(view, params={"fields": spec, "expand": "author"})
        assert res.status_code == 200 and res.json() == want, spec
    star = (await client.get(view, params={"fields": "*:excerpt(3),t"})).json()
    assert star["body"] == "Hel" and star["t"] == "hello" and star["collectionName"] == "val"


async def test_excerpt_follows_the_html_tree(client):
    ids = await setup(client)
    view = f"/api/collections/vals/records/{ids['rec']}"
    for html, want in EXCERPTS:
        await client.patch(view, headers=client.su(), json={"t": html})
        res = await client.get(view, params={"fields": "t:excerpt(100)"})
        assert res.json() == {"t": want}, html
    deep = "<div>" * 600 + "x"
    await client.patch(view, headers=client.su(), json={"t": deep})
    whole = (await client.get(view, params={"fields": "t:excerpt(10),id"})).json()
    assert whole["t"] == deep and "body" in whole  # nothing picked, as PocketBase answers


# -- expand ---------------------------------------------------------------------------------

async def test_expand_paths(client):
    ids = await setup(client)
    view = f"/api/collections/vals/records/{ids['rec']}"

    async def expanded(spec: str, headers: dict[str, str] | None = None) -> Any:
        res = await client.get(view, headers=headers, params={"expand": spec, "fields": "expand"})
        assert res.status_code == 200, res.text
        return res.json().get("expand")

    assert (await expanded("author"))["author"]["name"] == "Bob"
    for failing in ("author.nonexistent", "author.name", "author,author.nope", "author..mentor", "lock",
                    "author.lock", "nope_via_author"):
        assert await expanded(failing) is None, failing  # the whole path adds nothing
    assert (await expanded(".author.,nope"))["author"]["id"] == ids["bob"]
    both = await expanded("author.mentor,author.vals_via_author")
    assert both["author"]["expand"]["mentor"]["name"] == "Ann"
    assert [r["id"] for r in both["author"]["expand"]["vals_via_author"]] == [ids["rec"]]
    mentor = (await expanded("author.mentor.mentor"))["author"]["expand"]["mentor"]
    assert mentor["expand"] == {}  # reached, nothing to show
    deep = await expanded("author.mentor.mentor.mentor.mentor.mentor.mentor.mentor.mentor")
    assert deep["author"]["expand"]["mentor"]["name"] == "Ann"  # levels past six are ignored
    assert (await expanded("lock", client.su()))["lock"]["name"] == "L"
    # A hidden relation leads nowhere for others than superusers (PocketBase expands it).
    bob = f"/api/collections/authors/records/{ids['bob']}"
    guest = (await client.get(bob, params={"expand": "secret"})).json()
    assert guest["expand"] == {} and "secret" not in guest
    ann = f"/api/collections/authors/records/{ids['ann']}"
    guest = (await client.get(ann, params={"expand": "authors_via_secret"})).json()
    assert guest["expand"] == {}
    su = (await client.get(ann, headers=client.su(), params={"expand": "authors_via_secret"})).json()
    assert [r["id"] for r in su["expand"]["authors_via_secret"]] == [ids["bob"]]


# -- the functions behind it ----------------------------------------------------------------

EXCERPTS = [
    ("<b>Hel</b>lo", "Hello"), ("<p>a</p><p>b</p>", "a b"), ("a<br>b", "ab"), ("a&nbsp;b", "a\u00a0b"),
    ("a &amp; b", "a & b"), ("<div>x<span>y</span>z</div>", "xyz"), ("a</div>b", "ab"), ("a</p>b", "a b"),
    ("<script>x</script>y", "y"), ("<title>T</title>Hello", "Hello"), ("Hello<title>T</title>", "Hello T"),
    ("<select><table></select>y", ""), ("x<table>y<tr><td>z</td></tr></table>w", "xy z w"),
    ("a<b>b<p>c</b>d", "ab cd"), ("a < b > c", "a < b > c"), ("a<b", "a"), ("<p title='a>b'>c</p>", "c"),
    ("<xmp><b>x</b></xmp>y", "<b>x</b> y"), ("<frameset>f</frameset>", ""), ("&notit;", "¬it;"),
]


@pytest.mark.parametrize(("html", "want"), EXCERPTS)
def test_excerpt_function(html, want):
    assert excerpt(html, 100, False) == want


def test_excerpt_limits():
    assert excerpt("<p>Hello world</p>", 5, True) == "Hello..."
    assert excerpt("<p>Hello world</p>", 6, True) == "Hello..."  # trimmed after the cut
    assert excerpt("ééééé", 5, True) == "ééééé"
    # Past the limit (in bytes) the walk stops descending, so multibyte text can end early.
    assert excerpt("<p>éééééé</p><p><b>x</b>yz</p>", 8, True) == "éééééé"
    with pytest.raises(TooDeep):
        excerpt("<div>" * 520, 5, False)


def test_fields_tokens_and_modifiers():
    assert tokens(" a , (b,c) ,'d,e', ,f\\,g") == ["a", "(b,c)", "'d,e'", "f\\", "g"]
    assert tokens("a\x00,b") == ["a"]
    for bad in ("a(", "'a", "a:excerpt", "a:excerpt(0)", "a:foo(1)", "a:excerpt(1,2,3)"):
        with pytest.raises(BadRequest):
            parse_fields(bad)
    assert [go_int(t) for t in ("5", "05", "0x5", "+5", "5.9", "1e1", "08", "1_0", "99999999999999999999")] == \
        [5, 5, 5, 5, 5, 0, 0, 10, 0]
    data = {"a": {"b": 1, "c": 2}, "d": "<i>x</i>y", "e": [{"f": 1, "g": 2}]}
    assert pick_fields(data, "a.b,d:excerpt(9),e.g") == {"a": {"b": 1}, "d": "xy", "e": [{"g": 2}]}
    assert pick_fields(data, "*,a.c") == {"a": {"c": 2}, "d": "<i>x</i>y", "e": [{"f": 1, "g": 2}]}
    assert pick_fields({"page": 1, "items": [{"x": 1, "y": 2}]}, "x") == {"page": 1, "items": [{"x": 1}]}


@pytest.mark.parametrize(("text", "want"), [
    ("12", 12.0), (" 12", None), ("1_000", 1000.0), ("1__0", None), ("0x1p-2", 0.25), ("0x10", None),
    ("inf", float("inf")), ("+nan", None), ("1e400", None), ("1e-400", 0.0), (".5", 0.5), ("5.", 5.0),
    ("١٢", None), ("", None),
])
def test_go_float_syntax(text, want):
    assert parse_float(text) == want


def test_casts():
    assert [to_bool(v) for v in ("1", "t", "TRUE", "True", "on", "yes", " true", 2, 0, 0.5, [], None)] == \
        [True, True, True, True, False, False, False, True, False, True, False, False]
    assert [to_float(v) for v in (True, "abc", [], None, "7")] == [1.0, 0.0, 0.0, 0.0, 7.0]
    assert [to_string(v) for v in (1e-7, -0.0, 1e21, 12345678901234567890, [], {}, None, False)] == \
        ["0.0000001", "-0", "1000000000000000000000", "12345678901234567890", "", "", "", "false"]
    assert format_float(100.0) == "100"


@pytest.mark.parametrize(("text", "want"), [
    ("2024-01-02", "2024-01-02 00:00:00.000Z"), ("2024-01-02 10:00:00.123456Z", "2024-01-02 10:00:00.123Z"),
    ("2024-01-02T10:00:00,5Z", "2024-01-02 10:00:00.500Z"), ("2024-01-02T23:30:00-01:00", "2024-01-03 00:30:00.000Z"),
    ("2024-01-02  10:00:00", "2024-01-02 10:00:00.000Z"), ("Tue, 02 Jan 2024 10:00:00 EST", "2024-01-02 10:00:00.000Z"),
    ("Tue, 02 Jan 2024 10:00:00 GMT+3", "2024-01-02 13:00:00.000Z"),
    ("02 Jan 24 10:00 +0100", "2024-01-02 09:00:00.000Z"),
    ("Monday, 02-Jan-06 15:04:05 MST", "2006-01-02 15:04:05.000Z"),
    ("Mon Jan 02 15:04:05 -0700 2006", "2006-01-02 22:04:05.000Z"),
    ("Jan  2 15:04:05.000", "0000-01-02 15:04:05.000Z"), ("12:00AM", "0000-01-01 00:00:00.000Z"),
    ("0001-01-01T00:00:00+01:00", "0000-12-31 23:00:00.000Z"),
    ("9999-12-31T23:00:00-05:00", "10000-01-01 04:00:00.000Z"),
    ("2023-02-29", ""), ("2024-01-02T10:00", ""), ("x", ""), ("", ""),
])
def test_go_dates(text, want):
    assert parse_date(text) == want


@pytest.mark.parametrize(("text", "ok"), [
    ("example.com", True), ("mailto:a@b.c", True), ("http://[::1]:80/x", True), ("a.com:80", True),
    ("HTTP://A.COM", False), ("http://a.com:1:2", False), ("http://[::ffff:1.2.3.04]", False),
    ("http://" + "a" * 3000 + "!", False), ("", False),
])
def test_urls(text, ok):
    assert is_url(text) is ok


def test_url_hosts_and_emails():
    assert [url_host(u) for u in ("http://a.com:8080/x", "a.com", "mailto:x@a.com", "http://u@h.io")] == \
        ["a.com:8080", "", "", "h.io"]
    assert [is_email(e) for e in ('"a"@b.co', '"ab"@b.co', "a@b.co.", "a" * 5000 + "@" + "b." * 500 + "!")] == \
        [True, False, True, False]


def test_expand_paths_parsing_and_merging():
    assert parse_expand(" a . b ,a,.c.,, a.b ") == ["a.b", "c"]
    mine: dict[str, Any] = {"id": "x", "expand": {"k": {"id": "1"}}}
    merge_expand(mine, {"k": {"id": "1", "expand": {"z": {"id": "9"}}}, "j": [{"id": "2"}]})
    assert mine == {"id": "x", "expand": {"k": {"id": "1", "expand": {"z": {"id": "9"}}}, "j": [{"id": "2"}]}}


async def test_a_non_text_id_is_cast_not_stored(client):
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "ids", "createRule": "", "fields": [{"name": "title", "type": "text"}]})
    assert res.status_code == 200, res.text
    made = await client.post("/api/collections/ids/records", json={"id": [None, [], {}], "title": "x"})
    assert made.status_code == 200, made.text  # a list reads as "" and a new id is made, as in PocketBase
    assert len(made.json()["id"]) == 15
