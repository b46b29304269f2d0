"""``core.ports.EventBus`` for the worker processes of one machine (``bastion serve
--workers N``) without a broker: Unix datagram sockets in a folder they share.

Each worker binds ``folder/bus-<index>.sock`` and publishes by sending to every
``bus-*.sock`` in the folder, its own included. A local datagram is never lost or
reordered in transit, but it is refused when the receiver's queue is full (10
datagrams by default, ``net.unix.max_dgram_qlen``): the publisher then waits for room,
``SEND_WAIT_S`` at most, without blocking the event loop. A sibling that does not make
room in time is skipped for the rest of that message, and not waited for again until
it takes a datagram. A socket file whose worker is gone is skipped.

Messages travel as ``bus_frames`` frames of at most 60 KiB: a datagram must fit the
sender's socket buffer (208 KiB by default, ``net.core.wmem_default``). A peer's
socket is connected once and kept; the kernel then reports room in that peer's queue
(an unconnected datagram socket is always "writable").
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from pathlib import Path

from bastion.adapters.bus_frames import Framer, Joiner, log
from bastion.core.ports import Deliver

FRAME_LIMIT = 60 * 1024
SEND_WAIT_S = 0.5
READ_BATCH = 64  # datagrams read per wake-up, so a flood does not starve the loop
_GONE = (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN)
_SOCKET_PATH_MAX = 107  # sockaddr_un.sun_path, less its final NUL


class SiblingBus:
    """Implements ``core.ports.EventBus`` between the processes that share ``folder``;
    ``index`` is this worker's number (``bastion serve --workers``)."""

    def __init__(self, folder: Path, index: int):
        self.folder = folder
        self.path = folder / f"bus-{index}.sock"
        if len(os.fsencode(self.path)) > _SOCKET_PATH_MAX:
            raise ValueError(f"The bus socket path {self.path} is longer than a Unix socket allows "
                             f"({_SOCKET_PATH_MAX} bytes): use a shorter temporary folder (TMPDIR).")
        self._framer = Framer(FRAME_LIMIT)
        self._joiner: Joiner | None = None
        self._sock: socket.socket | None = None
        self._inode = 0
        self._peers: dict[str, socket.socket] = {}
        self._stalled: set[str] = set()
        self._lock = asyncio.Lock()
        self._closed = False

    async def start(self, deliver: Deliver) -> None:
        if self._closed or self._sock is not None:
            return
        self._joiner = Joiner(deliver)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            self.path.unlink(missing_ok=True)  # left by a worker of this index that died
            sock.bind(str(self.path))
        except OSError:
            sock.close()
            raise
        self._inode = os.stat(self.path).st_ino
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)

    def _read(self) -> None:
        for _ in range(READ_BATCH):
            if self._sock is None or self._joiner is None:
                return
            try:
                frame = self._sock.recv(FRAME_LIMIT + 1024)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("bus: reading %s failed: %s", self.path, exc)
                return
            self._joiner.feed(frame)

    async def publish(self, message: bytes) -> None:
        if self._closed:
            return
        frames = self._framer.frames(message)
        async with self._lock:
            for name in self._sibling_names():
                if self._closed:
                    return
                await self._send_all(name, frames)

    def _sibling_names(self) -> list[str]:
        try:
            names = sorted(e.name for e in os.scandir(self.folder)
                           if e.name.startswith("bus-") and e.name.endswith(".sock"))
        except OSError as exc:
            log.warning("bus: cannot list %s: %s", self.folder, exc)
            return []
        for gone in self._peers.keys() - set(names):
            self._forget(gone)
        return names

    async def _send_all(self, name: str, frames: list[bytes]) -> None:
        for index, frame in enumerate(frames):
            reconnected = name not in self._peers
            sock = self._peer(name)
            if sock is None:
                return
            try:
                sent = await self._send(name, sock, frame)
            except OSError as exc:
                self._forget(name)
                if exc.errno not in _GONE:
                    log.warning("bus: sending to %s failed: %s", name, exc)
                elif index == 0 and not reconnected:
                    # The sibling we were connected to is gone; a replacement may have
                    # bound the same name since: try it once, from the first part.
                    await self._send_all(name, frames)
                return
            if not sent:
                return

    async def _send(self, name: str, sock: socket.socket, frame: bytes) -> bool:
        """Send one frame; False when the sibling's queue stayed full."""
        deadline = time.monotonic() + SEND_WAIT_S
        while True:
            try:
                sock.send(frame)
                self._stalled.discard(name)
                return True
            except BlockingIOError:
                pass
            # Room may be taken again by another sender woken at the same time: wait
            # again, until the deadline.
            left = deadline - time.monotonic()
            if name in self._stalled or left <= 0 or not await _writable(sock, left):
                break
        if name not in self._stalled:
            log.warning("bus: sibling %s reads too slowly; dropping messages to it until it catches up", name)
            self._stalled.add(name)
        return False

    def _peer(self, name: str) -> socket.socket | None:
        """The connected socket to sibling ``name``; None when nobody listens there."""
        sock = self._peers.get(name)
        if sock is not None:
            return sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(str(self.folder / name))
        except OSError as exc:
            sock.close()
            if exc.errno not in _GONE:
                log.warning("bus: cannot reach sibling %s: %s", name, exc)
            return None
        self._peers[name] = sock
        return sock

    def _forget(self, name: str) -> None:
        sock = self._peers.pop(name, None)
        if sock is not None:
            sock.close()
        self._stalled.discard(name)

    async def close(self) -> None:
        self._closed = True
        async with self._lock:
            for name in list(self._peers):
                self._forget(name)
        sock, self._sock = self._sock, None
        if sock is None:
            return
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        try:  # only our own file: a replacement worker may have bound the path since
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass


async def _writable(sock: socket.socket, timeout: float) -> bool:
    """Wait until ``sock`` can send (its peer's queue has room), ``timeout`` at most."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_room() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(sock.fileno(), on_room)
    try:
        await asyncio.wait_for(ready, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_writer(sock.fileno())
