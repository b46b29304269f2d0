"""The bus over Redis pub/sub, two buses standing for two processes."""

from __future__ import annotations

import logging
import os

import pytest
from redis import asyncio as aioredis

from bastion.adapters.bus import open_bus
from bastion.adapters.bus_redis import RedisBus
from bastion.core.ports import EventBus
from tests.bus.helpers import BusContract, Inbox, channel_name, resumed, service_or_skip, unreachable

REDIS_URL = os.environ.get("BASTION_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def url() -> str:
    service_or_skip(REDIS_URL)
    return REDIS_URL


class TestRedisBus(BusContract):
    @pytest.fixture(autouse=True)
    def _server(self, url: str) -> None:
        self.url = url

    def make(self, channel: str) -> EventBus:
        bus = open_bus(self.url, None, None, 0, channel)
        assert isinstance(bus, RedisBus)
        return bus


async def test_delivery_resumes_after_the_subscriptions_are_killed(
        url: str, caplog: pytest.LogCaptureFixture) -> None:
    channel = channel_name()
    buses = [RedisBus(url, channel) for _ in range(2)]
    inboxes = [Inbox(), Inbox()]
    admin = aioredis.Redis.from_url(url)
    try:
        for bus, inbox in zip(buses, inboxes, strict=True):
            await bus.start(inbox)
        with caplog.at_level(logging.INFO, logger="bastion.bus"):
            clients = await admin.client_list()
            ours = [c["id"] for c in clients if c["name"] == f"bastion-bus-{channel}" and c["sub"] == "1"]
            assert len(ours) == 2
            for client_id in ours:
                await admin.client_kill_filter(_id=client_id)
            await resumed(buses[0], inboxes)
        assert "subscribing on Redis failed" in caplog.text
        assert "subscribing on Redis works again" in caplog.text
    finally:
        await admin.aclose()
        for bus in buses:
            await bus.close()


async def test_publishing_to_an_unreachable_server_logs_and_does_not_raise(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = RedisBus("redis://127.0.0.1:1/0", channel_name())
    await unreachable(bus, caplog, "publishing on Redis failed", "subscribing on Redis failed")
