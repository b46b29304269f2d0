"""``core.ports.EventBus`` over core NATS publish/subscribe (nats-py, imported only when
this bus is used).

One connection, opened by ``start``, both publishes and subscribes; the channel is the
subject. A NATS message carries at most the server's ``max_payload`` (1 MiB by
default), so messages travel as ``bus_frames`` frames of that size; publishes are
serialised, which keeps this process's messages in order.

nats-py reconnects by itself (forever, ``RETRY_S`` apart) and subscribes again; while it
reconnects, published messages wait in its buffer (2 MiB) and a publish beyond that is
dropped. A connection silent to ``PING_INTERVAL_S`` pings twice is counted as lost.
A message published before ``start`` has connected is dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bastion.adapters.bus_frames import Framer, Joiner, Outage, check_channel, log, stop_task
from bastion.core.ports import Deliver

CONNECT_TIMEOUT_S = 2
RETRY_S = 1
PING_INTERVAL_S = 20
FLUSH_TIMEOUT_S = 5


class NatsBus:
    """Implements ``core.ports.EventBus`` on NATS; ``url`` is ``nats://`` or ``tls://``."""

    def __init__(self, url: str, channel: str):
        self.url = url
        self.channel = check_channel(channel)
        self._framer = Framer(1024 * 1024)
        self._joiner: Joiner | None = None
        self._nc: Any = None  # nats.aio.client.Client
        self._connecting: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._outage = Outage("the connection to NATS")

    async def start(self, deliver: Deliver) -> None:
        if self._closed or self._connecting is not None:
            return
        from nats.aio.client import Client

        self._joiner = Joiner(deliver)
        self._nc = Client()
        ready = asyncio.get_running_loop().create_future()
        self._connecting = asyncio.create_task(self._connect(ready), name=f"bus {self.channel}: NATS")
        await asyncio.wait([ready, self._connecting], return_when=asyncio.FIRST_COMPLETED)

    async def _connect(self, ready: asyncio.Future[None]) -> None:
        """Connect (retrying until it works), then subscribe; ``ready`` is set once
        subscribed, or at the first failure (the retries go on in the background)."""
        from nats import errors

        async def on_error(exc: Exception) -> None:
            if isinstance(exc, errors.SlowConsumerError):
                log.warning("bus: NATS dropped messages on %r: this process read them too slowly", self.channel)
                return
            self._outage.failed(exc, "reconnecting in the background")
            if not ready.done():
                ready.set_result(None)

        async def on_reconnected() -> None:
            self._outage.ok()

        await self._nc.connect(
            servers=[self.url], name=f"bastion-bus-{self.channel}", error_cb=on_error,
            reconnected_cb=on_reconnected, connect_timeout=CONNECT_TIMEOUT_S, reconnect_time_wait=RETRY_S,
            max_reconnect_attempts=-1, ping_interval=PING_INTERVAL_S)
        # Frames as large as this server takes (max_payload counts the payload alone).
        self._framer.shrink(self._nc.max_payload)
        await self._nc.subscribe(self.channel, cb=self._on_message)
        try:
            await self._nc.flush(timeout=FLUSH_TIMEOUT_S)  # the server has our subscription
        except errors.Error as exc:
            self._outage.failed(exc, "the subscription is sent again once reconnected")
        else:
            self._outage.ok()
        if not ready.done():
            ready.set_result(None)

    async def _on_message(self, msg: Any) -> None:
        if self._joiner is not None and not self._closed:
            self._joiner.feed(msg.data)

    async def publish(self, message: bytes) -> None:
        if self._closed or self._nc is None:
            return
        from nats import errors

        frames = self._framer.frames(message)
        async with self._lock:
            if self._closed or not (self._nc.is_connected or self._nc.is_reconnecting):
                log.debug("bus: dropped a message while not connected to NATS")
                return
            try:
                for frame in frames:
                    await self._nc.publish(self.channel, frame)
            except (errors.Error, OSError) as exc:
                log.warning("bus: dropped a message: publishing on NATS failed (%s: %s)", type(exc).__name__, exc)

    async def close(self) -> None:
        self._closed = True
        await stop_task(self._connecting)
        self._connecting = None
        if self._nc is not None:
            async with self._lock:
                try:
                    await self._nc.close()
                except Exception as exc:  # closing must not fail the App's shutdown
                    log.debug("bus: closing the NATS connection: %s", exc)
