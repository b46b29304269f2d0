"""``core.ports.EventBus`` for one process: a published message goes straight to the
receiver, on a later turn of the event loop (never inside ``publish``), in order."""

from __future__ import annotations

import asyncio

from bastion.adapters.bus_frames import deliver_safely
from bastion.core.ports import Deliver


class MemoryBus:
    """Implements ``core.ports.EventBus`` within one process."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._closed = False

    async def start(self, deliver: Deliver) -> None:
        if not self._closed:
            self._deliver = deliver

    async def publish(self, message: bytes) -> None:
        if self._deliver is not None:
            # call_soon runs callbacks in the order they were scheduled.
            asyncio.get_running_loop().call_soon(self._hand_over, message)

    def _hand_over(self, message: bytes) -> None:
        if self._deliver is not None:  # not closed meanwhile
            deliver_safely(self._deliver, message)

    async def close(self) -> None:
        self._closed = True
        self._deliver = None
