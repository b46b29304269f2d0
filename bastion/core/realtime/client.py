"""One realtime connection: its id, who it is bound to, its topics and its outbox.

The stream handler (``api/realtime.py``) waits on ``wake`` and writes what ``take``
returns; the hub appends with ``send``. The outbox is bounded: a client that falls
``MAX_QUEUED`` messages or ``MAX_QUEUED_BYTES`` behind is closed, its reason logged,
so a reader that never reads costs the server a bounded amount of memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from bastion.core.realtime.topics import Topic
from bastion.tools.ids import random_string

if TYPE_CHECKING:
    from bastion.core.access import AuthIdentity
    from bastion.core.auth.api_keys import ApiKeyScope

CLIENT_ID_CHARS = 40
MAX_QUEUED = 1000
MAX_QUEUED_BYTES = 4 * 1024 * 1024


class Client:
    __slots__ = ("id", "ip", "auth", "api_key", "api_token", "topics", "wake", "closed", "started",
                 "_outbox", "_queued_bytes", "_prefix")

    def __init__(self, ip: str):
        self.id = random_string(CLIENT_ID_CHARS)
        self.ip = ip
        self.auth: AuthIdentity | None = None
        self.api_key: ApiKeyScope | None = None
        self.api_token = ""  # the key a client bound with, checked again as events arrive
        self.topics: dict[str, Topic] = {}
        self.wake = asyncio.Event()
        self.closed = ""  # why the stream ends; empty while it is open
        self.started = time.monotonic()
        self._outbox: deque[bytes] = deque()
        self._queued_bytes = 0
        self._prefix = f"id:{self.id}\nevent:".encode()

    # -- who it is ------------------------------------------------------------------
    @property
    def identity(self) -> tuple[str, str] | None:
        """What the client is bound to: an auth record or an API key; None for a guest."""
        if self.auth is not None:
            return (self.auth.collection.id, self.auth.id)
        if self.api_key is not None:
            return ("@key", self.api_key.id)
        return None

    @property
    def privileged(self) -> bool:
        """Whether rules do not decide for it (a superuser, or an API key that allows the action)."""
        return self.api_key is not None or (self.auth is not None and self.auth.is_superuser)

    # -- the outbox ------------------------------------------------------------------
    def frame(self, event: str, data: bytes) -> bytes:
        """One server-sent event of this client, as PocketBase writes it."""
        return b"".join((self._prefix, event.encode(), b"\ndata:", data, b"\n\n"))

    def send(self, event: str, data: bytes) -> None:
        if self.closed:
            return
        message = self.frame(event, data)
        self._outbox.append(message)
        self._queued_bytes += len(message)
        if len(self._outbox) > MAX_QUEUED or self._queued_bytes > MAX_QUEUED_BYTES:
            self.close(f"{len(self._outbox)} messages ({self._queued_bytes} bytes) unread: the client reads too slowly")
        self.wake.set()

    def take(self) -> bytes:
        """Everything queued, as one write (empty when nothing is)."""
        if not self._outbox:
            return b""
        out = b"".join(self._outbox) if len(self._outbox) > 1 else self._outbox[0]
        self._outbox.clear()
        self._queued_bytes = 0
        return out

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = reason
            self._outbox.clear()
            self._queued_bytes = 0
        self.wake.set()
