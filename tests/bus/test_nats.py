"""The bus over core NATS, two buses standing for two processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from bastion.adapters.bus import open_bus
from bastion.adapters.bus_nats import NatsBus
from bastion.core.ports import EventBus
from tests.bus.helpers import (
    BusContract,
    Inbox,
    Proxy,
    channel_name,
    resumed,
    service_or_skip,
    unreachable,
)

NATS_URL = os.environ.get("BASTION_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture
def url() -> str:
    service_or_skip(NATS_URL)
    return NATS_URL


class TestNatsBus(BusContract):
    @pytest.fixture(autouse=True)
    def _server(self, url: str) -> None:
        self.url = url

    def make(self, channel: str) -> EventBus:
        bus = open_bus(self.url, None, None, 0, channel)
        assert isinstance(bus, NatsBus)
        return bus


async def test_delivery_resumes_after_the_connections_are_cut(url: str, caplog: pytest.LogCaptureFixture) -> None:
    parts = urlsplit(url)
    proxy = await Proxy(parts.hostname or "127.0.0.1", parts.port or 4222).start()
    channel = channel_name()
    buses = [NatsBus(f"nats://127.0.0.1:{proxy.port}", channel) for _ in range(2)]
    inboxes = [Inbox(), Inbox()]
    try:
        for bus, inbox in zip(buses, inboxes, strict=True):
            await bus.start(inbox)
        with caplog.at_level(logging.INFO, logger="bastion.bus"):
            assert proxy.cut() == 2
            await resumed(buses[0], inboxes)
        assert "the connection to NATS works again" in caplog.text
    finally:
        for bus in buses:
            await bus.close()
        await proxy.close()


async def test_an_unreachable_server_is_logged_and_publishing_does_not_raise(
        caplog: pytest.LogCaptureFixture) -> None:
    await unreachable(NatsBus("nats://127.0.0.1:1", channel_name()), caplog, "the connection to NATS failed")


def test_nats_is_imported_only_by_a_nats_bus() -> None:
    probe = ("import sys; from bastion.adapters.bus import open_bus; import bastion.adapters.bus_nats; "
             "open_bus('nats://127.0.0.1:4222', None, None, 0, 'x'); print('nats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
