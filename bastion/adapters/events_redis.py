"""``core.ports.EventPublisher`` over Redis Streams (redis-py, imported only when used).

Each event is one ``XADD`` entry of the stream ``stream``, with the fields ``id`` (the
event id, for consumers to dedupe by), ``sequence``, ``collection``, ``recordId`` and
``event`` (the CloudEvents JSON). The entry is acknowledged when ``XADD`` returns its
entry id; a connection error or a timeout raises ``PublishFailed`` (the relay retries).
Consumers read with ``XREAD`` or a consumer group (``XREADGROUP``); the stream is not
trimmed by Bastion.
"""

from __future__ import annotations

from typing import Any

from bastion.core.ports import OutboundEvent, PublishFailed

CONNECT_TIMEOUT_S = 2.0
TIMEOUT_S = 5.0


class RedisStreamPublisher:
    """Implements ``core.ports.EventPublisher``; ``url`` is ``redis://`` or ``rediss://``."""

    def __init__(self, url: str, stream: str):
        from redis import asyncio as aioredis

        self.stream = stream
        self._redis: Any = aioredis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=TIMEOUT_S,
            client_name=f"bastion-events-{stream}")

    async def publish(self, event: OutboundEvent) -> None:
        from redis import exceptions

        fields = {"id": event.id, "sequence": str(event.sequence), "collection": event.collection,
                  "recordId": event.record_id, "event": event.body}
        try:
            await self._redis.xadd(self.stream, fields)
        except (exceptions.RedisError, OSError, TimeoutError) as exc:
            raise PublishFailed(f"Redis XADD failed: {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()
