"""The in-memory bus: one process."""

from __future__ import annotations

import logging

import pytest

from bastion.adapters.bus import open_bus
from bastion.core.ports import EventBus
from bastion.core.realtime.service import MemoryBus
from tests.bus.helpers import BusContract, Inbox


class TestMemoryBus(BusContract):
    processes = 1

    def make(self, channel: str) -> EventBus:
        bus = open_bus("", None, None, 0, channel)
        assert isinstance(bus, MemoryBus)
        return bus


async def test_publish_does_not_call_the_receiver_itself() -> None:
    bus, inbox = MemoryBus(), Inbox()
    await bus.start(inbox)
    await bus.publish(b"one")
    assert inbox.messages == []  # not re-entered from within publish
    assert await inbox.wait_for(1) == [b"one"]
    await bus.close()


async def test_a_failing_receiver_is_logged_and_the_next_message_still_arrives(
        caplog: pytest.LogCaptureFixture) -> None:
    got: list[bytes] = []

    def deliver(message: bytes) -> None:
        got.append(message)
        if message == b"bad":
            raise RuntimeError("receiver bug")

    bus = MemoryBus()
    await bus.start(deliver)
    with caplog.at_level(logging.ERROR, logger="bastion.bus"):
        await bus.publish(b"bad")
        await bus.publish(b"good")
        ok = Inbox()
        ok.messages = got
        await ok.wait_for(2)
    assert got == [b"bad", b"good"]
    assert "the receiver failed" in caplog.text
    await bus.close()
