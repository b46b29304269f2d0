"""List rules give the same people the same records on PocketBase and Bastion.

One collection, ``docs``, with a multi-relation ``editors`` and a single relation
``owner``; each test sets the list rule on both servers, then a guest and two users list
the records. A rule that lets someone see more on Bastion than on PocketBase is a leak in
a migrated app; one that lets them see less breaks it.
"""

from __future__ import annotations

import pytest

from tests.compat.harness import PASSWORD, Pair

U1, U2 = "u1u1u1u1u1u1u1u", "u2u2u2u2u2u2u2u"
DOCS = {
    "d1d1d1d1d1d1d1d": {"title": "one editor", "editors": [U1], "owner": U1},
    "d2d2d2d2d2d2d2d": {"title": "two editors", "editors": [U1, U2], "owner": U2},
    "d3d3d3d3d3d3d3d": {"title": "no editor", "editors": [], "owner": ""},
}
CALLERS = (None, "u1", "u2")

RULES = [
    "owner = @request.auth.id",
    "@request.auth.id != '' && owner = @request.auth.id",
    "editors.id ?= @request.auth.id",
    "@request.auth.id != '' && editors.id ?= @request.auth.id",
    "editors:length > 1",
    "@request.auth.id != ''",
    "owner.email = @request.auth.email",
    # A direct reference to a multiple relation is its stored JSON text.
    "editors ?= @request.auth.id",
    "editors ~ @request.auth.id",
    "editors = @request.auth.id",
    "editors != @request.auth.id",
    "editors:each ?= @request.auth.id",
    "editors:each = @request.auth.id",
    "owner ~ @request.auth.id",
    "owner:each = @request.auth.id",
    "owner:length = 1",
]


@pytest.fixture(scope="module")
def scenario(pair: Pair) -> Pair:
    for uid, n in ((U1, 1), (U2, 2)):
        pair.setup("POST", "/api/collections/users/records", json={
            "id": uid, "email": f"u{n}@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD})
        pair.sign_in(f"u{n}", "users", f"u{n}@example.com")
    pair.setup("POST", "/api/collections", json={
        "id": "pbc_docs", "name": "docs", "type": "base", "listRule": None,
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "editors", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
            {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
        ]})
    for rid, values in DOCS.items():
        pair.setup("POST", "/api/collections/docs/records", json={"id": rid, **values})
    return pair


def seen(pair: Pair, rule: str) -> dict[str, tuple[object, object]]:
    """Per caller: (PocketBase's titles, Bastion's titles), or the status on an error."""
    pair.setup("PATCH", "/api/collections/docs", json={"listRule": rule})
    out = {}
    for who in CALLERS:
        pb, bastion = pair.both("GET", "/api/collections/docs/records", who,
                                params={"sort": "title", "fields": "title"})
        out[who or "guest"] = tuple(
            a.body and [r["title"] for r in a.body["items"]] if a.status == 200 else a.status
            for a in (pb, bastion))
    return out


def differences(pair: Pair, rule: str) -> dict[str, tuple[object, object]]:
    return {who: answers for who, answers in seen(pair, rule).items() if answers[0] != answers[1]}


@pytest.mark.parametrize("rule", RULES)
def test_list_rule_shows_what_pocketbase_shows(scenario: Pair, rule: str) -> None:
    assert differences(scenario, rule) == {}
