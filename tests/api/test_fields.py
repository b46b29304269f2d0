"""Record values of every field type through the HTTP API, on every database.

Covers the storage round trip (exact JSON values and types), zero values, value
validation (PocketBase codes, 400 never 500, nothing written on failure), password
fields, the ``+``/``-`` modifiers and relation delete behaviour. Collection option
validation lives in ``test_field_options.py``.

Each test pays for a fresh app and database per backend (~1 s on PostgreSQL), so the
case tables below are looped over inside a few tests instead of one test per row; a
failing row names itself in the assertion message.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from bastion.core.auth.passwords import verify_password

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$")
SYSTEM_KEYS = {"collectionId", "collectionName", "id"}


# -- helpers ---------------------------------------------------------------------------

async def new_collection(client: Any, name: str, fields: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    res = await client.post(
        "/api/collections", json={"name": name, "type": "base", "fields": fields, **extra}, headers=client.su()
    )
    assert res.status_code == 200, res.text
    return res.json()


async def create(client: Any, col: str, body: dict[str, Any]) -> Any:
    return await client.post(f"/api/collections/{col}/records", json=body, headers=client.su())


async def update(client: Any, col: str, rid: str, body: dict[str, Any]) -> Any:
    return await client.patch(f"/api/collections/{col}/records/{rid}", json=body, headers=client.su())


async def get(client: Any, col: str, rid: str) -> dict[str, Any]:
    res = await client.get(f"/api/collections/{col}/records/{rid}", headers=client.su())
    assert res.status_code == 200, res.text
    return res.json()


async def ok(client: Any, col: str, body: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
    res = await (create(client, col, body) if rid is None else update(client, col, rid, body))
    assert res.status_code == 200, f"{body!r}: {res.text}"
    return res.json()


async def listing(client: Any, col: str) -> dict[str, Any]:
    res = await client.get(f"/api/collections/{col}/records", params={"perPage": 500}, headers=client.su())
    assert res.status_code == 200, res.text
    return res.json()


def canon(value: Any) -> str:
    """JSON text that tells ``true`` from ``1``, ``"1"`` from ``1`` and ``null`` from ``""``,
    but not ``1`` from ``1.0`` (the same JSON number to a client)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    return json.dumps(norm(value), sort_keys=True)


def assert_same(actual: Any, expected: Any, what: str) -> None:
    assert canon(actual) == canon(expected), f"{what}: got {actual!r}, want {expected!r}"


def assert_validation(res: Any, message: str, expected: dict[str, str], what: str) -> None:
    """A PocketBase validation error: 400, ``message`` and exactly ``expected`` field codes."""
    assert res.status_code == 400, f"{what}: {res.status_code} {res.text}"
    body = res.json()
    assert body["status"] == 400 and body["message"] == message, f"{what}: {body}"
    data = body["data"]
    assert {k: v.get("code") for k, v in data.items()} == expected, f"{what}: {data}"
    for leaf in data.values():
        assert isinstance(leaf["message"], str) and leaf["message"][:1].isupper(), leaf
        assert leaf["message"].endswith((".", "?", "!")), leaf


async def target_records(client: Any, n: int, name: str = "targets") -> tuple[str, list[str]]:
    """A collection ``name`` with ``n`` records; returns (collection id, record ids)."""
    col = await new_collection(client, name, [{"name": "label", "type": "text"}])
    ids = [(await ok(client, name, {"label": f"t{i}"}))["id"] for i in range(n)]
    return col["id"], ids


# -- storage round trip ----------------------------------------------------------------

def all_types(target_id: str) -> list[dict[str, Any]]:
    return [
        {"name": "title", "type": "text"},
        {"name": "body", "type": "editor"},
        {"name": "count", "type": "number"},
        {"name": "flag", "type": "bool"},
        {"name": "mail", "type": "email"},
        {"name": "site", "type": "url"},
        {"name": "day", "type": "date"},
        {"name": "status", "type": "select", "values": ["draft", "published", "archived"], "maxSelect": 1},
        {"name": "tags", "type": "select", "values": ["a", "b", "c", "d"], "maxSelect": 4},
        {"name": "meta", "type": "json"},
        {"name": "place", "type": "geoPoint"},
        {"name": "cover", "type": "file", "maxSelect": 1},
        {"name": "docs", "type": "file", "maxSelect": 5},
        {"name": "owner", "type": "relation", "collectionId": target_id, "maxSelect": 1},
        {"name": "refs", "type": "relation", "collectionId": target_id, "maxSelect": 10},
        {"name": "created", "type": "autodate", "onCreate": True},
        {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
    ]


ZERO = {
    "title": "", "body": "", "count": 0, "flag": False, "mail": "", "site": "", "day": "",
    "status": "", "tags": [], "meta": None, "place": {"lon": 0, "lat": 0}, "cover": "", "docs": [],
    "owner": "", "refs": [],
}


async def test_round_trip_every_type(client):
    tid, (t1, t2) = await target_records(client, 2)
    col = await new_collection(client, "items", all_types(tid))
    created_in = {
        "title": "Hello ✓", "body": "<p>Hi <b>there</b></p>", "count": 42.5, "flag": True,
        "mail": "a@example.com", "site": "https://example.com/x?y=1", "day": "2024-05-06T07:08:09.123Z",
        "status": "published", "tags": ["b", "a"], "meta": {"k": [1, 2.5, {"x": None}], "s": "v"},
        "place": {"lon": 12.5, "lat": -45.25}, "cover": "", "docs": [],  # files come by upload: tests/files
        "owner": t1, "refs": [t2, t1],
        "unknownKey": "ignored", "collectionName": "nope", "expand": {"x": 1},
    }
    created_out = {
        **{k: v for k, v in created_in.items() if k in ZERO}, "day": "2024-05-06 07:08:09.123Z",
    }
    rec = await ok(client, "items", created_in)
    assert set(rec) == SYSTEM_KEYS | set(ZERO) | {"created", "updated"}
    assert rec["collectionId"] == col["id"] and rec["collectionName"] == "items"
    assert re.fullmatch(r"[a-z0-9]{15}", rec["id"])
    assert DATE_RE.match(rec["created"]) and rec["updated"] == rec["created"]
    fetched = await get(client, "items", rec["id"])
    assert fetched == rec
    for name, want in created_out.items():
        assert_same(fetched[name], want, f"create {name}")
    assert type(fetched["count"]) is float and type(fetched["flag"]) is bool

    updated_in = {
        "title": "", "body": "", "count": 7, "flag": False, "mail": "b@example.org", "site": "",
        "day": "2030-12-31 23:59:59Z", "status": "", "tags": [], "meta": "just text",
        "place": {"lon": -180, "lat": 90}, "cover": "", "docs": [], "owner": "", "refs": [t2],
        "created": "2000-01-01 00:00:00.000Z", "updated": "2000-01-01 00:00:00.000Z",
    }
    updated_out = {**{k: v for k, v in updated_in.items() if k in ZERO}, "day": "2030-12-31 23:59:59.000Z"}
    rec2 = await ok(client, "items", updated_in, rec["id"])
    assert rec2 == await get(client, "items", rec["id"])
    for name, want in updated_out.items():
        assert_same(rec2[name], want, f"update {name}")
    assert type(rec2["count"]) is int, "whole numbers are JSON integers"
    assert rec2["created"] == rec["created"], "autodate onCreate ignores input and keeps its value"
    assert DATE_RE.match(rec2["updated"]) and rec2["updated"] >= rec["updated"]

    # A partial update leaves every other value alone.
    rec3 = await ok(client, "items", {"title": "only this"}, rec["id"])
    assert {k: v for k, v in rec3.items() if k not in ("title", "updated")} == {
        k: v for k, v in rec2.items() if k not in ("title", "updated")
    }

    page = await listing(client, "items")
    assert page["totalItems"] == 1 and page["items"] == [await get(client, "items", rec["id"])]


async def test_zero_values_and_unset_fields_skip_constraints(client):
    """Unset values are the zero values and are exempt from every option but ``required``."""
    tid, _ = await target_records(client, 0)
    fields = all_types(tid)
    constrained = {
        "title": {"min": 3, "pattern": "^[a-z]+$"},
        "count": {"min": 5, "max": 10, "onlyInt": True},
        "mail": {"onlyDomains": ["example.com"]},
        "site": {"onlyDomains": ["example.com"]},
        "day": {"min": "2020-01-01 00:00:00.000Z", "max": "2030-01-01 00:00:00.000Z"},
        "refs": {"minSelect": 2, "maxSelect": 3},
        "meta": {"maxSize": 10},
    }
    for f in fields:
        f.update(constrained.get(f["name"], {}))
    await new_collection(client, "zeros", fields)

    empty = await ok(client, "zeros", {})
    for name, want in ZERO.items():
        assert_same(empty[name], want, f"unset {name}")
    assert DATE_RE.match(empty["created"]) and DATE_RE.match(empty["updated"])

    explicit = await ok(client, "zeros", {**ZERO, "place": None, "tags": None, "refs": None})
    for name, want in ZERO.items():
        assert_same(explicit[name], want, f"explicit zero {name}")

    page = await listing(client, "zeros")
    assert page["totalItems"] == 2
    for item in page["items"]:
        for name, want in ZERO.items():
            assert_same(item[name], want, f"listed {name}")


# How submitted values are coerced and stored: (field, input, output) applied as updates.
NORMALIZATION = [
    ("title", 123, "123"), ("title", 1.5, "1.5"), ("title", True, "true"), ("title", None, ""),
    ("title", "  kept  ", "  kept  "),
    ("count", "12", 12), ("count", "-1.5", -1.5), ("count", 0, 0), ("count", None, 0), ("count", "", 0),
    ("count", -0.25, -0.25), ("count", 9007199254740991, 9007199254740991),
    ("flag", "true", True), ("flag", "false", False), ("flag", 1, True), ("flag", 0, False),
    ("flag", True, True), ("flag", None, False), ("flag", "", False),
    ("day", "2024-01-02", "2024-01-02 00:00:00.000Z"),
    ("day", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05.000Z"),
    ("day", "2024-01-02T05:04:05+02:00", "2024-01-02 03:04:05.000Z"),
    ("day", "2024-01-02 03:04:05.123456Z", "2024-01-02 03:04:05.123Z"),
    ("day", "2024-01-02 03:04:05.1Z", "2024-01-02 03:04:05.100Z"),
    ("day", "", ""), ("day", None, ""),
    ("meta", None, None), ("meta", {}, {}), ("meta", [], []), ("meta", "abc", "abc"), ("meta", "", ""),
    ("meta", '{"a":1}', {"a": 1}), ("meta", "[1,2]", [1, 2]), ("meta", "null", None),
    ("meta", "true", True), ("meta", False, False), ("meta", [0, 2.5], [0, 2.5]),
    ("meta", 0, 0), ("meta", 2.5, 2.5), ("meta", -7, -7), ("meta", "12", 12), ("meta", "-1.5", -1.5),
    ("meta", 1e20, 1e20),
    ("meta", [None, "x", {"y": [True]}], [None, "x", {"y": [True]}]),
    ("meta", {"deep": {"er": {"est": [1, {"z": None}]}}}, {"deep": {"er": {"est": [1, {"z": None}]}}}),
    ("status", "draft", "draft"), ("status", ["draft"], "draft"), ("status", None, ""), ("status", [], ""),
    ("tags", "a", ["a"]), ("tags", ["c", "a", "c"], ["c", "a"]), ("tags", [], []), ("tags", None, []),
    ("tags", "", []),
    ("docs", [], []), ("docs", "", []), ("docs", None, []),
    ("place", {"lon": 1, "lat": 2}, {"lon": 1, "lat": 2}),
    ("place", {"lat": 5.5}, {"lon": 0, "lat": 5.5}),
    ("place", '{"lon":3.25,"lat":-4}', {"lon": 3.25, "lat": -4}),
    ("place", None, {"lon": 0, "lat": 0}),
    ("mail", "x.y+z@sub.example.com", "x.y+z@sub.example.com"),
    ("site", "http://localhost:8090/a", "http://localhost:8090/a"),
]


async def test_values_are_normalized(client):
    tid, (t1, t2) = await target_records(client, 2)
    await new_collection(client, "norm", all_types(tid))
    rid = (await ok(client, "norm", {}))["id"]
    for name, raw, want in NORMALIZATION:
        rec = await ok(client, "norm", {name: raw}, rid)
        assert_same(rec[name], want, f"{name}={raw!r}")
        assert_same((await get(client, "norm", rid))[name], want, f"{name}={raw!r} read back")
    # The same coercions apply on create.
    for name, raw, want in NORMALIZATION[::5]:
        assert_same((await ok(client, "norm", {name: raw}))[name], want, f"create {name}={raw!r}")
    # PocketBase keeps the last item when a list is sent to a single select or relation.
    rec = await ok(client, "norm", {"status": ["draft", "archived"], "owner": [t1, t2]})
    assert rec["status"] == "archived" and rec["owner"] == t2


# -- validation ------------------------------------------------------------------------

def constrained_fields(target_id: str) -> list[dict[str, Any]]:
    return [
        {"name": "short", "type": "text", "min": 3, "max": 5},
        {"name": "slug", "type": "text", "pattern": "^[a-z]+$"},
        {"name": "plain", "type": "text"},
        {"name": "html", "type": "editor", "maxSize": 10},
        {"name": "score", "type": "number", "min": 1, "max": 10},
        {"name": "whole", "type": "number", "onlyInt": True},
        {"name": "flag", "type": "bool"},
        {"name": "mail", "type": "email", "exceptDomains": ["spam.com"]},
        {"name": "work", "type": "email", "onlyDomains": ["corp.com"]},
        {"name": "site", "type": "url", "onlyDomains": ["example.com"]},
        {"name": "link", "type": "url", "exceptDomains": ["evil.com"]},
        {"name": "day", "type": "date", "min": "2020-01-01 00:00:00.000Z", "max": "2030-01-01 00:00:00.000Z"},
        {"name": "status", "type": "select", "values": ["a", "b", "c"], "maxSelect": 1},
        {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2},
        {"name": "meta", "type": "json", "maxSize": 20},
        {"name": "place", "type": "geoPoint"},
        {"name": "docs", "type": "file", "maxSelect": 2},
        {"name": "owner", "type": "relation", "collectionId": target_id, "maxSelect": 1},
        {"name": "refs", "type": "relation", "collectionId": target_id, "minSelect": 2, "maxSelect": 3},
    ]


# (body, {field: code}) — each body is invalid for exactly the listed fields.
INVALID = [
    ({"short": "ab"}, {"short": "validation_min_text_constraint"}),
    ({"short": "éé"}, {"short": "validation_min_text_constraint"}),  # counted in characters
    ({"short": "abcdef"}, {"short": "validation_max_text_constraint"}),
    ({"plain": "x" * 5001}, {"plain": "validation_max_text_constraint"}),  # max 0 means 5000
    ({"slug": "abc1"}, {"slug": "validation_invalid_format"}),
    ({"html": "<p>toolong</p>"}, {"html": "validation_content_size_limit"}),
    ({"score": 0.5}, {"score": "validation_min_number_constraint"}),
    ({"score": -3}, {"score": "validation_min_number_constraint"}),
    ({"score": 10.01}, {"score": "validation_max_number_constraint"}),
    ({"whole": 1.5}, {"whole": "validation_only_int_constraint"}),
    ({"mail": "not-an-email"}, {"mail": "validation_is_email"}),
    ({"mail": "x@spam.com"}, {"mail": "validation_email_domain_not_allowed"}),
    ({"work": "x@other.com"}, {"work": "validation_email_domain_not_allowed"}),
    ({"site": "not a url"}, {"site": "validation_invalid_url"}),
    ({"site": "https://other.com/x"}, {"site": "validation_url_domain_not_allowed"}),
    ({"link": "https://evil.com"}, {"link": "validation_url_domain_not_allowed"}),
    ({"day": "2019-12-31 23:59:59.999Z"}, {"day": "validation_min_greater_equal_than_required"}),
    ({"day": "2030-01-01 00:00:00.001Z"}, {"day": "validation_max_less_equal_than_required"}),
    ({"status": "z"}, {"status": "validation_invalid_value"}),
    ({"tags": ["a", "b", "c"]}, {"tags": "validation_too_many_values"}),
    ({"tags": ["a", "zz"]}, {"tags": "validation_invalid_value"}),
    ({"meta": {"key": "x" * 30}}, {"meta": "validation_json_size_limit"}),
    ({"place": {"lon": 10, "lat": 90.5}}, {"place": "validation_invalid_latitude"}),
    ({"place": {"lon": -180.5, "lat": 0}}, {"place": "validation_invalid_longitude"}),
    # A name the record does not hold is refused before the count is checked (as PocketBase).
    ({"docs": ["a.txt", "b.txt", "c.txt"]}, {"docs": "validation_invalid_file"}),
    ({"docs": ["nonexistent.png"]}, {"docs": "validation_invalid_file"}),
    ({"owner": "missing00000000"}, {"owner": "validation_missing_rel_records"}),
    ({"refs": ["missing00000000"]}, {"refs": "validation_not_enough_values"}),
    ({"refs": ["r1aaaaaaaaaaaaa", "r2aaaaaaaaaaaaa", "r3aaaaaaaaaaaaa", "r4aaaaaaaaaaaaa"]},
     {"refs": "validation_too_many_values"}),
    ({"refs": ["missing00000001", "missing00000002"]}, {"refs": "validation_missing_rel_records"}),
    # Wrong JSON types are validation errors (400), never server errors. (Text, number,
    # bool and date fields cast whatever they get, as PocketBase does: see
    # tests/api/test_values_compat.py.)
    ({"score": "Infinity"}, {"score": "validation_not_a_number"}),
    ({"mail": 5}, {"mail": "validation_is_email"}),
    ({"status": 5}, {"status": "validation_invalid_value"}),
    ({"tags": [1, 2]}, {"tags": "validation_invalid_value"}),
    ({"owner": {"id": "x"}}, {"owner": "validation_invalid_value"}),
    ({"place": "abc"}, {"place": "validation_invalid_value"}),
    ({"place": [1, 2]}, {"place": "validation_invalid_value"}),
    ({"place": {"lon": "x", "lat": 1}}, {"place": "validation_invalid_value"}),
    # Every invalid field is reported at once; valid ones are not.
    ({"short": "a", "score": 99, "status": "z", "plain": "fine"},
     {"short": "validation_min_text_constraint", "score": "validation_max_number_constraint",
      "status": "validation_invalid_value"}),
]

VALID = {
    "short": "abcd", "slug": "abc", "html": "<p>ok</p>", "score": 10, "whole": -4, "flag": True,
    "mail": "x@ok.com", "work": "x@corp.com", "site": "https://example.com", "link": "https://good.com",
    "day": "2030-01-01 00:00:00.000Z", "status": "c", "tags": ["a", "c"], "meta": {"k": 1},
    "place": {"lon": 180, "lat": -90},
}


async def test_invalid_values_are_rejected_and_nothing_is_written(client):
    tid, (t1, t2) = await target_records(client, 2)
    await new_collection(client, "checked", constrained_fields(tid))
    for body, codes in INVALID:
        res = await create(client, "checked", body)
        assert_validation(res, "Failed to create record.", codes, f"create {body!r}")
    assert (await listing(client, "checked"))["totalItems"] == 0

    rec = await ok(client, "checked", {**VALID, "owner": t1, "refs": [t1, t2]})
    for body, codes in INVALID:
        res = await update(client, "checked", rec["id"], body)
        assert_validation(res, "Failed to update record.", codes, f"update {body!r}")
    # A failed update changes nothing, not even the fields that were valid.
    assert await get(client, "checked", rec["id"]) == rec
    page = await listing(client, "checked")
    assert page["totalItems"] == 1 and page["items"] == [rec]


FILES = ("cover", "docs")  # a required file field is tested with uploads (tests/files)


def required_fields(target_id: str) -> list[dict[str, Any]]:
    fields = [f for f in all_types(target_id) if f["type"] != "autodate" and f["name"] not in FILES]
    return [{**f, "required": True} for f in fields]


async def test_required_rejects_zero_values(client):
    tid, (t1,) = await target_records(client, 1)
    await new_collection(client, "needed", required_fields(tid))
    blank = {"code": "validation_required", "message": "Cannot be blank."}

    needed = {k: v for k, v in ZERO.items() if k not in FILES}
    res = await create(client, "needed", {})
    assert_validation(res, "Failed to create record.", {k: "validation_required" for k in needed}, "empty body")
    assert all(leaf == blank for leaf in res.json()["data"].values())

    res = await create(client, "needed", ZERO)
    assert_validation(res, "Failed to create record.", {k: "validation_required" for k in needed}, "zero values")

    good = {
        "title": "t", "body": "b", "count": -1, "flag": True, "mail": "a@b.co", "site": "https://a.co",
        "day": "2024-01-01", "status": "draft", "tags": ["a"], "meta": 0, "place": {"lon": 0, "lat": 0.1},
        "owner": t1, "refs": [t1],
    }
    for name, zero in [("flag", False), ("meta", ""), ("meta", []), ("meta", {}), ("meta", "null"),
                       ("meta", '""'), ("count", "0"), ("tags", ""), ("refs", None)]:
        res = await create(client, "needed", {**good, name: zero})
        assert_validation(res, "Failed to create record.", {name: "validation_required"}, f"{name}={zero!r}")
    assert (await listing(client, "needed"))["totalItems"] == 0

    rec = await ok(client, "needed", good)
    assert rec["meta"] == 0 and type(rec["meta"]) is int and rec["flag"] is True
    res = await update(client, "needed", rec["id"], {"title": "", "place": {"lon": 0, "lat": 0}})
    assert_validation(
        res, "Failed to update record.", {"title": "validation_required", "place": "validation_required"}, "update"
    )
    assert await get(client, "needed", rec["id"]) == rec


# -- password fields -------------------------------------------------------------------

async def stored_columns(app: Any, col_name: str, rid: str, *names: str) -> dict[str, Any]:
    """Raw column values, read past the API (which never shows password hashes)."""
    table = app.registry.table(app.registry.find(col_name))
    async with app.db.read() as conn:
        row = await conn.fetch_one(sa.select(*(table.c[n] for n in names)).where(table.c.id == rid))
    assert row is not None
    return dict(row)


async def test_password_field_is_hashed_and_never_returned(client, app):
    await new_collection(client, "vault", [
        {"name": "label", "type": "text"},
        {"name": "password", "type": "password", "required": True, "min": 8, "pattern": "[0-9]"},
        {"name": "pin", "type": "password", "max": 6},  # any name, and more than one per collection
    ])
    cases = [
        ({"password": "short1"}, {"password": "validation_min_text_constraint"}),
        ({"password": "no-digits-here"}, {"password": "validation_invalid_format"}),
        ({"password": "1" * 72}, {"password": "validation_max_text_constraint"}),  # max 0 means 71
        ({"label": "x"}, {"password": "validation_required"}),
        ({"password": ""}, {"password": "validation_required"}),
        ({"password": {"x": 1}}, {"password": "validation_invalid_value"}),
        ({"password": "longenough1", "pin": "p#42xyz"}, {"pin": "validation_max_text_constraint"}),
    ]
    for body, codes in cases:
        assert_validation(await create(client, "vault", body), "Failed to create record.", codes, repr(body))
    assert (await listing(client, "vault"))["totalItems"] == 0

    res = await create(client, "vault", {"label": "x", "password": "longenough1", "pin": "p#42x"})
    assert res.status_code == 200, res.text
    rid = res.json()["id"]
    view = await client.get(f"/api/collections/vault/records/{rid}", headers=client.su())
    page = await client.get("/api/collections/vault/records", headers=client.su())
    for r, rec in ((res, res.json()), (view, view.json()), (page, page.json()["items"][0])):
        assert r.status_code == 200
        for secret in ("longenough1", "p#42x", "$argon2", "$2"):
            assert secret not in r.text
        assert rec.get("password", "") == "" and rec.get("pin", "") == "", "passwords are never returned"

    first = (await stored_columns(app, "vault", rid, "password"))["password"]
    assert first != "longenough1" and await verify_password(first, "longenough1")
    pin = (await stored_columns(app, "vault", rid, "pin"))["pin"]
    assert await verify_password(pin, "p#42x")

    # Updating other fields, or sending an empty password, keeps the hash.
    await ok(client, "vault", {"label": "y"}, rid)
    await ok(client, "vault", {"password": ""}, rid)
    assert (await stored_columns(app, "vault", rid, "password"))["password"] == first

    res = await update(client, "vault", rid, {"password": "other-pass-2"})
    assert res.status_code == 200 and "other-pass-2" not in res.text
    second = (await stored_columns(app, "vault", rid, "password"))["password"]
    assert await verify_password(second, "other-pass-2") and not await verify_password(second, "longenough1")
    assert (await stored_columns(app, "vault", rid, "pin"))["pin"] == pin, "other password fields are kept"

    res = await update(client, "vault", rid, {"password": "bad"})
    assert_validation(res, "Failed to update record.", {"password": "validation_min_text_constraint"}, "update")
    assert (await stored_columns(app, "vault", rid, "password"))["password"] == second


# -- modifiers -------------------------------------------------------------------------

async def test_number_modifiers(client):
    await new_collection(client, "counters", [
        {"name": "n", "type": "number", "max": 100},
        {"name": "label", "type": "text"},
    ])
    assert (await ok(client, "counters", {"n+": 4}))["n"] == 4
    assert (await ok(client, "counters", {"n-": 4}))["n"] == -4
    assert (await ok(client, "counters", {"n": 10, "n+": 5}))["n"] == 15
    rid = (await ok(client, "counters", {"n": 5}))["id"]
    steps = [
        ({"n+": 3}, 8), ({"n-": 10}, -2), ({"n+": 1.5}, -0.5), ({"n-": -0.5}, 0),
        ({"n": 10, "n+": 2}, 12), ({"n": 10, "n-": 2}, 8), ({"n+": "2"}, 10), ({"n+": 0}, 10),
        ({"label": "x"}, 10),
    ]
    for body, want in steps:
        rec = await ok(client, "counters", body, rid)
        assert_same(rec["n"], want, repr(body))
    res = await update(client, "counters", rid, {"n+": 91})
    assert_validation(res, "Failed to update record.", {"n": "validation_max_number_constraint"}, "n+ over max")
    # As in PocketBase, what does not read as a number counts as 0.
    assert (await ok(client, "counters", {"n-": "abc"}, rid))["n"] == 10
    res = await update(client, "counters", rid, {"n-": "-inf"})
    assert_validation(res, "Failed to update record.", {"n": "validation_not_a_number"}, "n- infinite")
    assert (await get(client, "counters", rid))["n"] == 10


async def test_select_modifiers(client):
    await new_collection(client, "labels", [
        {"name": "tags", "type": "select", "values": ["a", "b", "c", "d"], "maxSelect": 3},
        {"name": "status", "type": "select", "values": ["a", "b", "c"], "maxSelect": 1},
    ])
    assert (await ok(client, "labels", {"tags+": ["a", "b"]}))["tags"] == ["a", "b"]
    assert (await ok(client, "labels", {"+tags": "c", "tags": ["a"]}))["tags"] == ["c", "a"]
    assert (await ok(client, "labels", {"tags-": "a"}))["tags"] == []
    rid = (await ok(client, "labels", {"tags": ["a"], "status": "a"}))["id"]
    steps = [
        ({"tags+": "b"}, ["a", "b"]),
        ({"+tags": "c"}, ["c", "a", "b"]),
        ({"tags-": ["a"]}, ["c", "b"]),
        ({"tags+": ["b", "d"]}, ["c", "b", "d"]),  # duplicates collapse
        ({"tags-": "zzz"}, ["c", "b", "d"]),
        ({"tags-": ["c", "b", "d"]}, []),
        ({"tags": ["d"], "tags+": "a"}, ["d", "a"]),  # the plain key lands first
        ({"tags": ["d"], "+tags": "a"}, ["a", "d"]),
        ({"tags": ["a", "b"], "tags-": "a"}, ["b"]),
    ]
    for body, want in steps:
        assert (await ok(client, "labels", body, rid))["tags"] == want, body
    res = await update(client, "labels", rid, {"tags+": ["a", "c", "d"]})
    assert_validation(res, "Failed to update record.", {"tags": "validation_too_many_values"}, "over maxSelect")
    res = await update(client, "labels", rid, {"tags+": "x"})
    assert_validation(res, "Failed to update record.", {"tags": "validation_invalid_value"}, "unknown value")
    assert (await get(client, "labels", rid))["tags"] == ["b"]

    # A single select holds one value: appending replaces it, removing clears it.
    for body, want in [({"status+": "b"}, "b"), ({"+status": "c"}, "b"), ({"status-": "c"}, "b"),
                       ({"status-": "b"}, ""), ({"status+": "c"}, "c")]:
        assert (await ok(client, "labels", body, rid))["status"] == want, body


async def test_relation_modifiers(client):
    tid, (r1, r2, r3) = await target_records(client, 3)
    await new_collection(client, "links", [
        {"name": "refs", "type": "relation", "collectionId": tid, "maxSelect": 3},
        {"name": "owner", "type": "relation", "collectionId": tid, "maxSelect": 1},
    ])
    assert (await ok(client, "links", {"refs+": [r1, r2]}))["refs"] == [r1, r2]
    rid = (await ok(client, "links", {"refs": [r1], "owner": r1}))["id"]
    steps = [
        ({"refs+": r2}, [r1, r2]),
        ({"+refs": r3}, [r3, r1, r2]),
        ({"refs-": [r1]}, [r3, r2]),
        ({"refs+": [r2, r3]}, [r3, r2]),
        ({"refs": [r2], "refs+": r1}, [r2, r1]),
        ({"refs-": [r1, r2]}, []),
    ]
    for body, want in steps:
        assert (await ok(client, "links", body, rid))["refs"] == want, body
    res = await update(client, "links", rid, {"refs+": "missing00000000"})
    assert_validation(res, "Failed to update record.", {"refs": "validation_missing_rel_records"}, "missing id")
    res = await update(client, "links", rid, {"refs+": [r1, r2, r3, "missing00000000"]})
    assert_validation(res, "Failed to update record.", {"refs": "validation_too_many_values"}, "over maxSelect")
    assert (await get(client, "links", rid))["refs"] == []

    for body, want in [({"owner+": r2}, r2), ({"owner-": r1}, r2), ({"owner-": r2}, ""), ({"+owner": r3}, r3)]:
        assert (await ok(client, "links", body, rid))["owner"] == want, body


# -- relation references on delete -----------------------------------------------------

async def test_deleting_a_referenced_record(client):
    tid, (t1, t2) = await target_records(client, 2)
    await new_collection(client, "loose", [
        {"name": "one", "type": "relation", "collectionId": tid, "maxSelect": 1},
        {"name": "many", "type": "relation", "collectionId": tid, "maxSelect": 5},
    ])
    await new_collection(client, "strict", [
        {"name": "parent", "type": "relation", "collectionId": tid, "maxSelect": 1, "required": True},
    ])
    await new_collection(client, "cascade", [
        {"name": "one", "type": "relation", "collectionId": tid, "maxSelect": 1, "cascadeDelete": True},
        {"name": "many", "type": "relation", "collectionId": tid, "maxSelect": 5, "cascadeDelete": True},
    ])
    loose = (await ok(client, "loose", {"one": t1, "many": [t1, t2]}))["id"]
    strict = (await ok(client, "strict", {"parent": t2}))["id"]
    c_one = (await ok(client, "cascade", {"one": t1}))["id"]
    c_many = (await ok(client, "cascade", {"many": [t1, t2]}))["id"]

    res = await client.delete(f"/api/collections/targets/records/{t1}", headers=client.su())
    assert res.status_code == 204, res.text
    rec = await get(client, "loose", loose)
    assert rec["one"] == "" and rec["many"] == [t2], "references to the deleted record are removed"
    gone = await client.get(f"/api/collections/cascade/records/{c_one}", headers=client.su())
    assert gone.status_code == 404, "cascadeDelete removes a record whose reference became empty"
    assert (await get(client, "cascade", c_many))["many"] == [t2], "a non-empty cascade reference is kept"

    res = await client.delete(f"/api/collections/targets/records/{t2}", headers=client.su())
    assert res.status_code == 400
    assert res.json() == {
        "status": 400,
        "message": "Failed to delete record. Make sure that the record is not part of a required relation reference.",
        "data": {},
    }
    # The whole delete is rolled back.
    assert (await get(client, "targets", t2))["id"] == t2
    assert (await get(client, "loose", loose))["many"] == [t2]
    assert (await get(client, "cascade", c_many))["many"] == [t2]
    assert (await get(client, "strict", strict))["parent"] == t2

    res = await client.delete(f"/api/collections/strict/records/{strict}", headers=client.su())
    assert res.status_code == 204
    res = await client.delete(f"/api/collections/targets/records/{t2}", headers=client.su())
    assert res.status_code == 204, res.text
    assert (await get(client, "loose", loose))["many"] == []
    assert (await listing(client, "cascade"))["totalItems"] == 0
    assert (await listing(client, "targets"))["totalItems"] == 0
