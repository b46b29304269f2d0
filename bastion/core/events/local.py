"""The in-process broker: the relay hands each event to Python consumers of this
process (``@app.events.consumer``). Each consumer sees each event id once: the ids it
handled are remembered (the last ``SEEN`` of them), so an event the relay publishes
again (after another consumer failed, or after a restart of the relay mid-batch) is
skipped by the consumers that handled it already."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bastion.core.ports import OutboundEvent, PublishFailed

log = logging.getLogger("bastion.events")

# A consumer gets the envelope (``core/events/envelope.py``) as a dict.
Consumer = Callable[[dict[str, Any]], Awaitable[None]]
SEEN = 100_000


class _Subscription:
    def __init__(self, consumer: Consumer):
        self.consumer = consumer
        self.seen: OrderedDict[str, None] = OrderedDict()

    async def deliver(self, event_id: str, envelope: dict[str, Any]) -> None:
        if event_id in self.seen:
            return
        await self.consumer(envelope)
        self.seen[event_id] = None
        if len(self.seen) > SEEN:
            self.seen.popitem(last=False)


class LocalBroker:
    """Implements ``core.ports.EventPublisher`` in this process."""

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []

    def consumer(self, fn: Consumer) -> Consumer:
        """Register ``fn`` (a decorator): it is awaited with every event, in order; if it
        raises, the event is published again later (to the consumers that failed)."""
        self._subscriptions.append(_Subscription(fn))
        return fn

    async def publish(self, event: OutboundEvent) -> None:
        envelope = orjson.loads(event.body)
        for sub in self._subscriptions:
            try:
                await sub.deliver(event.id, envelope)
            except Exception as exc:  # noqa: BLE001 - a consumer's error: retried, not lost
                log.warning("an event consumer failed on %s", event.id, exc_info=True)
                raise PublishFailed(f"a consumer failed: {exc}") from exc

    async def close(self) -> None:
        pass
