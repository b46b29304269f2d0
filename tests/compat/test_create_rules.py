"""A create rule sees the new record as PocketBase does: before its autodate fields are
stamped, so ``created != ''`` refuses every create and ``created = ''`` admits it."""

from __future__ import annotations

import itertools

import pytest

from tests.compat.harness import Pair

# The new values compare as the bound values PocketBase gives them, without their columns'
# affinity: "created > 0" admits ('' sorts after every number), "created < 1" refuses.
RULES = ["created != ''", "created = ''", "updated != ''", "id != ''", "title = 'x'",
         "title = 'y'", "@request.body.created:isset = false", "@request.body.title = title",
         "created > 0", "created < 1", "title > 5", "title < 5", "n > '5'", "n < '5'"]
_names = itertools.count()


@pytest.mark.parametrize("rule", RULES)
def test_create_rule_answers_as_pocketbase(pair: Pair, rule: str) -> None:
    name = f"create_rule_{next(_names)}"
    pair.setup("POST", "/api/collections", json={
        "name": name, "type": "base", "createRule": rule, "listRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"},
                   {"name": "created", "type": "autodate", "onCreate": True},
                   {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}]})
    pb, bastion = pair.both("POST", f"/api/collections/{name}/records", json={"title": "x", "n": 10})
    assert bastion.status == pb.status
    if pb.status == 200:  # stamped after the check all the same
        assert bastion.body["created"] == pb.body["created"] == "<date>"
    else:
        assert bastion.body == pb.body
