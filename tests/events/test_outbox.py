"""The transactional outbox with the in-process broker: an event exists exactly when its
change committed, in change order, with the documented envelope, and reaches Python
consumers once each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from bastion.core.app import App
from bastion.core.events.local import LocalBroker
from tests.events.conftest import MakeApp, make_notes, until

pytestmark = pytest.mark.backends


async def _rows(app: App) -> list[dict[str, Any]]:
    t = app.events.outbox.table
    async with app.db.read() as conn:
        return [dict(r) for r in await conn.fetch_all(sa.select(t).order_by(t.c.seq))]


async def test_the_outbox_off_writes_nothing(make_app: MakeApp, client_of: Callable[[App], Any]) -> None:
    app = await make_app(None)
    async with client_of(app) as client:
        await make_notes(client)
        assert (await client.post("/api/collections/notes/records", json={"title": "a"})).status_code == 200
    assert not app.events.enabled and app.events.relay is None
    assert await app.events.outbox.count() == 0
    with pytest.raises(RuntimeError, match="in-process broker"):
        app.events.consumer(lambda e: None)  # type: ignore[arg-type,return-value]


async def test_rolled_back_writes_leave_no_event_and_a_batch_keeps_its_order(
        make_app: MakeApp, client_of: Callable[[App], Any]) -> None:
    broker = LocalBroker()
    seen: list[dict[str, Any]] = []
    broker.consumer(lambda e: _append(seen, e))
    app = await make_app(broker)
    async with client_of(app) as client:
        await make_notes(client)
        assert (await client.post("/api/collections/notes/records", json={"title": "refused"})).status_code == 400
        await client.patch("/api/settings", json={"batch": {"enabled": True}}, headers=client.su())
        failing = {"requests": [
            {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "x"}},
            {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "refused"}}]}
        assert (await client.post("/api/batch", json=failing)).status_code == 400
        assert await app.events.outbox.count() == 0
        passing = {"requests": [
            {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": f"t{i}", "secret": "s"}}
            for i in range(5)]}
        res = await client.post("/api/batch", json=passing)
        assert res.status_code == 200, res.text
        ids = [item["body"]["id"] for item in res.json()]
    rows = await _rows(app)
    assert [r["recordId"] for r in rows] == ids
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    await until(lambda: len(seen) == 5)
    assert [e["data"]["record"]["title"] for e in seen] == [f"t{i}" for i in range(5)]
    assert [e["sequence"] for e in seen] == [r["seq"] for r in rows]
    await until(lambda: _none_pending(app))


async def _none_pending(app: App) -> bool:
    return await app.events.outbox.count(published=False) == 0


async def _append(into: list[dict[str, Any]], event: dict[str, Any]) -> None:
    into.append(event)


async def test_the_envelope_shows_what_a_superuser_sees_without_secrets(
        make_app: MakeApp, client_of: Callable[[App], Any]) -> None:
    broker = LocalBroker()
    seen: list[dict[str, Any]] = []
    broker.consumer(lambda e: _append(seen, e))
    app = await make_app(broker)
    async with client_of(app) as client:
        await make_notes(client)
        body = {"email": "u@example.com", "password": "12345678aA", "passwordConfirm": "12345678aA", "name": "U"}
        user = (await client.post("/api/collections/users/records", json=body)).json()
        note = (await client.post("/api/collections/notes/records", json={"title": "a", "secret": "s"},
                                  headers=client.su())).json()
        assert note["secret"] == "s"
        await client.patch(f"/api/collections/notes/records/{note['id']}", json={"title": "b"})
        assert (await client.delete(f"/api/collections/notes/records/{note['id']}")).status_code == 204
    await until(lambda: len(seen) == 4)
    created_user, created, updated, deleted = seen
    for event in seen:
        assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
        assert event["bastionversion"] == "1" and isinstance(event["sequence"], int)
        assert event["time"].endswith("Z") and len(event["id"]) == 36
    assert [e["sequence"] for e in seen] == sorted(e["sequence"] for e in seen)
    assert len({e["id"] for e in seen}) == 4
    assert created_user["type"] == "bastion.record.created" and created_user["subject"] == user["id"]
    record = created_user["data"]["record"]
    assert record["email"] == "u@example.com" and "password" not in record and "tokenKey" not in record
    assert created["source"] == "/bastion/collections/notes" and created["subject"] == note["id"]
    assert created["data"] == {"collection": "notes", "collectionId": note["collectionId"], "action": "create",
                               "record": note, "previous": None}
    assert updated["type"] == "bastion.record.updated" and updated["data"]["record"]["title"] == "b"
    assert updated["data"]["previous"] is None or updated["data"]["previous"]["title"] == "a"
    assert deleted["type"] == "bastion.record.deleted" and deleted["data"]["record"]["title"] == "b"
    stored = orjson.loads((await _rows(app))[1]["envelope"])
    assert "sequence" not in stored and stored["id"] == created["id"]


async def test_a_failing_consumer_is_retried_and_the_others_see_each_event_once(
        make_app: MakeApp, client_of: Callable[[App], Any]) -> None:
    broker = LocalBroker()
    steady: list[str] = []
    flaky: list[str] = []
    failures = {"left": 3}

    async def flaky_consumer(event: dict[str, Any]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("not now")
        flaky.append(event["id"])

    broker.consumer(lambda e: _append_id(steady, e))
    broker.consumer(flaky_consumer)
    app = await make_app(broker)
    async with client_of(app) as client:
        await make_notes(client)
        for i in range(3):
            assert (await client.post("/api/collections/notes/records", json={"title": f"{i}"})).status_code == 200
    await until(lambda: len(flaky) == 3)
    assert steady == flaky and len(set(steady)) == 3


async def _append_id(into: list[str], event: dict[str, Any]) -> None:
    into.append(event["id"])
