"""Idempotency-Key on creates, updates and batches, on every engine: a repeat gets the
first answer and writes nothing, a different request under the same key is a 422, a
repeat while the first runs is a 409, keys are scoped by caller, and a 5xx is not kept."""

from __future__ import annotations

import asyncio

import pytest

from bastion.core.app import App
from bastion.core.hooks.records import RecordEvent
from bastion.testing import TestClient, token_for

pytestmark = pytest.mark.backends


async def _notes(client: TestClient) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "listRule": "", "createRule": "", "updateRule": "",
        "fields": [{"name": "title", "type": "text", "max": 10}]})
    assert res.status_code == 200, res.text


async def _count(client: TestClient) -> int:
    return int((await client.get("/api/collections/notes/records")).json()["totalItems"])


async def test_a_repeat_gets_the_first_answer(client: TestClient) -> None:
    await _notes(client)
    key = {"Idempotency-Key": "order-1"}
    first = await client.post("/api/collections/notes/records", json={"title": "a"}, headers=key)
    again = await client.post("/api/collections/notes/records", json={"title": "a"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(client) == 1
    other = await client.post("/api/collections/notes/records", json={"title": "b"}, headers=key)
    assert other.status_code == 422 and "different request" in other.json()["message"]
    _, user = await token_for(client, "u@example.com")
    mine = await client.post("/api/collections/notes/records", json={"title": "a"}, headers={**key, **user})
    assert mine.status_code == 200 and mine.json()["id"] != first.json()["id"]  # another caller's key
    refused = await client.post("/api/collections/notes/records", json={"title": "x" * 11},
                                headers={"Idempotency-Key": "order-2"})
    replayed = await client.post("/api/collections/notes/records", json={"title": "x" * 11},
                                 headers={"Idempotency-Key": "order-2"})
    assert refused.status_code == replayed.status_code == 400 and replayed.json() == refused.json()
    patch = {"Idempotency-Key": "rename-1"}
    for _ in range(2):
        res = await client.patch(f"/api/collections/notes/records/{first.json()['id']}", json={"title": "c"},
                                 headers=patch)
        assert res.status_code == 200 and res.json()["title"] == "c"
    bad = await client.post("/api/collections/notes/records", json={}, headers={"Idempotency-Key": "x" * 256})
    assert bad.status_code == 400


async def test_batches_and_a_repeat_while_the_first_runs(app: App, client: TestClient) -> None:
    await _notes(client)
    await client.patch("/api/settings", headers=client.su(), json={"batch": {"enabled": True}})
    batch = {"requests": [{"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "1"}},
                          {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "2"}}]}
    for _ in range(2):
        res = await client.post("/api/batch", json=batch, headers={"Idempotency-Key": "batch-1"})
        assert res.status_code == 200
    assert await _count(client) == 2
    entered, release = asyncio.Event(), asyncio.Event()

    @app.on_record_create("notes")
    async def slow(e: RecordEvent) -> None:
        entered.set()
        await release.wait()
        await e.next()

    key = {"Idempotency-Key": "slow-1"}
    first = asyncio.create_task(client.post("/api/collections/notes/records", json={"title": "s"}, headers=key))
    await asyncio.wait_for(entered.wait(), 5)
    busy = await client.post("/api/collections/notes/records", json={"title": "s"}, headers=key)
    assert busy.status_code == 409
    release.set()
    assert (await first).status_code == 200
    assert await _count(client) == 3
