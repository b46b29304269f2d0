"""What every bus transport's tests share: collecting what a bus delivers, waiting for
it by polling, the contract every transport passes (``BusContract``) and a TCP relay
whose connections a test can cut (``Proxy``)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest

from bastion.core.ports import EventBus
from tests.services import require_or_skip

WAIT_S = 10.0  # generous: a busy 2-core machine runs other suites at the same time


class Inbox:
    """A ``deliver`` callback that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    def __call__(self, message: bytes) -> None:
        self.messages.append(message)

    async def wait_for(self, count: int, seconds: float = WAIT_S) -> list[bytes]:
        """The messages once there are ``count`` of them (fails after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} messages after {seconds} s"
            await asyncio.sleep(0.005)
        return self.messages


async def until(condition: Callable[[], bool], seconds: float = WAIT_S) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not true within {seconds} s"
        await asyncio.sleep(0.01)


async def resumed(bus: EventBus, inboxes: list[Inbox], seconds: float = WAIT_S) -> None:
    """Publish until every inbox receives again (after a connection was cut)."""
    deadline = time.monotonic() + seconds
    n = 0
    while not all(any(m.startswith(b"again") for m in inbox.messages) for inbox in inboxes):
        assert time.monotonic() < deadline, f"delivery did not resume within {seconds} s"
        n += 1
        await bus.publish(b"again %d" % n)
        await asyncio.sleep(0.05)


async def settle(bus: EventBus, inbox: Inbox, mark: bytes = b"settled") -> None:
    """Publish ``mark`` and wait for it: everything published before it has arrived
    (one publisher's messages keep their order)."""
    await bus.publish(mark)
    deadline = time.monotonic() + WAIT_S
    while mark not in inbox.messages:
        assert time.monotonic() < deadline, "the marker did not arrive"
        await asyncio.sleep(0.005)


def service_or_skip(url: str) -> None:
    """Skip (or fail, when services are required) unless ``url``'s host:port accepts TCP."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return
    except OSError:
        require_or_skip(f"{parts.scheme} is not reachable at {parts.hostname}:{parts.port}")


def channel_name(prefix: str = "t") -> str:
    """A channel no other test (nor another run on this machine) uses."""
    return f"{prefix}_{os.getpid()}_{os.urandom(4).hex()}"


def _ours() -> set[asyncio.Task[object]]:
    return set(asyncio.all_tasks()) - {asyncio.current_task()}  # type: ignore[arg-type]


class BusContract:
    """The tests every transport passes. A subclass provides ``make(channel)``, one bus
    standing for one process, and ``processes``: how many such buses share a channel
    (1 for the in-memory bus)."""

    processes = 2

    def make(self, channel: str) -> EventBus:
        raise NotImplementedError

    @asynccontextmanager
    async def started(self, channel: str = "") -> AsyncIterator[list[tuple[EventBus, Inbox]]]:
        channel = channel or channel_name()
        buses = [(self.make(channel), Inbox()) for _ in range(self.processes)]
        try:
            for bus, inbox in buses:
                await bus.start(inbox)
            yield buses
        finally:
            for bus, _inbox in buses:
                await bus.close()

    async def test_every_bus_receives_every_message_in_publish_order(self) -> None:
        async with self.started() as buses:
            count = 500

            async def burst(bus: EventBus, name: bytes) -> None:
                for i in range(count):
                    await bus.publish(b"%s:%d" % (name, i))

            await asyncio.gather(*(burst(bus, b"p%d" % n) for n, (bus, _) in enumerate(buses)))
            for _bus, inbox in buses:
                got = await inbox.wait_for(count * len(buses))
                for n in range(len(buses)):
                    mine = [m for m in got if m.startswith(b"p%d:" % n)]
                    assert mine == [b"p%d:%d" % (n, i) for i in range(count)]

    async def test_large_messages_arrive_whole(self) -> None:
        async with self.started() as buses:
            medium, large = os.urandom(200 * 1000), os.urandom(3 * 1000 * 1000)
            publisher = buses[-1][0]
            await publisher.publish(medium)
            await publisher.publish(large)
            await publisher.publish(b"")
            for _bus, inbox in buses:
                assert await inbox.wait_for(3) == [medium, large, b""]

    async def test_nothing_is_delivered_before_start_or_after_close(self) -> None:
        channel = channel_name()
        buses = [(self.make(channel), Inbox()) for _ in range(self.processes)]
        try:
            for bus, _inbox in buses:
                await bus.publish(b"before start")  # received by nobody, and it does not raise
            for bus, inbox in buses:
                await bus.start(inbox)
            await buses[-1][0].publish(b"started")
            for _bus, inbox in buses:
                await inbox.wait_for(1)
            closed, closed_inbox = buses[0]
            await closed.close()
            await closed.publish(b"after close")
            await closed.close()  # twice is harmless
            for bus, inbox in buses[1:]:
                await settle(bus, inbox)
            await asyncio.sleep(0.05)  # give a wrong delivery its chance to happen
            assert closed_inbox.messages == [b"started"]
            for _bus, inbox in buses[1:]:
                assert inbox.messages == [b"started", b"settled"]
        finally:
            for bus, _inbox in buses:
                await bus.close()

    async def test_a_closed_bus_leaves_no_task_behind(self) -> None:
        before = _ours()
        async with self.started() as buses:
            await settle(buses[0][0], buses[0][1])
        await until(lambda: not (_ours() - before), 5.0)

    async def test_two_channels_do_not_cross(self) -> None:
        async with self.started() as first, self.started() as second:
            for group, word in ((first, b"first"), (second, b"second")):
                await group[0][0].publish(word)
                await group[0][0].publish(b"end")
            for _bus, inbox in first + second:
                await inbox.wait_for(2)
            await asyncio.sleep(0.05)
            for group, word in ((first, b"first"), (second, b"second")):
                for _bus, inbox in group:
                    assert inbox.messages == [word, b"end"]



class Proxy:
    """A TCP relay to ``host:port`` whose connections a test can cut, as a network
    fault or a server restart would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sink.close()

    def cut(self) -> int:
        """Close every relayed connection; how many there were."""
        count = len(self._writers) // 2
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        return count

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pumps):
            task.cancel()
        if self._pumps:
            await asyncio.wait(self._pumps)


async def unreachable(bus: EventBus, caplog: pytest.LogCaptureFixture, *logged: str) -> None:
    """``bus`` points at a closed port: starting returns at the first failure (retrying
    in the background), publishing neither raises nor blocks, and ``logged`` is said."""
    inbox = Inbox()
    with caplog.at_level(logging.WARNING, logger="bastion.bus"):
        started = time.monotonic()
        await bus.start(inbox)
        for _ in range(20):
            await bus.publish(b"lost")
        assert time.monotonic() - started < 5
    for text in logged:
        assert text in caplog.text
    await bus.close()
    assert inbox.messages == []
