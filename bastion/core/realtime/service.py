"""Realtime, as the App holds it: committed changes out to the bus, and what the bus
brings in dispatched to this process's subscribers.

Both directions keep order through one queue and one task each: the records service's
listener only queues (a write's answer never waits on the bus), the sender publishes in
commit order, and the receiver dispatches one message at a time in the order the bus
delivered them. Both queues are bounded: past ``MAX_PENDING`` messages the newest are
dropped with a warning (subscribers miss events; nothing else slows down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bastion.core.access import AuthIdentity
from bastion.core.auth.api_keys import ApiKeyScope
from bastion.core.errors import BadRequest, BastionError, Forbidden
from bastion.core.ports import Deliver, EventBus
from bastion.core.realtime.client import Client
from bastion.core.realtime.dispatch import Dispatcher
from bastion.core.realtime.hub import Hub
from bastion.core.realtime.topics import parse_topic
from bastion.core.realtime.wire import (
    Direct,
    Reply,
    Subscribe,
    decode,
    encode_changes,
    encode_direct,
    encode_reply,
    encode_subscribe,
)
from bastion.core.records.changes import RecordChange
from bastion.core.schema.registry import Registry
from bastion.tools.ids import random_string

log = logging.getLogger("bastion.realtime")

MAX_PENDING = 10_000
START_TIMEOUT = 10.0
# How long a subscription request waits for the process holding its client to answer.
REMOTE_TIMEOUT = 3.0
# How long a write waits for its events to be dispatched (alone) before it answers anyway.
DISPATCH_WAIT = 10.0
AUTH_MISMATCH = "The current and the previous request authorization don't match."

# Who a token is: an auth record, an API key, or neither (a guest).
Identify = Callable[[str], Awaitable[tuple[AuthIdentity | None, ApiKeyScope | None]]]


class MemoryBus:
    """``EventBus`` within one process: a published message goes to the receiver on a
    later turn of the event loop (never inside ``publish``), in order."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._closed = False

    async def start(self, deliver: Deliver) -> None:
        if not self._closed:
            self._deliver = deliver

    async def publish(self, message: bytes) -> None:
        if self._deliver is not None:
            asyncio.get_running_loop().call_soon(self._hand_over, message)  # callbacks run in order

    def _hand_over(self, message: bytes) -> None:
        if self._deliver is None:  # closed meanwhile
            return
        try:
            self._deliver(message)
        except Exception:  # noqa: BLE001 - a receiver's bug must not stop the bus
            log.exception("realtime: the receiver failed on a message")

    async def close(self) -> None:
        self._closed = True
        self._deliver = None


class Realtime:
    def __init__(self, hub: Hub, dispatcher: Dispatcher, registry: Registry, identify: Identify,
                 bus: EventBus | None = None):
        self.hub = hub
        self.dispatcher = dispatcher
        self.registry = registry
        self.identify = identify
        self.alone = bus is None  # every client is this process's: no one else to ask
        self.bus: EventBus = bus if bus is not None else MemoryBus()
        self._replies: dict[str, asyncio.Future[Reply]] = {}
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(MAX_PENDING)
        # What the bus brought (or, alone, the changes themselves), with the future of a
        # write waiting for their dispatch.
        self._incoming: asyncio.Queue[tuple[bytes, asyncio.Future[None] | None]] = asyncio.Queue(MAX_PENDING)
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped = 0

    async def start(self) -> None:
        if self._tasks:
            return
        try:
            await asyncio.wait_for(self.bus.start(self._received), START_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the server serves on; only other processes' events are missed
            log.warning("realtime: the event bus did not start (%s); changes made by other processes "
                        "will not reach this one's subscribers until it does", exc)
        self._tasks = [asyncio.create_task(self._send_loop(), name="realtime-send"),
                       asyncio.create_task(self._receive_loop(), name="realtime-receive")]

    async def close(self) -> None:
        self.hub.close_all("the server is stopping")
        # What was committed before the stop still goes out, briefly.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), 2.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while not self._incoming.empty():  # writes waiting for a dispatch that will not come
            _message, waiting_write = self._incoming.get_nowait()
            if waiting_write is not None and not waiting_write.done():
                waiting_write.set_result(None)
        await self.bus.close()

    async def settled(self) -> None:
        """Wait until every change committed so far went out and what came back in was
        dispatched (with the in-process bus: until subscribers have their events)."""
        await self._outgoing.join()
        await self._incoming.join()

    async def _drain(self) -> None:
        while not self._outgoing.empty():
            await asyncio.sleep(0.01)

    # -- out -------------------------------------------------------------------------
    async def committed(self, changes: Sequence[RecordChange]) -> None:
        """The records service's change listener: queue the changes for the bus.

        Alone (no bus), the changes are dispatched here before the write answers, as
        PocketBase does: a rule that reads another record (``post.owner = ...``) is then
        checked before the writer's next request can change that record. (With no stream
        open there is no one to tell.) Across processes the other processes dispatch when
        the bus brings the changes."""
        if not self.alone:
            self._queue(self._outgoing, encode_changes(changes), "outgoing")
            return
        if not self.hub.clients:
            return
        dispatched = asyncio.get_running_loop().create_future()
        if self._queue(self._incoming, (encode_changes(changes), dispatched), "incoming"):
            try:
                await asyncio.wait_for(asyncio.shield(dispatched), DISPATCH_WAIT)
            except TimeoutError:
                log.warning("realtime: a write answered before its events were dispatched (%g s)", DISPATCH_WAIT)

    def direct(self, client_id: str, event: str, data: bytes, ip: str) -> None:
        """Send ``data`` as ``event`` to the client ``client_id``, on whichever process it is."""
        self._queue(self._outgoing, encode_direct(Direct(client_id, event, data, ip)), "outgoing")

    async def _send_loop(self) -> None:
        while True:
            message = await self._outgoing.get()
            try:
                await self.bus.publish(message)
            except Exception:  # noqa: BLE001 - a bus fault must not stop later messages
                log.exception("realtime: publishing to the event bus failed")
            finally:
                self._outgoing.task_done()

    # -- in --------------------------------------------------------------------------
    def _received(self, message: bytes) -> None:
        self._queue(self._incoming, (message, None), "incoming")

    def _queue(self, queue: asyncio.Queue[Any], item: Any, which: str) -> bool:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("realtime: %d %s messages dropped: more than %d waiting", self._dropped, which,
                            MAX_PENDING)
            return False
        return True

    async def _receive_loop(self) -> None:
        while True:
            message, waiting_write = await self._incoming.get()
            try:
                decoded = decode(message, self.registry)
                if isinstance(decoded, Direct):
                    self._deliver_direct(decoded)
                elif isinstance(decoded, Subscribe):
                    await self._remote_subscribe(decoded)
                elif isinstance(decoded, Reply):
                    waiting = self._replies.get(decoded.request)
                    if waiting is not None and not waiting.done():
                        waiting.set_result(decoded)
                elif decoded:
                    await self.dispatcher.deliver(decoded)
            except Exception:  # noqa: BLE001 - one bad message must not stop realtime
                log.exception("realtime: could not dispatch a message from the event bus")
            finally:
                if waiting_write is not None and not waiting_write.done():
                    waiting_write.set_result(None)
                self._incoming.task_done()

    def _deliver_direct(self, message: Direct) -> None:
        client = self.hub.clients.get(message.client_id)
        if client is None or message.event not in client.topics or client.ip != message.ip:
            return
        client.send(message.event, message.data)
        if message.event == "@oauth2":
            self.hub.unsubscribe(client, message.event)

    # -- subscriptions ------------------------------------------------------------------
    async def set_subscriptions(self, client_id: str, ip: str, token: str, topics: list[str]) -> None:
        """Replace the topics of the client ``client_id`` and bind it to ``token``'s
        caller, on whichever process holds it (the stream and this request may have
        reached different workers or nodes)."""
        client = self.hub.clients.get(client_id)
        if client is not None or self.alone:
            await self._subscribe_here(client, ip, token, topics)
            return
        request = random_string(20)
        waiting: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._replies[request] = waiting
        try:
            self._queue(self._outgoing, encode_subscribe(Subscribe(request, client_id, ip, token, topics)), "outgoing")
            reply = await asyncio.wait_for(waiting, REMOTE_TIMEOUT)
        except TimeoutError:
            raise NotFoundClient() from None
        finally:
            self._replies.pop(request, None)
        if reply.status == 404:
            raise NotFoundClient()
        if reply.status == 403:
            raise Forbidden(reply.message)
        if reply.status >= 400:
            raise BadRequest(reply.message)

    async def _subscribe_here(self, client: Client | None, ip: str, token: str, topics: list[str]) -> None:
        if client is None or client.closed:
            raise NotFoundClient()
        if client.ip != ip:
            raise BadRequest("Invalid realtime client.")
        auth, api_key = await self.identify(token)
        identity = (auth.collection.id, auth.id) if auth is not None else (
            ("@key", api_key.id) if api_key is not None else None)
        if client.identity is not None and client.identity != identity:
            raise Forbidden(AUTH_MISMATCH)
        self.hub.bind(client, auth, api_key, token if api_key is not None else "")
        self.hub.subscribe(client, [parse_topic(t) for t in topics if t])

    async def _remote_subscribe(self, request: Subscribe) -> None:
        client = self.hub.clients.get(request.client_id)
        if client is None:
            return  # another process's client (or none's: the requester times out)
        try:
            await self._subscribe_here(client, request.ip, request.token, request.topics)
            reply = Reply(request.request, 204, "")
        except BastionError as exc:
            reply = Reply(request.request, exc.status, exc.message)
        self._queue(self._outgoing, encode_reply(reply), "outgoing")


class NotFoundClient(BadRequest):
    status = 404

    def __init__(self) -> None:
        super().__init__("Missing or invalid client id.")
