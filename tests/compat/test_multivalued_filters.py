"""Filters on multi-valued fields give PocketBase's rows.

PocketBase's rule (its record field resolver): a *direct* reference to a multiple
select, relation or file field is the stored JSON text; only relation paths
(``members.id``), back-relations, ``@collection`` and the ``:each`` / ``:length``
modifiers are multi-valued. Each filter runs on both servers over the same records and
the rows must be the same.
"""

from __future__ import annotations

import pytest

from tests.compat.harness import PASSWORD, Pair

U1, U2 = "u1u1u1u1u1u1u1u", "u2u2u2u2u2u2u2u"
RECORDS = {
    "xxxxxxxxxxxxxxx": {"tags": ["a"], "members": [U1], "meta": {"k": [1]}, "title": "x"},
    "yyyyyyyyyyyyyyy": {"tags": ["a", "b"], "members": [U1, U2], "meta": {"k": [1, 2]}, "title": "y"},
    "zzzzzzzzzzzzzzz": {"tags": ["b"], "members": [U2], "meta": {"k": "b"}, "title": "z"},
    "wwwwwwwwwwwwwww": {"tags": [], "members": [], "meta": None, "title": "w"},
}

FILTERS = [
    'tags:each = "a"', "tags:length = 2", "tags:length > 0", 'members.id ?= "U2"', 'members.id = "U2"',
    'members.email ?= "u2@example.com"', 'members.name != "n2"', 'members:each = "U1"', "members:length = 1",
    'title = "x" || title = "z"', 'tags:each ?= "b"', "members:length = 0", 'members.id ?!= "U1"',
    # A direct reference is the stored JSON text.
    'tags ?= "b"', 'tags = "b"', 'tags ~ "b"', 'tags != "b"', 'tags ?!= "b"', "tags = '[]'", 'tags = ""',
    'members ?= "U2"', 'members = "U2"', 'members ~ "U2"', 'tags = \'["a","b"]\'', "tags:lower ~ 'B'",
    # Modifiers a type does not take are ignored; after a JSON path they join its last key.
    "meta.k:length > 0", "meta:length = null", 'title:each = "x"', "title:length = 'x'", "title:isset = 'y'",
    "meta.k:lower = null",
]


def ids(text: str) -> str:
    return text.replace("U1", U1).replace("U2", U2)


@pytest.fixture(scope="module")
def scenario(pair: Pair) -> Pair:
    for uid, n in ((U1, 1), (U2, 2)):
        pair.setup("POST", "/api/collections/users/records", json={
            "id": uid, "email": f"u{n}@example.com", "name": f"n{n}", "password": PASSWORD,
            "passwordConfirm": PASSWORD})
    pair.setup("POST", "/api/collections", json={
        "id": "pbc_things", "name": "things", "type": "base", "listRule": "", "viewRule": "",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
            {"name": "members", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
            {"name": "meta", "type": "json"},
        ]})
    pair.setup("PATCH", "/api/collections/users", json={"listRule": "", "viewRule": ""})
    for rid, values in RECORDS.items():
        pair.setup("POST", "/api/collections/things/records", json={"id": rid, **values})
    return pair


def rows(pair: Pair, text: str) -> tuple[object, object]:
    pb, bastion = pair.both("GET", "/api/collections/things/records",
                            params={"filter": ids(text), "sort": "title", "fields": "title"})

    def titles(answer):  # type: ignore[no-untyped-def]
        if answer.status != 200:
            return answer.status
        return [r["title"] for r in answer.body["items"]]

    return titles(pb), titles(bastion)


@pytest.mark.parametrize("text", FILTERS)
def test_filter_rows_match_pocketbase(scenario: Pair, text: str) -> None:
    pb, bastion = rows(scenario, text)
    assert bastion == pb, f"{text}: PocketBase {pb}, Bastion {bastion}"
