"""A realtime subscriber for the differential suite: ``GET /api/realtime`` read on a thread.

The stream is parsed as server-sent events (``field:value`` lines, a blank line ends a
message); each message keeps the order of its field names, so the framing itself can be
compared. A thread reads the stream into a queue; the test takes messages from it with
timeouts, so a server that sends nothing fails a test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any

import httpx

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Message:
    """One server-sent event: its ``id``, ``event`` name, decoded ``data`` and field order."""

    id: str | None
    event: str
    data: Any
    fields: tuple[str, ...]


class RealtimeUnavailable(AssertionError):
    """The server did not open an event stream (or sent no PB_CONNECT)."""


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class Stream:
    """One open ``GET /api/realtime``; ``client_id`` comes from its PB_CONNECT message."""

    def __init__(self, server: str, name: str = "server"):
        self.name = name
        self.http = httpx.Client(base_url=server, timeout=httpx.Timeout(10, read=None))
        self.status = 0
        self.headers: httpx.Headers = httpx.Headers()
        self._messages: queue.Queue[Message | None] = queue.Queue()
        self._opened = threading.Event()
        self._socket: socket.socket | None = None
        self._body = ""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._opened.wait(CONNECT_TIMEOUT):
            self.close()
            raise RealtimeUnavailable(f"{name}: GET /api/realtime answered nothing in {CONNECT_TIMEOUT} s")
        if self.status != 200 or not self.headers.get("content-type", "").startswith("text/event-stream"):
            self.close()
            raise RealtimeUnavailable(
                f"{name}: GET /api/realtime is no event stream: {self.status} "
                f"{self.headers.get('content-type')!r} {self._body[:200]!r}")
        connect = self.next(CONNECT_TIMEOUT)
        if connect is None or connect.event != "PB_CONNECT":
            self.close()
            raise RealtimeUnavailable(f"{name}: the stream's first message is not PB_CONNECT: {connect}")
        self.connect: Message = connect
        self.client_id: str = connect.data.get("clientId", "") if isinstance(connect.data, dict) else ""

    def _read(self) -> None:
        try:
            with self.http.stream("GET", "/api/realtime") as res:
                self.status, self.headers = res.status_code, res.headers
                stream = res.extensions.get("network_stream")
                self._socket = stream.get_extra_info("socket") if stream is not None else None
                if res.status_code != 200:
                    self._body = res.read().decode(errors="replace")
                self._opened.set()
                if res.status_code == 200:
                    self._parse(res.iter_lines())
        except (httpx.HTTPError, OSError, ValueError):
            pass
        finally:
            self._opened.set()
            self._messages.put(None)

    def _parse(self, lines: Any) -> None:
        fields: dict[str, str] = {}
        order: list[str] = []
        for line in lines:
            if line == "":
                if order:
                    self._messages.put(Message(fields.get("id"), fields.get("event", "message"),
                                               _decode(fields.get("data", "")), tuple(order)))
                fields, order = {}, []
                continue
            if line.startswith(":"):
                continue  # a comment (a keep-alive, for instance)
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            order.append(key)
            fields[key] = fields[key] + "\n" + value if key == "data" and key in fields else value

    def next(self, timeout: float) -> Message | None:
        """The next message, or None when none came within ``timeout`` s or the stream ended."""
        try:
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def until(self, done: Any, timeout: float = 5.0) -> list[Message]:
        """Messages up to and including the first for which ``done(message)`` is true."""
        out: list[Message] = []
        while True:
            message = self.next(timeout)
            if message is None:
                got = [(m.event, m.data) for m in out]
                raise AssertionError(f"{self.name}: the awaited message did not come in {timeout} s; got {got}")
            out.append(message)
            if done(message):
                return out

    def drain(self, quiet: float) -> list[Message]:
        """Whatever arrives until nothing has come for ``quiet`` s."""
        out = []
        while (message := self.next(quiet)) is not None:
            out.append(message)
        return out

    def subscribe(self, topics: list[str], token: str | None = None, **extra: Any) -> httpx.Response:
        """``POST /api/realtime`` setting this client's subscriptions, as ``token``'s owner."""
        headers = {"Authorization": token} if token else {}
        return self.http.post("/api/realtime", json={"clientId": self.client_id, "subscriptions": topics, **extra},
                              headers=headers)

    def close(self) -> None:
        if self._socket is not None:  # shutting it down wakes the reading thread, blocked in recv()
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(2)
        self.http.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
