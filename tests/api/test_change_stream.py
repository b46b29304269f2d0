"""Committed writes become changes in one place (``core/records/changes.py``): listeners
hear every create, update and delete once its transaction committed, in order, with the
record as stored (or, for a delete, as it was); a rolled back write is never heard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from bastion.core.app import App
from bastion.core.errors import BadRequest
from bastion.core.ports import Connection
from bastion.core.records.changes import RecordChange
from bastion.testing import TestClient
from bastion.tools.ids import random_string

pytestmark = pytest.mark.backends


class Heard:
    def __init__(self, app: App):
        self.batches: list[list[tuple[str, str, str, Any]]] = []
        app.records.listeners.append(self)

    async def __call__(self, changes: Sequence[RecordChange]) -> None:
        self.batches.append([(c.action, c.collection.name, c.record["id"], c.record.get("title"))
                             for c in changes])

    def all(self) -> list[tuple[str, str, str, Any]]:
        return [change for batch in self.batches for change in batch]


async def _collections(client: TestClient) -> None:
    for body in ({"name": "notes", "createRule": "title != 'refused'", "updateRule": "", "deleteRule": "",
                  "fields": [{"name": "title", "type": "text"}]},
                 {"name": "comments", "createRule": "", "deleteRule": "", "fields": [
                     {"name": "title", "type": "text"},
                     {"name": "note", "type": "relation", "collectionId": "notes", "cascadeDelete": True},
                     {"name": "also", "type": "relation", "collectionId": "notes", "maxSelect": 5}]}):
        res = await client.post("/api/collections", headers=client.su(), json=body)
        if res.status_code != 200 and "notes" in str(body.get("fields")):
            notes_id = (await client.get("/api/collections/notes", headers=client.su())).json()["id"]
            for f in body["fields"]:
                if f.get("collectionId") == "notes":
                    f["collectionId"] = notes_id
            res = await client.post("/api/collections", headers=client.su(), json=body)
        assert res.status_code == 200, res.text


async def test_committed_writes_are_heard_in_order(client: TestClient, app: App) -> None:
    await _collections(client)
    heard = Heard(app)
    note = (await client.post("/api/collections/notes/records", json={"title": "a"})).json()
    await client.patch(f"/api/collections/notes/records/{note['id']}", json={"title": "b"})
    assert heard.all() == [("create", "notes", note["id"], "a"), ("update", "notes", note["id"], "b")]
    other = (await client.post("/api/collections/notes/records", json={"title": "o"})).json()
    spare = (await client.post("/api/collections/notes/records", json={"title": "s"})).json()
    comment = (await client.post("/api/collections/comments/records",
                                 json={"title": "c", "note": note["id"], "also": [note["id"], other["id"]]})).json()
    heard.batches.clear()
    assert (await client.delete(f"/api/collections/notes/records/{note['id']}")).status_code == 204
    # one transaction, one batch: the note as it was, then what its deletion did to others
    assert heard.batches == [[("delete", "notes", note["id"], "b"), ("delete", "comments", comment["id"], "c")]]
    # a relation that keeps other ids is an update of the record holding it
    third = (await client.post("/api/collections/comments/records",
                               json={"title": "d", "also": [other["id"], spare["id"]]})).json()
    heard.batches.clear()
    assert (await client.delete(f"/api/collections/notes/records/{spare['id']}")).status_code == 204
    assert heard.batches == [[("delete", "notes", spare["id"], "s"), ("update", "comments", third["id"], "d")]]


async def test_rolled_back_writes_are_never_heard(client: TestClient, app: App) -> None:
    await _collections(client)
    heard = Heard(app)
    assert (await client.post("/api/collections/notes/records", json={"title": "refused"})).status_code == 400
    await client.patch("/api/settings", json={"batch": {"enabled": True}}, headers=client.su())
    failing = {"requests": [
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "x"}},
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "refused"}}]}
    assert (await client.post("/api/batch", json=failing)).status_code == 400
    assert heard.batches == []
    passing = {"requests": [
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "x"}},
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "y"}}]}
    res = await client.post("/api/batch", data={"@jsonPayload": orjson.dumps(passing).decode()})
    assert res.status_code == 200, res.text
    assert [[(a, t) for a, _c, _i, t in batch] for batch in heard.batches] == [[("create", "x"), ("create", "y")]]


async def test_a_failing_listener_does_not_undo_the_write(client: TestClient, app: App) -> None:
    await _collections(client)

    async def broken(changes: Sequence[RecordChange]) -> None:
        raise RuntimeError("listener bug")

    app.records.listeners.append(broken)
    heard = Heard(app)
    res = await client.post("/api/collections/notes/records", json={"title": "kept"})
    assert res.status_code == 200
    assert heard.all() == [("create", "notes", res.json()["id"], "kept")]
    stored = await client.get(f"/api/collections/notes/records/{res.json()['id']}", headers=client.su())
    assert stored.status_code == 200


async def test_sealers_write_in_the_transaction_and_their_failure_undoes_it(client: TestClient, app: App) -> None:
    await _collections(client)
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "audit", "listRule": "", "fields": [{"name": "what", "type": "text"}]})
    assert res.status_code == 200, res.text
    audit = app.registry.table(app.registry.get("audit"))
    fail = {"on": False}

    async def log_changes(conn: Connection, changes: Sequence[RecordChange]) -> None:
        for c in changes:
            if c.collection.name != "audit":
                await conn.execute(sa.insert(audit).values(id=random_string(15), what=f"{c.action} {c.record.id}"))
        if fail["on"]:
            raise BadRequest("refused by the sealer")

    app.records.sealers.append(log_changes)
    note = (await client.post("/api/collections/notes/records", json={"title": "a"})).json()
    await client.patch("/api/settings", json={"batch": {"enabled": True}}, headers=client.su())
    res = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "b"}},
        {"method": "DELETE", "url": f"/api/collections/notes/records/{note['id']}"}]})
    assert res.status_code == 200, res.text
    items = (await client.get("/api/collections/audit/records")).json()["items"]
    logged = [r["what"].split()[0] for r in items]
    assert sorted(logged) == ["create", "create", "delete"]
    fail["on"] = True
    refused = await client.post("/api/collections/notes/records", json={"title": "gone"})
    assert refused.status_code == 400 and refused.json()["message"] == "Refused by the sealer."
    listed = await client.get("/api/collections/notes/records", params={"filter": "title = 'gone'"},
                              headers=client.su())
    assert listed.json()["items"] == []  # the write and what the sealer wrote rolled back together
    assert len((await client.get("/api/collections/audit/records")).json()["items"]) == 3
