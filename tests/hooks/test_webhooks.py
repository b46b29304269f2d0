"""Webhooks with a real receiver on 127.0.0.1, on every engine: deliveries queued in the
write's transaction (none for a rolled-back write), signed as Standard Webhooks says
(checked by the ``standardwebhooks`` package, with two secrets after a rotation),
retried when the receiver fails, kept as dead letters and replayed, the webhook
disabled after its run of failures, and private addresses refused unless allowed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from bastion.core.app import App
from bastion.core.errors import BadRequest
from bastion.core.hooks import jobs as jobs_module
from bastion.core.hooks.jobs import JobKind
from bastion.core.hooks.records import RecordEvent
from bastion.testing import TestClient

pytestmark = pytest.mark.backends


class Receiver:
    """An HTTP endpoint that fails its first ``failing`` requests with 500."""

    def __init__(self, failing: int = 0):
        self.failing = failing
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.calls = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.calls += 1
        status = 500 if self.calls <= self.failing else 204
        if status == 204:
            self.received.append((headers, body))
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver()
    server = await asyncio.start_server(got.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield got, f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()


@pytest.fixture
async def worker(app: App, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.setattr(jobs_module, "POLL_EVERY", 0.05)
    app.webhooks_allow_private = True  # the receiver is on 127.0.0.1
    app.webhooks.kind = JobKind(app.webhooks.kind.name, app.webhooks.kind.handler, retries=2, timeout=5, backoff=1.0)
    task = asyncio.create_task(app.jobs.run_forever())
    try:
        yield
    finally:
        task.cancel()


async def _until(check: Any, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")


async def _notes(client: TestClient) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "createRule": "", "updateRule": "", "fields": [
            {"name": "title", "type": "text"}, {"name": "secret", "type": "text", "hidden": True}]})
    assert res.status_code == 200, res.text


async def test_signed_deliveries_follow_the_commit(
        app: App, client: TestClient, receiver: tuple[Receiver, str], worker: None) -> None:
    got, url = receiver
    await _notes(client)
    made = await client.post("/api/webhooks", headers=client.su(), json={
        "url": url, "collections": ["notes"], "actions": ["create", "update"]})
    assert made.status_code == 200, made.text
    hook = made.json()
    assert hook["enabled"] and len(hook["secrets"]) == 1 and hook["secrets"][0].startswith("whsec_")
    assert "secrets" not in (await client.get(f"/api/webhooks/{hook['id']}", headers=client.su())).json()

    @app.on_record_create("notes")
    async def refuse(e: RecordEvent) -> None:
        await e.next()
        if e.body.get("title") == "undone":
            raise BadRequest("refused")

    assert (await client.post("/api/collections/notes/records", json={"title": "undone"})).status_code == 400
    note = (await client.post("/api/collections/notes/records", json={"title": "a", "secret": "s"},
                              headers=client.su())).json()
    await _until(lambda: len(got.received) == 1)
    headers, body = got.received[0]
    payload = Webhook(hook["secrets"][0]).verify(body, headers)
    assert payload["type"] == "record.created" and payload["data"]["record"]["id"] == note["id"]
    assert payload["data"]["record"]["secret"] == "s"  # a superuser's view: hidden fields, no secrets
    rotated = (await client.post(f"/api/webhooks/{hook['id']}/rotate", headers=client.su())).json()
    assert rotated["secrets"][1] == hook["secrets"][0] and rotated["secrets"][0] != hook["secrets"][0]
    await client.patch(f"/api/collections/notes/records/{note['id']}", json={"title": "b"})
    await _until(lambda: len(got.received) == 2)
    headers, body = got.received[1]
    for secret in rotated["secrets"]:  # both the new and the previous secret verify
        assert Webhook(secret).verify(body, headers)["type"] == "record.updated"
    await asyncio.sleep(0.3)
    assert len(got.received) == 2  # nothing for the rolled-back create; deletes were not asked for
    assert json.loads(got.received[0][1])["data"]["collection"] == "notes"


async def test_failures_are_retried_kept_and_disable_the_webhook(
        app: App, client: TestClient, receiver: tuple[Receiver, str], worker: None) -> None:
    got, url = receiver
    await _notes(client)
    hook = (await client.post("/api/webhooks", headers=client.su(), json={
        "url": url, "maxFailures": 2})).json()
    got.failing = 2  # the first two attempts fail, the third (the last retry) succeeds
    await client.post("/api/collections/notes/records", json={"title": "retried"})
    await _until(lambda: len(got.received) == 1)
    assert got.calls == 3
    got.failing = 1000  # from now on it always fails
    for title in ("lost-1", "lost-2"):
        await client.post("/api/collections/notes/records", json={"title": title})

    async def disabled() -> bool:
        return not (await client.get(f"/api/webhooks/{hook['id']}", headers=client.su())).json()["enabled"]
    await _until(disabled)
    dead = (await client.get("/api/webhooks/deliveries/failed", headers=client.su())).json()
    assert len(dead) == 2 and dead[0]["lastError"].startswith("RuntimeError: the endpoint answered 500")
    await client.post("/api/collections/notes/records", json={"title": "while-disabled"})
    await asyncio.sleep(0.3)
    assert len(await app.jobs.list()) == 3 + 0  # a disabled webhook queues nothing
    got.failing = 0
    await client.patch(f"/api/webhooks/{hook['id']}", headers=client.su(), json={"enabled": True})
    replay = await client.post(f"/api/webhooks/deliveries/{dead[0]['id']}/replay", headers=client.su())
    assert replay.status_code == 204
    await _until(lambda: len(got.received) == 2)
    assert (await client.post("/api/webhooks/deliveries/nope/replay", headers=client.su())).status_code == 404


async def test_private_addresses_are_refused_unless_allowed(
        app: App, client: TestClient, receiver: tuple[Receiver, str], worker: None) -> None:
    got, url = receiver
    await _notes(client)
    app.webhooks_allow_private = False
    await client.post("/api/webhooks", headers=client.su(), json={"url": url})
    await client.post("/api/collections/notes/records", json={"title": "x"})

    async def failed() -> bool:
        return bool(await app.jobs.list("failed"))
    await _until(failed)
    assert got.calls == 0  # never connected
    assert "which is not a public address" in (await app.jobs.list("failed"))[0]["lastError"]
    bad = await client.post("/api/webhooks", headers=client.su(), json={"url": "ftp://x", "actions": ["drop"]})
    assert bad.status_code == 400 and set(bad.json()["data"]) == {"url", "actions"}
    assert (await client.get("/api/webhooks")).status_code == 401
