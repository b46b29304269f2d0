"""``core.ports.EventPublisher`` over NATS JetStream (nats-py, imported only when used).

Events go to the subject ``<stream>.<collection>`` of the JetStream stream ``stream``
(created on first use, capturing ``<stream>.>``, if it does not exist), each with the
header ``Nats-Msg-Id`` set to the event id: JetStream drops a repeat within its
duplicate window (2 minutes by default), so an event the relay publishes twice is
stored once. An event counts as published once the PubAck arrives; a connection
error or a timeout raises ``PublishFailed`` and the next publish connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bastion.core.ports import OutboundEvent, PublishFailed

CONNECT_TIMEOUT_S = 2.0
TIMEOUT_S = 5.0


class JetStreamPublisher:
    """Implements ``core.ports.EventPublisher``; ``url`` is ``nats://`` or ``tls://``."""

    def __init__(self, url: str, stream: str):
        self.url = url
        self.stream = stream
        self._nc: Any = None  # nats.aio.client.Client
        self._js: Any = None

    async def _connect(self) -> Any:
        import nats
        from nats.js.errors import NotFoundError

        async def quiet(exc: Exception) -> None:
            pass  # the failed publish reports it (the relay logs an outage once)

        nc = await asyncio.wait_for(nats.connect(
            servers=[self.url], connect_timeout=CONNECT_TIMEOUT_S, allow_reconnect=False, max_reconnect_attempts=0,
            error_cb=quiet, name=f"bastion-events-{self.stream}"), CONNECT_TIMEOUT_S * 2)
        try:
            js = nc.jetstream(timeout=TIMEOUT_S)
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                await js.add_stream(name=self.stream, subjects=[f"{self.stream}.>"])
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js = nc, js
        return js

    async def publish(self, event: OutboundEvent) -> None:
        try:
            js = self._js if self._nc is not None and self._nc.is_connected else await self._connect()
            await js.publish(f"{self.stream}.{event.collection}", event.body, headers={"Nats-Msg-Id": event.id})
        except Exception as exc:  # noqa: BLE001 - nats-py raises many kinds; all mean "not stored"
            await self._drop()
            raise PublishFailed(f"JetStream publish failed: {exc}") from exc

    async def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                await nc.close()

    async def close(self) -> None:
        await self._drop()
