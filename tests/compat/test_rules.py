"""List rules give the same people the same records on PocketBase and Bastion.

One collection, ``docs``, with a multi-relation ``editors`` and a single relation
``owner``; each test sets the list rule on both servers, then a guest and two users list
the records. A rule that lets someone see more on Bastion than on PocketBase is a leak in
a migrated app; one that lets them see less breaks it.
"""

from __future__ import annotations

import pytest

from tests.compat.harness import PASSWORD, Answer, Pair

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


# The same rule on all five actions: each caller views, updates, creates and deletes.
ACTION_RULES = [
    "editors ?= @request.auth.id",
    "editors.id ?= @request.auth.id",
    "editors ~ @request.auth.id",
    "owner = @request.auth.id",
    "@request.auth.id != '' && owner = @request.auth.id",
    "@collection.users.id ?= @request.auth.id",
    "@collection.users.id = @request.auth.id",
    "@request.body.title = 'allowed' || owner = @request.auth.id",
]


def _outcome(answer: Answer) -> object:
    return answer.status if answer.status != 200 else sorted(answer.body) if isinstance(answer.body, dict) else 200


@pytest.mark.parametrize("rule", ACTION_RULES)
def test_rule_on_every_action_allows_what_pocketbase_allows(scenario: Pair, rule: str) -> None:
    number = ACTION_RULES.index(rule)
    scenario.setup("PATCH", "/api/collections/docs", json={
        "listRule": rule, "viewRule": rule, "createRule": rule, "updateRule": rule, "deleteRule": rule})
    differ: dict[str, tuple[object, object]] = {}
    for who in CALLERS:
        caller = who or "guest"
        for rid in DOCS:
            for method, body in (("GET", None), ("PATCH", {"title": DOCS[rid]["title"]})):
                pb, bastion = scenario.both(method, f"/api/collections/docs/records/{rid}", who, json=body)
                if (pb.status, _outcome(pb)) != (bastion.status, _outcome(bastion)):
                    differ[f"{caller} {method} {rid}"] = (pb.status, bastion.status)
        for title in ("allowed", "other"):
            new = f"n{number}{CALLERS.index(who)}{title[0]}" + "n" * 11
            pb, bastion = scenario.both("POST", "/api/collections/docs/records", who, json={
                "id": new, "title": title, "editors": [U1], "owner": U1})
            if pb.status != bastion.status:
                differ[f"{caller} create {title}"] = (pb.status, bastion.status)
        victim = f"v{number}{CALLERS.index(who)}" + "v" * 12
        scenario.setup("POST", "/api/collections/docs/records", json={
            "id": victim, "title": "victim", "editors": [U1, U2], "owner": U2})
        pb, bastion = scenario.both("DELETE", f"/api/collections/docs/records/{victim}", who)
        if pb.status != bastion.status:
            differ[f"{caller} delete"] = (pb.status, bastion.status)
        for side in scenario.sides:  # leave the documents as they were for the next rule
            side.request("DELETE", f"/api/collections/docs/records/{victim}", "su")
            for title in ("allowed", "other"):
                new = f"n{number}{CALLERS.index(who)}{title[0]}" + "n" * 11
                side.request("DELETE", f"/api/collections/docs/records/{new}", "su")
    assert differ == {}
