"""Realtime events pass the same rules as the REST API, on every engine: owner-only and
relation rules, subscription filters, view rules for one record, deletes as the record
was, hidden fields and email, auth binding and its lapse, rollback, scope exit."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.core.app import App
from bastion.core.errors import BastionError
from bastion.core.realtime import client as realtime_client
from bastion.core.realtime.dispatch import MAX_CHECKS_PER_CLIENT
from bastion.testing import Inbox, TestClient, token_for, token_in
from tests.realtime.support import Subscriber, options

pytestmark = pytest.mark.backends

OWNER = "owner = @request.auth.id"


async def _setup(client: TestClient) -> dict[str, str]:
    a, a_headers = await token_for(client, "a@example.com")
    b, b_headers = await token_for(client, "b@example.com")
    users = (await client.get("/api/collections/users", headers=client.su())).json()["id"]
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "teams", "listRule": "", "viewRule": "", "fields": [
            {"name": "name", "type": "text"},
            {"name": "members", "type": "relation", "collectionId": users, "maxSelect": 10}]})
    assert res.status_code == 200, res.text
    teams = res.json()["id"]
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "listRule": OWNER, "viewRule": OWNER + " && status != 'closed'",
        "createRule": "", "updateRule": "", "deleteRule": "", "fields": [
            {"name": "title", "type": "text"}, {"name": "status", "type": "text"},
            {"name": "secret", "type": "text", "hidden": True},
            {"name": "owner", "type": "relation", "collectionId": users},
            {"name": "team", "type": "relation", "collectionId": teams}]})
    assert res.status_code == 200, res.text
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "shared", "listRule": "team.members.id ?= @request.auth.id", "viewRule": "",
        "createRule": "", "fields": [
            {"name": "title", "type": "text"}, {"name": "team", "type": "relation", "collectionId": teams}]})
    assert res.status_code == 200, res.text
    return {"a": a, "b": b, "ta": a_headers["Authorization"], "tb": b_headers["Authorization"]}


async def _note(client: TestClient, owner: str, **values: str) -> str:
    res = await client.post("/api/collections/notes/records", json={"owner": owner, **values}, headers=client.su())
    assert res.status_code == 200, res.text
    return str(res.json()["id"])


async def test_owner_rule_filter_and_record_topic(app: App, client: TestClient) -> None:
    u = await _setup(client)
    a, b, guest, su = (Subscriber(app, u["ta"]), Subscriber(app, u["tb"]), Subscriber(app),
                       Subscriber(app, client.superuser_token or ""))
    for s in (a, b, guest, su):
        await s.subscribe("notes/*")
    filtered = Subscriber(app, u["ta"])
    await filtered.subscribe("notes/*" + options(filter="title = 'x'"))
    mine = await _note(client, u["a"], title="x")
    theirs = await _note(client, u["b"], title="x")
    await _note(client, u["a"], title="y")
    assert await b.ids() == [theirs]
    assert await guest.ids() == []
    assert len(await su.ids()) == 3
    assert (await a.ids())[0] == mine and len(await a.ids()) == 0  # the outbox was read once
    assert await filtered.ids() == [mine]
    one = Subscriber(app, u["ta"])
    await one.subscribe(f"notes/{mine}")
    await client.patch(f"/api/collections/notes/records/{mine}", json={"title": "x2"})
    events = await one.events()
    assert events == [(f"notes/{mine}", {"action": "update", "record": events[0][1]["record"]})]
    assert events[0][1]["record"]["title"] == "x2" and "secret" not in events[0][1]["record"]
    await client.patch(f"/api/collections/notes/records/{mine}", json={"status": "closed"})
    assert await one.ids() == []  # the view rule no longer matches


async def test_relation_rule_and_expand(app: App, client: TestClient) -> None:
    u = await _setup(client)
    team = (await client.post("/api/collections/teams/records", headers=client.su(),
                              json={"name": "t", "members": [u["a"]]})).json()["id"]
    a, b = Subscriber(app, u["ta"]), Subscriber(app, u["tb"])
    await a.subscribe("shared/*" + options(expand="team"))
    await b.subscribe("shared/*")
    res = await client.post("/api/collections/shared/records", json={"title": "s", "team": team})
    assert res.status_code == 200, res.text
    got = await a.events()
    assert len(got) == 1 and got[0][1]["record"]["expand"]["team"]["id"] == team
    assert await b.events() == []


async def test_delete_is_checked_as_the_record_was(app: App, client: TestClient) -> None:
    u = await _setup(client)
    open_note = await _note(client, u["a"], status="open")
    closed = await _note(client, u["a"], status="closed")
    a = Subscriber(app, u["ta"])
    await a.subscribe(f"notes/{open_note}", f"notes/{closed}", "notes/*")
    for note in (open_note, closed):
        assert (await client.delete(f"/api/collections/notes/records/{note}")).status_code == 204
    events = await a.events()
    # the view rule saw the open note only; the list rule (owner only) saw both
    assert [(e, d["action"], d["record"]["id"]) for e, d in events] == [
        (f"notes/{open_note}", "delete", open_note), ("notes/*", "delete", open_note),
        ("notes/*", "delete", closed)]


async def test_hidden_fields_and_email(app: App, client: TestClient) -> None:
    u = await _setup(client)
    a, su = Subscriber(app, u["ta"]), Subscriber(app, client.superuser_token or "")
    await a.subscribe("notes/*")
    await su.subscribe("notes/*")
    await _note(client, u["a"], secret="s3")
    assert "secret" not in (await a.events())[0][1]["record"]
    assert (await su.events())[0][1]["record"]["secret"] == "s3"
    await client.patch("/api/collections/users", headers=client.su(),
                       json={"listRule": "", "viewRule": "", "manageRule": "name = 'nobody'"})
    b = Subscriber(app, u["tb"])
    for s in (a, b):
        await s.subscribe("users/*")
    await client.patch(f"/api/collections/users/records/{u['a']}", headers=client.su(), json={"name": "A2"})
    assert (await a.events())[0][1]["record"]["email"] == "a@example.com"  # the owner
    assert "email" not in (await b.events())[0][1]["record"]
    await client.patch("/api/collections/users", headers=client.su(), json={"manageRule": "@request.auth.id != ''"})
    await client.patch(f"/api/collections/users/records/{u['a']}", headers=client.su(), json={"name": "A3"})
    assert (await b.events())[0][1]["record"]["email"] == "a@example.com"  # a manager


async def test_auth_binding_mismatch_and_lapse(app: App, client: TestClient) -> None:
    u = await _setup(client)
    s = Subscriber(app)
    await s.subscribe("notes/*")  # a guest
    await s.subscribe("notes/*", token=u["ta"])  # guest -> auth is allowed
    with pytest.raises(BastionError) as refused:
        await s.subscribe("notes/*", token=u["tb"])
    assert refused.value.status == 403
    assert refused.value.message == "The current and the previous request authorization don't match."
    with pytest.raises(BastionError):
        await s.subscribe("notes/*", token="")
    await _note(client, u["a"])
    assert len(await s.ids()) == 1
    # a new password changes the tokenKey: the bound auth lapses, the stream stays a guest's
    res = await client.patch(f"/api/collections/users/records/{u['a']}", headers=client.su(),
                             json={"password": "another-pass-1", "passwordConfirm": "another-pass-1"})
    assert res.status_code == 200, res.text
    await s.events()
    assert s.client.auth is None
    await _note(client, u["a"])
    assert await s.ids() == []
    await s.subscribe("notes/*", token=u["tb"])  # unbound: it may bind again
    assert s.client.auth is not None and s.client.auth.id == u["b"]


async def test_unknown_client_and_limits(app: App, client: TestClient) -> None:
    res = await client.post("/api/realtime", json={"clientId": "nope", "subscriptions": []})
    assert res.status_code == 404 and res.json()["message"] == "Missing or invalid client id."
    s = Subscriber(app)  # the address httpx's ASGI transport gives
    topics = [f"notes/{i}" for i in range(1000)]
    res = await client.post("/api/realtime", json={"clientId": s.client.id, "subscriptions": topics})
    assert res.status_code == 204 and len(s.client.topics) == 1000
    res = await client.post("/api/realtime", json={"clientId": s.client.id, "subscriptions": [*topics, "x"]})
    assert res.status_code == 400 and res.json()["data"]["subscriptions"]["code"] == "validation_length_too_long"
    res = await client.post("/api/realtime", json={"clientId": s.client.id, "subscriptions": ["x" * 2501]})
    assert res.status_code == 400 and "0" in res.json()["data"]["subscriptions"]
    res = await client.post("/api/realtime", json={"clientId": "", "subscriptions": []})
    assert res.json()["data"]["clientId"]["code"] == "validation_required"
    assert len(s.client.topics) == 1000  # a refused request changed nothing
    other = Subscriber(app, ip="10.0.0.9")
    res = await client.post("/api/realtime", json={"clientId": other.client.id, "subscriptions": []})
    assert res.status_code == 400 and res.json()["message"] == "Invalid realtime client."


async def test_rollback_sends_nothing(app: App, client: TestClient) -> None:
    u = await _setup(client)
    await client.patch("/api/settings", headers=client.su(), json={"batch": {"enabled": True}})
    su = Subscriber(app, client.superuser_token or "")
    await su.subscribe("notes/*")
    res = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"owner": u["a"], "title": "kept?"}},
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"owner": "missing-user-id"}}]})
    assert res.status_code == 400, res.text
    assert await su.events() == []
    res = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"owner": u["a"], "title": "1"}},
        {"method": "POST", "url": "/api/collections/notes/records", "body": {"owner": u["a"], "title": "2"}}]})
    assert res.status_code == 200, res.text
    assert [d["record"]["title"] for _, d in await su.events()] == ["1", "2"]


@pytest.mark.parametrize("scope_exit", [False, True])
async def test_scope_exit_deletes(app: App, client: TestClient, scope_exit: bool) -> None:
    u = await _setup(client)
    await client.patch("/api/settings", headers=client.su(), json={"realtime": {"scopeExitDeletes": scope_exit}})
    note = await _note(client, u["a"], title="x")
    a = Subscriber(app, u["ta"])
    await a.subscribe("notes/*" + options(filter="title = 'x'"))
    await client.patch(f"/api/collections/notes/records/{note}", json={"title": "y"})
    events = await a.events()
    if scope_exit:
        assert events == [("notes/*" + options(filter="title = 'x'"), {"action": "delete", "record": {
            "collectionId": events[0][1]["record"]["collectionId"], "collectionName": "notes", "id": note}})]
    else:
        assert events == []
    await client.patch(f"/api/collections/notes/records/{note}", json={"title": "z"})
    assert await a.events() == []  # it was out of scope before too


async def test_slow_reader_is_dropped(app: App, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realtime_client, "MAX_QUEUED", 10)
    u = await _setup(client)
    slow, reader = Subscriber(app, client.superuser_token or ""), Subscriber(app, client.superuser_token or "")
    await slow.subscribe("notes/*")
    await reader.subscribe("notes/*")
    for _ in range(12):
        await _note(client, u["a"], title="x")
        assert len(await reader.events()) == 1  # a client that reads keeps up
    assert slow.client.closed and "reads too slowly" in slow.client.closed
    assert slow.client.take() == b""  # what it did not read is gone
    assert not reader.client.closed


async def test_password_reset_unbinds_and_is_an_update(app: App, client: TestClient, inbox: Inbox) -> None:
    u = await _setup(client)
    s = Subscriber(app, u["ta"])
    await s.subscribe("notes/*")
    su = Subscriber(app, client.superuser_token or "")
    await su.subscribe(f"users/{u['a']}")
    assert (await client.post("/api/collections/users/request-password-reset",
                              json={"email": "a@example.com"})).status_code == 204
    token = token_in(Inbox.body(await inbox.wait(1)))
    res = await client.post("/api/collections/users/confirm-password-reset",
                            json={"token": token, "password": "new-password-1", "passwordConfirm": "new-password-1"})
    assert res.status_code == 204
    assert [d["action"] for _, d in await su.events()] == ["update"]
    assert s.client.auth is None  # the reset changed the tokenKey: the stream is a guest's now


async def test_api_keys_bind_and_their_revocation_unbinds(app: App, client: TestClient) -> None:
    u = await _setup(client)
    notes = (await client.get("/api/collections/notes", headers=client.su())).json()["id"]
    made = await client.post("/api/api-keys", headers=client.su(), json={
        "name": "feed", "collections": [notes], "actions": ["list"]})
    assert made.status_code == 200, made.text
    key = made.json()
    s = Subscriber(app, key["key"])
    await s.subscribe("notes/*", "users/*")
    await _note(client, u["a"])
    await client.patch(f"/api/collections/users/records/{u['a']}", headers=client.su(), json={"name": "Z"})
    assert [e for e, _ in await s.events()] == ["notes/*"]  # the key allows listing notes only
    assert (await client.delete(f"/api/api-keys/{key['id']}", headers=client.su())).status_code == 204
    await _note(client, u["a"])
    assert await s.events() == []
    assert s.client.api_key is None


async def test_one_address_holds_a_bounded_amount(app: App, client: TestClient) -> None:
    hub = app.realtime.hub
    hub.limits = dataclasses.replace(hub.limits, per_ip=3, topic_chars_per_ip=5000)
    held = [Subscriber(app, ip="10.1.1.1") for _ in range(3)]
    hub.limits = dataclasses.replace(hub.limits, clients=len(hub.clients) + 1)
    Subscriber(app, ip="10.9.9.9")
    with pytest.raises(BastionError) as full:
        Subscriber(app, ip="10.9.9.8")
    assert full.value.status == 503  # the process holds as many streams as it may
    hub.limits = dataclasses.replace(hub.limits, clients=1000)
    with pytest.raises(BastionError) as refused:
        Subscriber(app, ip="10.1.1.1")
    assert refused.value.status == 429
    Subscriber(app, ip="10.1.1.2")  # another address is not affected
    await held[0].subscribe("a" * 2400, "b" * 2400)
    with pytest.raises(BastionError) as refused:
        await held[1].subscribe("c" * 400)
    assert refused.value.status == 429 and len(held[1].client.topics) == 0
    await held[0].subscribe("a" * 2400)  # replacing frees what the old topics held
    await held[1].subscribe("c" * 400)
    held[0].close()
    Subscriber(app, ip="10.1.1.1")  # a closed stream frees its place
    await held[2].subscribe("d" * 4000)


async def test_one_client_costs_a_bounded_number_of_checks_per_change(app: App, client: TestClient) -> None:
    u = await _setup(client)
    greedy = Subscriber(app, u["ta"])
    await greedy.subscribe(*("notes/*" + options(filter=f"title != 'n{i}'") for i in range(MAX_CHECKS_PER_CLIENT + 50)))
    modest = Subscriber(app, u["ta"])
    await modest.subscribe("notes/*" + options(filter="title != 'other'"))
    await _note(client, u["a"], title="t")
    assert len(await greedy.events()) == MAX_CHECKS_PER_CLIENT
    assert len(await modest.events()) == 1  # its own budget
