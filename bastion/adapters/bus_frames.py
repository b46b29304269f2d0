"""Messages cut into frames that fit a transport's payload limit, and joined again.

Every frame starts with a fixed header: a format version, the publisher's random id,
the message's sequence number at that publisher, the part's index and the part count.
A publisher sends the parts of one message together and in order (each transport
serialises its publishes), and a transport keeps one publisher's frames in order, so a
receiver joins parts as they come: a part that does not follow the one before it, or a
new message from a publisher whose previous one is incomplete, means frames were lost
(at most once) and the incomplete message is dropped.

The receiver's memory is bounded: incomplete messages older than ``timeout`` seconds,
or beyond ``max_pending`` of them or ``max_bytes`` in all, are dropped, oldest first,
with a log line (ages are checked as frames arrive: a quiet channel holds its last
incomplete message until the next frame).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import struct
import time
from dataclasses import dataclass, field

from bastion.core.ports import Deliver

log = logging.getLogger("bastion.bus")

# version, publisher id, message sequence, part index, part count
HEADER = struct.Struct("!B8sQII")
VERSION = 1
PENDING_TIMEOUT_S = 10.0
MAX_PENDING = 64
MAX_PENDING_BYTES = 128 * 1024 * 1024

# A channel name valid on every transport: a PostgreSQL identifier (at most 63 bytes),
# a NATS subject token, a Redis channel and a folder name.
_CHANNEL = re.compile(r"[A-Za-z0-9_-]{1,63}")


def check_channel(channel: str) -> str:
    """``channel`` when it is usable on every transport, else ``ValueError``."""
    if not _CHANNEL.fullmatch(channel):
        raise ValueError(f"Bus channel {channel!r} is not valid: use 1 to 63 ASCII letters, digits, '_' or '-'.")
    return channel


class FrameError(ValueError):
    """A frame that is not one of ours: too short, another version, a bad part index."""


class Framer:
    """The publishing side: numbers this publisher's messages and cuts each into frames
    of at most ``limit`` bytes, header included."""

    def __init__(self, limit: int):
        if limit <= HEADER.size:
            raise ValueError(f"frame limit {limit} leaves no room past the {HEADER.size}-byte header")
        self.publisher = os.urandom(8)
        self.room = limit - HEADER.size
        self._sequence = 0

    def shrink(self, limit: int) -> None:
        """Make frames of at most ``limit`` bytes from now on (a limit learnt on connecting)."""
        if limit > HEADER.size:
            self.room = min(self.room, limit - HEADER.size)

    def frames(self, message: bytes) -> list[bytes]:
        self._sequence += 1
        count = max(1, -(-len(message) // self.room))
        view = memoryview(message)
        return [
            HEADER.pack(VERSION, self.publisher, self._sequence, index, count)
            + view[index * self.room:(index + 1) * self.room]
            for index in range(count)
        ]


@dataclass
class _Pending:
    sequence: int
    count: int
    started: float
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


class Joiner:
    """The receiving side: feed it every frame; it delivers each message once whole."""

    def __init__(self, deliver: Deliver, timeout: float = PENDING_TIMEOUT_S, max_pending: int = MAX_PENDING,
                 max_bytes: int = MAX_PENDING_BYTES):
        self._deliver = deliver
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        # publisher id -> its incomplete message, oldest first (insertion order)
        self._pending: dict[bytes, _Pending] = {}
        self._bytes = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def feed(self, frame: bytes) -> None:
        """Take one frame; deliver the message it completes, if any."""
        try:
            _version, publisher, sequence, index, count = _header(frame)
        except FrameError as exc:
            log.warning("bus: ignored a frame that is not Bastion's: %s", exc)
            return
        self._expire(time.monotonic())
        payload = frame[HEADER.size:]
        pending = self._pending.get(publisher)
        if pending is not None and (pending.sequence != sequence or index != len(pending.parts)):
            self._drop(publisher, "a part of it was lost")
            pending = None
        if count == 1:
            deliver_safely(self._deliver, payload)
        elif index == 0:
            self._pending[publisher] = _Pending(sequence, count, time.monotonic(), [payload], len(payload))
            self._bytes += len(payload)
            self._bound()
        elif pending is not None:
            pending.parts.append(payload)
            pending.size += len(payload)
            self._bytes += len(payload)
            if len(pending.parts) == count:
                self._pop(publisher)
                deliver_safely(self._deliver, b"".join(pending.parts))
            else:
                self._bound()

    def _pop(self, publisher: bytes) -> _Pending:
        pending = self._pending.pop(publisher)
        self._bytes -= pending.size
        return pending

    def _drop(self, publisher: bytes, why: str) -> None:
        pending = self._pop(publisher)
        log.warning("bus: dropped an incomplete message (%d of %d parts, %d bytes): %s",
                    len(pending.parts), pending.count, pending.size, why)

    def _expire(self, now: float) -> None:
        while self._pending:
            publisher, oldest = next(iter(self._pending.items()))
            if oldest.started > now - self.timeout:
                return
            self._drop(publisher, f"its parts stopped arriving for {self.timeout:g} s")

    def _bound(self) -> None:
        while len(self._pending) > self.max_pending or (self._bytes > self.max_bytes and self._pending):
            self._drop(next(iter(self._pending)), "too many incomplete messages are pending")


def _header(frame: bytes) -> tuple[int, bytes, int, int, int]:
    if len(frame) < HEADER.size:
        raise FrameError(f"{len(frame)} bytes, shorter than the header")
    version, publisher, sequence, index, count = HEADER.unpack_from(frame)
    if version != VERSION:
        raise FrameError(f"format version {version}")
    if not index < count:
        raise FrameError(f"part {index} of {count}")
    return version, publisher, sequence, index, count


def deliver_safely(deliver: Deliver, message: bytes) -> None:
    """Call ``deliver``; a receiver's error is logged, never allowed to stop a transport."""
    try:
        deliver(message)
    except Exception:
        log.exception("bus: the receiver failed on a message")


class Outage:
    """Logs the first failure of a series (a warning) and the recovery after it (info),
    rather than a line per dropped message."""

    def __init__(self, what: str):
        self.what = what
        self.down = False

    def failed(self, exc: BaseException, then: str) -> None:
        if not self.down:
            log.warning("bus: %s failed (%s: %s); %s", self.what, type(exc).__name__, exc, then)
            self.down = True
        else:
            log.debug("bus: %s failed again (%s: %s)", self.what, type(exc).__name__, exc)

    def ok(self) -> None:
        if self.down:
            log.info("bus: %s works again", self.what)
            self.down = False


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until it has finished (its ``finally`` blocks included)."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        log.error("bus: a background task had failed", exc_info=task.exception())
