"""``core.ports.EventBus`` over PostgreSQL's LISTEN/NOTIFY: no broker beyond the database.

Two connections of the bus's own, outside the database pools: one LISTENs, one sends
``SELECT pg_notify(channel, payload)``. A NOTIFY payload is text of fewer than 8000
bytes, so every message travels as base64 frames (``bus_frames``) of at most 7996
characters; the parts of one message go in one ``executemany``, which asyncpg runs as
one transaction, so they reach the listeners together and in order. Publishes are
serialised on the one publishing connection, which keeps this process's messages in
order.

The listening connection is pinged when idle (a cut that no packet reports is noticed
within ``HEARTBEAT_S`` plus the ping's timeout) and reopened when lost, after 0.2 s
and then up to ``RETRY_MAX_S`` apart. After a failed publish the connection is
reopened on a later publish; messages published meanwhile (``PUBLISH_BACKOFF_S``)
are dropped at once rather than each waiting for a connect timeout.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

import asyncpg

from bastion.adapters.bus_frames import Framer, Joiner, Outage, check_channel, log, stop_task
from bastion.core.ports import Deliver

NOTIFY_LIMIT = 8000  # bytes; the server refuses a payload this long or longer
FRAME_LIMIT = (NOTIFY_LIMIT - 1) // 4 * 3  # base64 writes 4 characters for 3 bytes
CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 5.0
HEARTBEAT_S = 30.0
RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
PUBLISH_BACKOFF_S = 1.0
_NOTIFY = "SELECT pg_notify($1, $2)"
_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresBus:
    """Implements ``core.ports.EventBus`` on PostgreSQL; ``dsn`` is an asyncpg DSN
    (``postgresql://user:password@host:port/database``)."""

    def __init__(self, dsn: str, channel: str):
        self.dsn = dsn
        self.channel = check_channel(channel)
        # application_name shows the bus (and its channel) in pg_stat_activity
        self.application_name = f"bastion-bus-{channel}"[:63]
        self._framer = Framer(FRAME_LIMIT)
        self._joiner: Joiner | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publisher: Any = None  # asyncpg.Connection
        self._lock = asyncio.Lock()
        self._down_until = 0.0
        self._closed = False
        self._listening = Outage("listening on PostgreSQL")
        self._publishing = Outage("publishing on PostgreSQL")

    async def start(self, deliver: Deliver) -> None:
        if self._closed or self._listener is not None:
            return
        self._joiner = Joiner(deliver)
        ready = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(self._listen(ready), name=f"bus {self.channel}: LISTEN")
        await asyncio.wait([ready, self._listener], return_when=asyncio.FIRST_COMPLETED)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        delay = RETRY_MIN_S
        while True:
            try:
                conn = await self._connect("listen")
            except _ERRORS as exc:
                self._listening.failed(exc, "retrying in the background")
            else:
                try:
                    await conn.add_listener(self.channel, self._on_notify)
                    self._listening.ok()
                    delay = RETRY_MIN_S
                    if not ready.done():
                        ready.set_result(None)
                    await self._hold(conn)
                except _ERRORS as exc:
                    self._listening.failed(exc, "reconnecting")
                finally:
                    conn.terminate()
            if not ready.done():
                ready.set_result(None)  # start() returns; receiving begins once connected
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _hold(self, conn: Any) -> None:
        """Return when ``conn`` is lost: closed by the server, or silent to a ping."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), HEARTBEAT_S)
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=STATEMENT_TIMEOUT_S)
        raise ConnectionResetError("the server closed the connection")

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._joiner is None or self._closed:
            return
        try:
            frame = base64.b64decode(payload, validate=True)
        except binascii.Error:
            log.warning("bus: ignored a notification on %r that is not Bastion's", self.channel)
            return
        self._joiner.feed(frame)

    async def _connect(self, role: str) -> Any:
        return await asyncpg.connect(
            self.dsn, timeout=CONNECT_TIMEOUT_S, statement_cache_size=0,
            server_settings={"application_name": f"{self.application_name}-{role}"[:63]})

    async def publish(self, message: bytes) -> None:
        if self._closed:
            return
        payloads = [base64.b64encode(frame).decode("ascii") for frame in self._framer.frames(message)]
        async with self._lock:
            if self._closed:
                return
            try:
                conn = await self._publishing_connection()
                if conn is None:
                    return
                if len(payloads) == 1:
                    await conn.execute(_NOTIFY, self.channel, payloads[0], timeout=STATEMENT_TIMEOUT_S)
                else:
                    await conn.executemany(_NOTIFY, [(self.channel, p) for p in payloads],
                                           timeout=STATEMENT_TIMEOUT_S)
                self._publishing.ok()
            except _ERRORS as exc:
                self._publishing.failed(exc, "dropping messages until it works again")
                self._down_until = time.monotonic() + PUBLISH_BACKOFF_S
                self._drop_publisher()

    async def _publishing_connection(self) -> Any:
        if self._publisher is not None and not self._publisher.is_closed():
            return self._publisher
        if time.monotonic() < self._down_until:
            log.debug("bus: dropped a message while PostgreSQL is unreachable")
            return None
        self._publisher = await self._connect("notify")
        return self._publisher

    def _drop_publisher(self) -> None:
        if self._publisher is not None:
            self._publisher.terminate()
            self._publisher = None

    async def close(self) -> None:
        self._closed = True
        await stop_task(self._listener)
        self._listener = None
        async with self._lock:
            conn, self._publisher = self._publisher, None
            if conn is not None:
                try:
                    await conn.close(timeout=1.0)
                except _ERRORS:
                    conn.terminate()
