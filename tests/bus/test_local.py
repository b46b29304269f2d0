"""The bus between the worker processes of one machine: Unix datagram sockets in the
supervisor's shared folder, two buses standing for two workers."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.adapters.bus import open_bus
from bastion.adapters.bus_local import SiblingBus
from bastion.core.ports import EventBus
from tests.bus.helpers import BusContract, Inbox, settle


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder as the supervisor makes (short: a socket path has at most 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="bus-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class TestSiblingBus(BusContract):
    @pytest.fixture(autouse=True)
    def _folder(self, shared: Path) -> None:
        self.shared = shared
        self.workers = 0

    def make(self, channel: str) -> EventBus:
        bus = open_bus("", "mysql://root@127.0.0.1/db", self.shared, self.workers, channel)
        assert isinstance(bus, SiblingBus)
        self.workers += 1
        return bus


async def test_siblings_that_are_gone_are_skipped(shared: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b, c = (SiblingBus(shared, i) for i in range(3))
    inboxes = [Inbox(), Inbox(), Inbox()]
    for bus, inbox in zip((a, b, c), inboxes, strict=True):
        await bus.start(inbox)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # a worker killed without cleaning up
    stale.bind(str(shared / "bus-9.sock"))
    stale.close()
    await a.publish(b"one")
    await inboxes[2].wait_for(1)
    await c.close()
    with caplog.at_level(logging.WARNING, logger="bastion.bus"):
        await a.publish(b"two")
        await settle(a, inboxes[1])
    assert inboxes[0].messages == inboxes[1].messages == [b"one", b"two", b"settled"]
    assert inboxes[2].messages == [b"one"]
    assert not caplog.records
    assert sorted(p.name for p in shared.iterdir()) == ["bus-0.sock", "bus-1.sock", "bus-9.sock"]
    await a.close()
    await b.close()


async def test_a_replaced_worker_receives_at_once(shared: Path) -> None:
    a, b = SiblingBus(shared, 0), SiblingBus(shared, 1)
    inbox_a, inbox_b = Inbox(), Inbox()
    await a.start(inbox_a)
    await b.start(inbox_b)
    await settle(a, inbox_b, b"first")
    await b.close()
    b2, inbox_b2 = SiblingBus(shared, 1), Inbox()
    await b2.start(inbox_b2)
    await a.publish(b"to the new one")
    assert await inbox_b2.wait_for(1) == [b"to the new one"]
    for bus in (a, b2):
        await bus.close()


async def test_a_sibling_that_does_not_read_never_blocks_the_loop(
        shared: Path, caplog: pytest.LogCaptureFixture) -> None:
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    stuck.bind(str(shared / "bus-7.sock"))
    a, inbox = SiblingBus(shared, 0), Inbox()
    await a.start(inbox)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        with caplog.at_level(logging.WARNING, logger="bastion.bus"):
            started = time.monotonic()
            for i in range(100):
                await a.publish(b"%d" % i)
            elapsed = time.monotonic() - started
        assert elapsed < 3  # one bounded wait, then no more waiting for it
        assert ticks >= 5  # the loop kept running meanwhile
        assert await inbox.wait_for(100) == [b"%d" % i for i in range(100)]
        assert caplog.text.count("reads too slowly") == 1
    finally:
        ticker.cancel()
        stuck.close()
        await a.close()


def test_a_socket_path_too_long_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="longer than a Unix socket allows"):
        SiblingBus(Path("/tmp") / ("x" * 120), 0)
