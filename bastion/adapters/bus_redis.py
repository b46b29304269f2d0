"""``core.ports.EventBus`` over Redis pub/sub (redis-py's asyncio client).

Messages travel as ``bus_frames`` frames of at most 1 MiB: Redis has no payload limit
to speak of, but a subscriber's output buffer does (``client-output-buffer-limit
pubsub``, 32 MB by default), and smaller parts keep each read short. The parts of one
message go in one pipeline; publishes are serialised, which keeps this process's
messages in order.

The subscribing connection is pinged when idle and reopened when lost (after 0.2 s,
then up to ``RETRY_MAX_S`` apart). redis-py's own retries are off: a failed command
fails at once, and the bus decides what to do (reconnect, or drop the message and
skip publishing for ``PUBLISH_BACKOFF_S`` rather than make every publish wait).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis import asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bastion.adapters.bus_frames import Framer, Joiner, Outage, check_channel, stop_task
from bastion.core.ports import Deliver

FRAME_LIMIT = 1024 * 1024
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
HEARTBEAT_S = 15.0
RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
PUBLISH_BACKOFF_S = 1.0
_ERRORS = (redis_errors.RedisError, OSError)


class RedisBus:
    """Implements ``core.ports.EventBus`` on Redis; ``url`` is ``redis://`` or ``rediss://``."""

    def __init__(self, url: str, channel: str):
        self.channel = check_channel(channel)
        self.client_name = f"bastion-bus-{channel}"
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0), client_name=self.client_name)
        self._framer = Framer(FRAME_LIMIT)
        self._joiner: Joiner | None = None
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._down_until = 0.0
        self._closed = False
        self._listening = Outage("subscribing on Redis")
        self._publishing = Outage("publishing on Redis")

    async def start(self, deliver: Deliver) -> None:
        if self._closed or self._listener is not None:
            return
        self._joiner = Joiner(deliver)
        ready = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(self._listen(ready), name=f"bus {self.channel}: SUBSCRIBE")
        await asyncio.wait([ready, self._listener], return_when=asyncio.FIRST_COMPLETED)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        delay = RETRY_MIN_S
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await _confirmed(pubsub)
                self._listening.ok()
                delay = RETRY_MIN_S
                if not ready.done():
                    ready.set_result(None)
                await self._receive(pubsub)
            except _ERRORS as exc:
                self._listening.failed(exc, "reconnecting in the background")
            finally:
                await pubsub.aclose()
            if not ready.done():
                ready.set_result(None)  # start() returns; receiving begins once connected
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _receive(self, pubsub: Any) -> None:
        """Feed the joiner until the connection fails or stays silent to pings."""
        heard = time.monotonic()
        while True:
            item = await pubsub.get_message(timeout=HEARTBEAT_S)
            if item is None:
                if time.monotonic() - heard > 2 * HEARTBEAT_S:
                    raise TimeoutError(f"no answer to a ping in {HEARTBEAT_S:g} s")
                await pubsub.ping()
                continue
            heard = time.monotonic()
            if item["type"] == "message" and self._joiner is not None:
                self._joiner.feed(item["data"])

    async def publish(self, message: bytes) -> None:
        if self._closed:
            return
        frames = self._framer.frames(message)
        async with self._lock:
            if self._closed or time.monotonic() < self._down_until:
                return
            try:
                if len(frames) == 1:
                    await self._redis.publish(self.channel, frames[0])
                else:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for frame in frames:
                            pipe.publish(self.channel, frame)
                        await pipe.execute()
                self._publishing.ok()
            except _ERRORS as exc:
                self._publishing.failed(exc, "dropping messages until it works again")
                self._down_until = time.monotonic() + PUBLISH_BACKOFF_S

    async def close(self) -> None:
        self._closed = True
        await stop_task(self._listener)
        self._listener = None
        async with self._lock:
            await self._redis.aclose()


async def _confirmed(pubsub: Any) -> None:
    """Wait for the server's answer to SUBSCRIBE: from then on, messages reach us."""
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while time.monotonic() < deadline:
        item = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if item is not None and item["type"] == "subscribe":
            return
    raise TimeoutError("Redis did not confirm the subscription")
