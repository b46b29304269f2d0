"""The app's own hooks around writes and reads, on every engine: a before-write hook that
rejects with a field error leaves nothing written and no event; one that changes the
body changes what is written; after-commit hooks that raise are logged and undo
nothing; error hooks see the failure; list and view hooks change the answer; hook files
load from a folder and a broken one names its file and line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bastion.core.app import App
from bastion.core.errors import FieldError, Forbidden, ValidationFailed
from bastion.core.hooks.records import AuthEvent, CommittedEvent, ListEvent, MailEvent, RecordEvent, ViewEvent
from bastion.testing import HookFileError, Inbox, TestClient, create_user, load_hooks, sign_in, token_for

pytestmark = pytest.mark.backends


async def _notes(client: TestClient) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"}]})
    assert res.status_code == 200, res.text


async def _titles(client: TestClient) -> list[str]:
    items = (await client.get("/api/collections/notes/records", params={"sort": "title"})).json()["items"]
    return [r["title"] for r in items]


async def test_before_hooks_change_or_refuse_the_write(app: App, client: TestClient) -> None:
    await _notes(client)
    heard: list[str] = []

    async def committed(changes: Any) -> None:
        heard.extend(c.action for c in changes)

    app.records.listeners.append(committed)

    @app.on_record_create("notes")
    async def slug(e: RecordEvent) -> None:
        if e.body.get("title") == "forbidden":
            raise ValidationFailed("Failed to create record.", {
                "title": FieldError("validation_forbidden_title", "This title is not allowed.")})
        e.body["slug"] = str(e.body.get("title", "")).lower().replace(" ", "-")
        await e.next()
        assert e.record is not None and e.conn is not None  # written, not yet committed

    ok = await client.post("/api/collections/notes/records", json={"title": "Hello World"})
    assert ok.status_code == 200 and ok.json()["slug"] == "hello-world"
    refused = await client.post("/api/collections/notes/records", json={"title": "forbidden"})
    assert refused.status_code == 400
    assert refused.json()["data"]["title"]["code"] == "validation_forbidden_title"
    assert await _titles(client) == ["Hello World"]
    assert heard == ["create"]  # the refused write sent no event


async def test_a_hook_after_next_can_still_undo_and_error_hooks_see_it(app: App, client: TestClient) -> None:
    await _notes(client)
    failures: list[str] = []

    @app.on_record_update("notes")
    async def veto(e: RecordEvent) -> None:
        await e.next()
        if e.record and e.record["title"] == "undo me":
            raise ValidationFailed("Failed to update record.", {"title": FieldError("validation_undo", "No.")})

    @app.on_record_after_update_error()
    async def seen(e: RecordEvent) -> None:
        failures.append(f"{e.collection.name} {e.record_id} {type(e.error).__name__}")
        await e.next()

    note = (await client.post("/api/collections/notes/records", json={"title": "a"})).json()
    res = await client.patch(f"/api/collections/notes/records/{note['id']}", json={"title": "undo me"})
    assert res.status_code == 400
    assert await _titles(client) == ["a"]  # the update was rolled back
    assert failures == [f"notes {note['id']} ValidationFailed"]


async def test_a_chain_that_stops_cancels_the_write(app: App, client: TestClient) -> None:
    await _notes(client)

    @app.on_record_delete("notes")
    async def keep(e: RecordEvent) -> None:
        return None  # never calls next(): the delete does not happen

    note = (await client.post("/api/collections/notes/records", json={"title": "kept"})).json()
    res = await client.delete(f"/api/collections/notes/records/{note['id']}")
    assert res.status_code == 400 and "hook" in res.json()["message"]
    assert await _titles(client) == ["kept"]


async def test_after_commit_hooks_run_in_order_and_their_errors_undo_nothing(
        app: App, client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    await _notes(client)
    order: list[str] = []

    @app.on_record_after_create_success("notes", priority=1)
    async def second(e: CommittedEvent) -> None:
        order.append(f"second {e.record['title']}")
        raise RuntimeError("a bug in a hook")

    @app.on_record_after_create_success("notes")
    async def first(e: CommittedEvent) -> None:
        order.append(f"first {e.record['title']}")
        await e.next()

    @app.on_record_after_create_success("other")
    async def never(e: CommittedEvent) -> None:
        order.append("never")

    with caplog.at_level(logging.ERROR, logger="bastion.hooks"):
        res = await client.post("/api/collections/notes/records", json={"title": "x"})
    assert res.status_code == 200
    assert order == ["first x", "second x"]
    assert "a bug in a hook" in caplog.text
    assert await _titles(client) == ["x"]


async def test_list_and_view_hooks_change_the_answer(app: App, client: TestClient) -> None:
    await _notes(client)
    note = (await client.post("/api/collections/notes/records", json={"title": "a"})).json()

    @app.on_records_list_request("notes")
    async def count(e: ListEvent) -> None:
        await e.next()
        assert e.result is not None
        e.result["hooked"] = len(e.result["items"])

    @app.on_record_view_request("notes")
    async def upper(e: ViewEvent) -> None:
        await e.next()
        assert e.record is not None
        e.record["title"] = e.record["title"].upper()

    assert (await client.get("/api/collections/notes/records")).json()["hooked"] == 1
    assert (await client.get(f"/api/collections/notes/records/{note['id']}")).json()["title"] == "A"


async def test_hook_files_load_and_a_broken_one_is_named(app: App, client: TestClient, tmp_path: Path) -> None:
    await _notes(client)
    folder = tmp_path / "bastion_hooks"
    folder.mkdir()
    (folder / "stamp.py").write_text(
        "def setup(app):\n"
        "    @app.on_record_create('notes')\n"
        "    async def stamp(e):\n"
        "        e.body['slug'] = 'from-a-file'\n"
        "        await e.next()\n")
    assert load_hooks(app, folder) == ["stamp.py"]
    res = await client.post("/api/collections/notes/records", json={"title": "a"})
    assert res.json()["slug"] == "from-a-file"
    (folder / "z_broken.py").write_text("def setup(app):\n    x = 1\n    raise ValueError('bad hook')\n")
    with pytest.raises(HookFileError) as broken:
        load_hooks(app, folder)
    assert "z_broken.py, line 3: ValueError: bad hook" in str(broken.value)
    res = await client.post("/api/collections/notes/records", json={"title": "b"})
    assert res.json()["slug"] == "from-a-file"  # the hooks already loaded stay


async def test_auth_hooks_see_each_sign_in_and_may_refuse(app: App, client: TestClient) -> None:
    seen: list[str] = []

    @app.on_record_auth_request("users")
    async def audit(e: AuthEvent) -> None:
        if e.record.get("email") == "blocked@example.com":
            raise Forbidden("This account is suspended.")
        await e.next()
        seen.append(f"{e.method} {e.record['email']} {bool(e.token)}")
        e.meta = {"greeting": "hi"}

    await token_for(client, "a@example.com")
    await create_user(client, "blocked@example.com")
    refused = await sign_in(client, "blocked@example.com")
    assert refused.status_code == 403 and refused.json()["message"] == "This account is suspended."
    res = await sign_in(client, "a@example.com")
    assert res.json()["meta"] == {"greeting": "hi"}
    refreshed = await client.post("/api/collections/users/auth-refresh",
                                  headers={"Authorization": res.json()["token"]})
    assert refreshed.status_code == 200
    assert seen == ["password a@example.com True", "password a@example.com True", "refresh a@example.com True"]


async def test_mail_hooks_change_or_cancel_a_message(app: App, client: TestClient, inbox: Inbox) -> None:
    @app.on_mailer_send("users")
    async def brand(e: MailEvent) -> None:
        if e.to.startswith("quiet"):
            return  # cancelled
        e.subject = f"[Acme] {e.subject}"
        await e.next()

    await create_user(client, "loud@example.com")
    await create_user(client, "quiet@example.com")
    for email in ("quiet@example.com", "loud@example.com"):
        assert (await client.post("/api/collections/users/request-password-reset",
                                  json={"email": email})).status_code == 204
    message = await inbox.wait(1)
    assert message["To"] == "loud@example.com" and str(message["Subject"]).startswith("[Acme] ")
    await asyncio.sleep(0.3)  # the quiet one, sent in the background too, never comes
    assert len(inbox.messages) == 1
