"""Field options when creating a collection: bad options give PocketBase's 400 shape.

``POST /api/collections`` → 400 "Failed to create collection." with
``data.fields.<index>.<option>.code``, and nothing is created. The cases send an explicit
``id`` field first (as PocketBase's dashboard does), so ``<index>`` is the submitted index
on both servers; without it PocketBase counts the ``id`` field it prepends (see the index test
below).
"""

from __future__ import annotations

from typing import Any

import pytest

ID_FIELD = {
    "name": "id", "type": "text", "system": True, "primaryKey": True, "required": True,
    "min": 15, "max": 15, "pattern": "^[a-z0-9]+$", "autogeneratePattern": "[a-z0-9]{15}",
}
FAILED = "Failed to create collection."

# (field definition, {option: code}) — each definition is invalid for exactly those options.
OPTION_ERRORS: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"name": "f", "type": "select"}, {"values": "validation_required"}),
    ({"name": "f", "type": "select", "values": []}, {"values": "validation_required"}),
    ({"name": "f", "type": "select", "values": ["a", "b"], "maxSelect": 3},
     {"maxSelect": "validation_max_less_equal_than_required"}),
    ({"name": "f", "type": "relation"}, {"collectionId": "validation_required"}),
    ({"name": "f", "type": "relation", "collectionId": "_pb_users_auth_", "minSelect": 3, "maxSelect": 2},
     {"maxSelect": "validation_min_greater_equal_than_required"}),
    ({"name": "f", "type": "text", "pattern": "["}, {"pattern": "validation_invalid_regex"}),
    ({"name": "f", "type": "text", "pattern": "(a"}, {"pattern": "validation_invalid_regex"}),
    ({"name": "f", "type": "password", "pattern": "*"}, {"pattern": "validation_invalid_regex"}),
    ({"name": "f", "type": "text", "min": 10, "max": 5}, {"max": "validation_min_greater_equal_than_required"}),
    ({"name": "f", "type": "text", "min": -1}, {"min": "validation_min_greater_equal_than_required"}),
    ({"name": "f", "type": "number", "min": 10, "max": 5}, {"max": "validation_min_number_constraint"}),
    ({"name": "f", "type": "number", "min": 0.5, "max": 0.25}, {"max": "validation_min_number_constraint"}),
    ({"name": "f", "type": "date", "min": "2030-01-01 00:00:00.000Z", "max": "2020-01-01 00:00:00.000Z"},
     {"max": "validation_date_out_of_range"}),
    ({"name": "f", "type": "email", "exceptDomains": ["a.com"], "onlyDomains": ["b.com"]},
     {"exceptDomains": "validation_empty", "onlyDomains": "validation_empty"}),
    ({"name": "f", "type": "url", "exceptDomains": ["a.com"], "onlyDomains": ["b.com"]},
     {"exceptDomains": "validation_empty", "onlyDomains": "validation_empty"}),
    ({"name": "f", "type": "autodate"}, {"onCreate": "validation_required", "onUpdate": "validation_required"}),
    ({"name": "f", "type": "autodate", "onCreate": False, "onUpdate": False},
     {"onCreate": "validation_required", "onUpdate": "validation_required"}),
    ({"name": "f", "type": "json", "maxSize": -1}, {"maxSize": "validation_min_greater_equal_than_required"}),
    ({"name": "f", "type": "editor", "maxSize": -5}, {"maxSize": "validation_min_greater_equal_than_required"}),
    ({"name": "f", "type": "file", "maxSelect": -1}, {"maxSelect": "validation_min_greater_equal_than_required"}),
    ({"name": "f", "type": "password", "max": 72}, {"max": "validation_max_less_equal_than_required"}),
    ({"name": "bad name!", "type": "text"}, {"name": "validation_match_invalid"}),
    ({"name": "", "type": "bool"}, {"name": "validation_required"}),
    ({"type": "number"}, {"name": "validation_required"}),
]


def assert_option_errors(res: Any, expected: dict[str, dict[str, str]], what: str) -> None:
    assert res.status_code == 400, f"{what}: {res.status_code} {res.text}"
    body = res.json()
    assert body["status"] == 400 and body["message"] == FAILED, f"{what}: {body}"
    got = {i: {k: leaf["code"] for k, leaf in errs.items()} for i, errs in body["data"]["fields"].items()}
    assert got == expected, f"{what}: {body['data']}"
    assert set(body["data"]) == {"fields"}, f"{what}: {body['data']}"


async def post_collection(client: Any, name: str, fields: list[Any]) -> Any:
    return await client.post(
        "/api/collections", json={"name": name, "type": "base", "fields": fields}, headers=client.su()
    )


async def assert_absent(client: Any, name: str) -> None:
    res = await client.get(f"/api/collections/{name}", headers=client.su())
    assert res.status_code == 404, f"{name} was created: {res.text}"


async def test_invalid_field_options_are_rejected(client):
    for i, (field, codes) in enumerate(OPTION_ERRORS):
        name = f"opt{i}"
        res = await post_collection(client, name, [ID_FIELD, {"name": "ok", "type": "text"}, field])
        assert_option_errors(res, {"2": codes}, repr(field))
        await assert_absent(client, name)

    # Several bad fields are reported together, each under its own index.
    res = await post_collection(client, "many", [
        ID_FIELD, {"name": "s", "type": "select"}, {"name": "fine", "type": "bool"},
        {"name": "t", "type": "text", "pattern": "["},
    ])
    assert_option_errors(res, {"1": {"values": "validation_required"}, "3": {"pattern": "validation_invalid_regex"}},
                         "several")
    await assert_absent(client, "many")

    # Field names are case-insensitively unique (they are columns).
    res = await post_collection(client, "dups", [
        ID_FIELD, {"name": "title", "type": "text"}, {"name": "Title", "type": "number"},
    ])
    assert_option_errors(res, {"2": {"name": "validation_duplicated_field_name"}}, "duplicate names")
    await assert_absent(client, "dups")

    # A relation needs an existing collection, given by id.
    res = await post_collection(client, "missingrel", [
        ID_FIELD, {"name": "r", "type": "relation", "collectionId": "pbc_does_not_exist"},
    ])
    assert_option_errors(res, {"1": {"collectionId": "validation_field_relation_missing_collection"}}, "rel")
    await assert_absent(client, "missingrel")

    # Reserved names fail on the name (the exact code is checked in a test below).
    res = await post_collection(client, "reserved", [ID_FIELD, {"name": "expand", "type": "text"}])
    assert res.status_code == 400 and res.json()["message"] == FAILED, res.text
    assert set(res.json()["data"]["fields"]["1"]) == {"name"}, res.text
    await assert_absent(client, "reserved")

    # An unknown field type is a 400 (PocketBase fails while decoding the body) and creates nothing.
    res = await post_collection(client, "badtype", [ID_FIELD, {"name": "x", "type": "nope"}])
    assert res.status_code == 400 and res.json()["status"] == 400, res.text
    await assert_absent(client, "badtype")
    res = await post_collection(client, "badfield", [ID_FIELD, "not an object"])
    assert res.status_code == 400, res.text
    await assert_absent(client, "badfield")


async def test_valid_field_options_are_stored_and_echoed(client):
    fields = [
        {"name": "title", "type": "text", "min": 2, "max": 40, "pattern": "^[A-Za-z ]+$", "required": True},
        {"name": "body", "type": "editor", "maxSize": 1000, "convertURLs": True},
        {"name": "price", "type": "number", "min": 0, "max": 99.5, "onlyInt": False},
        {"name": "stock", "type": "number", "min": None, "max": None, "onlyInt": True},
        {"name": "mail", "type": "email", "onlyDomains": ["example.com"]},
        {"name": "site", "type": "url", "exceptDomains": ["evil.com"]},
        {"name": "day", "type": "date", "min": "2020-01-01", "max": "2030-01-01T00:00:00Z"},
        {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
        {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "minSelect": 1, "maxSelect": 3,
         "cascadeDelete": True},
        {"name": "meta", "type": "json", "maxSize": 100},
        {"name": "docs", "type": "file", "maxSelect": 3, "maxSize": 1024, "mimeTypes": ["image/png"],
         "thumbs": ["100x100"], "protected": True},
        {"name": "place", "type": "geoPoint", "hidden": True},
        {"name": "stamp", "type": "autodate", "onCreate": False, "onUpdate": True},
    ]
    res = await post_collection(client, "shop", [ID_FIELD, *fields])
    assert res.status_code == 200, res.text
    fetched = await client.get("/api/collections/shop", headers=client.su())
    assert fetched.status_code == 200
    for col in (res.json(), fetched.json()):
        by_name = {f["name"]: f for f in col["fields"]}
        assert [f["name"] for f in col["fields"]] == ["id"] + [f["name"] for f in fields]
        expected_dates = {"min": "2020-01-01 00:00:00.000Z", "max": "2030-01-01 00:00:00.000Z"}
        for f in fields:
            got = by_name[f["name"]]
            want = {**f, **(expected_dates if f["name"] == "day" else {})}
            assert {k: got.get(k) for k in want} == want, got
            assert got["id"] and got["system"] is False
            assert ("required" in got) == (f["type"] != "autodate")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # parsing only: no database involved
async def test_reserved_field_names_code(client):
    res = await post_collection(client, "reserved", [
        ID_FIELD, {"type": "text", "name": "expand"}, {"type": "text", "name": "collectionId"},
        {"type": "text", "name": "collectionName"},
    ])
    assert_option_errors(res, {str(i): {"name": "validation_not_in_invalid"} for i in (1, 2, 3)}, "reserved")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_auth_only_reserved_names_allowed_on_base(client):
    res = await post_collection(client, "basenames", [
        {"type": "text", "name": "passwordConfirm"}, {"type": "text", "name": "oldPassword"},
    ])
    assert res.status_code == 200, res.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_name_errors_keep_their_index_after_a_bad_field(client):
    res = await post_collection(client, "noid", [
        {"name": "s", "type": "select"}, {"name": "expand", "type": "text"},
    ])
    assert res.status_code == 400, res.text
    assert set(res.json()["data"]["fields"]) == {"1", "2"}, res.text
