"""A create rule compares the new record's values as PocketBase binds them, without their
columns' affinity, on every engine (PocketBase's answers: tests/compat/test_create_rules.py)."""

from __future__ import annotations

import pytest

CASES = [("created > 0", 200), ("created < 1", 400), ("title > 5", 200), ("title < 5", 400),
         ("title = 'x'", 200), ("n > '5'", 400), ("n < '5'", 200)]


@pytest.mark.parametrize("rule,status", CASES)
async def test_new_values_compare_without_column_affinity(client, rule: str, status: int) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "createRule": rule, "fields": [
            {"name": "title", "type": "text"}, {"name": "n", "type": "number"},
            {"name": "created", "type": "autodate", "onCreate": True}]})
    assert res.status_code == 200, res.text
    res = await client.post("/api/collections/notes/records", json={"title": "x", "n": 10})
    assert res.status_code == status, (rule, res.text)
