"""The relay to real brokers on this machine (Redis Streams, NATS JetStream): each event
published once, each record's events in order; an unreachable broker delays delivery
and loses nothing; two relays at once never publish one event twice."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from redis import asyncio as aioredis

from bastion.adapters.events import open_publisher
from bastion.core.app import App
from bastion.core.ports import EventPublisher
from bastion.testing.servers import free_port
from tests.bus.helpers import channel_name, service_or_skip
from tests.events.conftest import MakeApp, make_notes, until

pytestmark = pytest.mark.backends

REDIS_URL = os.environ.get("BASTION_TEST_REDIS", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("BASTION_TEST_NATS", "nats://127.0.0.1:4222")


class Redis:
    """Reads back what the relay put in a Redis stream."""

    def __init__(self, stream: str):
        self.url, self.stream = REDIS_URL, stream
        self.redis = aioredis.Redis.from_url(REDIS_URL)

    def unreachable(self) -> str:
        return f"redis://127.0.0.1:{free_port()}/0"

    async def events(self) -> list[dict[str, Any]]:
        entries = await self.redis.xrange(self.stream)
        return [orjson.loads(fields[b"event"]) | {"_id": fields[b"id"].decode()} for _key, fields in entries]

    async def aclose(self) -> None:
        await self.redis.delete(self.stream)
        await self.redis.aclose()


class JetStream:
    """Reads back what the relay put in a JetStream stream."""

    def __init__(self, stream: str):
        self.url, self.stream = NATS_URL, stream
        self.nc: Any = None

    def unreachable(self) -> str:
        return f"nats://127.0.0.1:{free_port()}"

    async def events(self) -> list[dict[str, Any]]:
        import nats
        from nats.js.errors import NotFoundError

        if self.nc is None:
            self.nc = await nats.connect(NATS_URL)
        js = self.nc.jetstream()
        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            return []
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            msg = await js.get_msg(self.stream, seq)
            out.append(orjson.loads(msg.data) | {"_id": msg.headers["Nats-Msg-Id"]})
        return out

    async def aclose(self) -> None:
        if self.nc is not None:
            await self.nc.jetstream().delete_stream(self.stream)
            await self.nc.close()


@pytest.fixture(params=["redis", "nats"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Redis | JetStream]:
    stream = channel_name("ev")
    if request.param == "redis":
        service_or_skip(REDIS_URL)
        made: Redis | JetStream = Redis(stream)
    else:
        service_or_skip(NATS_URL)
        made = JetStream(stream)
    try:
        yield made
    finally:
        await made.aclose()


def _publisher(url: str, broker: Redis | JetStream) -> EventPublisher:
    publisher = open_publisher(url, broker.stream)
    assert publisher is not None
    return publisher


async def _write(client: Any, notes: int, updates: int) -> list[str]:
    """``notes`` records, each then updated ``updates`` times: the record ids."""
    ids = []
    for i in range(notes):
        res = await client.post("/api/collections/notes/records", json={"title": f"n{i} v0"})
        assert res.status_code == 200, res.text
        ids.append(res.json()["id"])
    for v in range(1, updates + 1):
        for i, rid in enumerate(ids):
            res = await client.patch(f"/api/collections/notes/records/{rid}", json={"title": f"n{i} v{v}"})
            assert res.status_code == 200, res.text
    return ids


def _check_once_in_order(events: list[dict[str, Any]], ids: list[str], updates: int) -> None:
    """An idempotent consumer's view: each event once, each record's versions in order."""
    seen: dict[str, dict[str, Any]] = {}
    for event in events:
        assert event["_id"] == event["id"]
        seen.setdefault(event["id"], event)
    by_record: dict[str, list[str]] = {}
    for event in seen.values():
        by_record.setdefault(event["subject"], []).append(event["data"]["record"]["title"])
    assert set(by_record) == set(ids)
    for i, rid in enumerate(ids):
        assert by_record[rid] == [f"n{i} v{v}" for v in range(updates + 1)]
    assert [e["sequence"] for e in seen.values()] == sorted(e["sequence"] for e in seen.values())


async def test_each_event_is_published_once_in_order(
        make_app: MakeApp, client_of: Callable[[App], Any], broker: Redis | JetStream) -> None:
    app = await make_app(_publisher(broker.url, broker))
    async with client_of(app) as client:
        await make_notes(client)
        ids = await _write(client, 5, 3)
    await until(lambda: _count(broker, 20))
    events = await broker.events()
    assert len(events) == 20 and len({e["id"] for e in events}) == 20
    _check_once_in_order(events, ids, 3)


async def test_an_unreachable_broker_delays_and_loses_nothing(
        make_app: MakeApp, client_of: Callable[[App], Any], broker: Redis | JetStream) -> None:
    app = await make_app(_publisher(broker.unreachable(), broker))
    relay = app.events.relay
    assert relay is not None
    async with client_of(app) as client:
        await make_notes(client)
        ids = await _write(client, 4, 2)
    await until(lambda: _failed_once(app))
    assert await app.events.outbox.count(published=False) == 12
    assert await broker.events() == []
    down, relay.publisher = relay.publisher, _publisher(broker.url, broker)  # the broker is back
    await down.close()
    await until(lambda: _count(broker, 12))
    _check_once_in_order(await broker.events(), ids, 2)
    assert await app.events.outbox.count(published=False) == 0


async def test_two_relays_at_once_never_publish_one_event_twice(
        make_app: MakeApp, client_of: Callable[[App], Any], broker: Redis | JetStream) -> None:
    apps = [await make_app(_publisher(broker.url, broker)) for _ in range(2)]
    ids: list[str] = []
    async with client_of(apps[0]) as first, client_of(apps[1]) as second:
        await make_notes(first)
        await apps[1].collections.load()
        for client in (first, second, first):
            ids += await _write(client, 4, 0)
    await until(lambda: _count(broker, 12))
    await until(lambda: _none_pending(apps[0]))
    events = await broker.events()
    assert len(events) == 12 and len({e["id"] for e in events}) == 12  # stored once each, not deduped
    assert sorted(e["subject"] for e in events) == sorted(ids)
    assert sum(app.events.relay.published for app in apps if app.events.relay) == 12


async def _count(broker: Redis | JetStream, n: int) -> bool:
    return len(await broker.events()) >= n


async def _none_pending(app: App) -> bool:
    return await app.events.outbox.count(published=False) == 0


async def _failed_once(app: App) -> bool:
    relay = app.events.relay
    return relay is not None and relay.failures >= 1
