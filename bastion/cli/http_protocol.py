"""uvicorn's HTTP/1.1 protocol with a deadline for request headers and JSON errors.

uvicorn bounds the idle time between two requests on a kept-alive connection, but not
the time a client takes to send a request's headers, so a client can hold a connection
forever by sending nothing or one byte at a time. Here every request's headers (from the
connection's start or the request's first byte) must arrive within ``header_timeout``
seconds; otherwise the client gets a 408 and the connection is closed. The request line
and headers together may take ``MAX_HEAD_BYTES`` (431 above; the parser itself has no
limit). Requests the parser rejects get Bastion's JSON error shape instead of plain text.

An answer that closes the connection while the request body is still coming in (413 for
a body over the limit, 408 for one that crawls, 431) is followed by a lingering close:
closing a socket with unread bytes makes the kernel send a reset, and a client that is
still writing its body (most write it all before they read) then reports "connection
reset" instead of the answer. So the server ends its side after the answer (the client
reads the answer, then the end of the stream), and reads and drops whatever still comes
until the client closes, nothing arrives for ``LINGER_IDLE`` seconds, ``LINGER_SECONDS``
have passed or ``LINGER_BYTES`` have been dropped; only then does it close.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bastion.api.errors import SECURITY_HEADERS, error_body

MAX_HEAD_BYTES = 64 * 1024
LINGER_IDLE = 2.0
LINGER_SECONDS = 10.0
LINGER_BYTES = 64 * 1024 * 1024  # twice the default body limit


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing; the parser wraps it in its own error."""


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_too_large = False
        self._lingering = False
        self._linger_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._cycle_transport = _CloseAfterAnswer(self)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drop(len(data))
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()
        if self.cycle is not None:
            # The request's cycle closes the connection after an answer with "Connection:
            # close"; through this transport that close lingers when the body is unread.
            self.cycle.transport = self._cycle_transport

    def on_response_complete(self) -> None:
        if self._lingering:  # no keep-alive, no pipelined request after this answer
            self.server_state.total_requests += 1
            return
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._disarm_header_timer()
        if self._head_too_large:
            self._answer_and_close(431, "The request line and headers are too large.", linger=True)
        else:
            self._answer_and_close(400, "Invalid HTTP request.")

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request is still being answered: drop the slow one after it.
            self.cycle.keep_alive = False
            return
        self._answer_and_close(408, "The request headers took too long to arrive.")

    def close_after_answer(self) -> None:
        """Close after the current answer: at once when the request has been read whole
        (or the answer was cut short), else with a lingering close."""
        if self._lingering or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_complete or not cycle.more_body:
            self.transport.close()
            return
        self._linger()

    def _linger(self) -> None:
        self._lingering = True
        self._disarm_header_timer()
        self._unset_keepalive_if_required()
        if self.transport.can_write_eof():
            self.transport.write_eof()  # after the answer is written
        self.flow.resume_reading()  # paused while the unread body filled the buffer
        now = self.loop.time()
        self._linger_last = now
        self._linger_end = now + LINGER_SECONDS
        self._linger_left = LINGER_BYTES
        self._linger_timer = self.loop.call_later(LINGER_IDLE, self._linger_check)

    def _drop(self, size: int) -> None:
        self._linger_last = self.loop.time()
        self._linger_left -= size
        if self._linger_left < 0:
            self.transport.close()

    def _linger_check(self) -> None:
        self._linger_timer = None
        if self.transport.is_closing():
            return
        wait = min(self._linger_last + LINGER_IDLE, self._linger_end) - self.loop.time()
        if wait <= 0:
            self.transport.close()
        else:
            self._linger_timer = self.loop.call_later(wait, self._linger_check)

    def _answer_and_close(self, status: int, message: str, linger: bool = False) -> None:
        body = error_body(status, message)
        head = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode()]
        headers: list[tuple[bytes, bytes]] = [
            *self.server_state.default_headers, (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close"), *SECURITY_HEADERS,
        ]
        head.extend(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"".join(head) + b"\r\n" + body)
        if linger:
            self._linger()
        else:
            self.transport.close()


class _CloseAfterAnswer(asyncio.Transport):
    """The connection's transport as uvicorn's request cycle uses it (write, is_closing,
    close), with ``close`` left to the protocol."""

    def __init__(self, protocol: GuardedHttpProtocol):
        super().__init__()
        self._protocol = protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._protocol.transport.write(data)

    def is_closing(self) -> bool:
        return self._protocol.transport.is_closing()

    def close(self) -> None:
        self._protocol.close_after_answer()


_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}


def guarded_protocol(header_timeout: float) -> type[GuardedHttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this header deadline."""
    attrs: dict[str, Any] = {"header_timeout": header_timeout}
    return type("BastionHttpProtocol", (GuardedHttpProtocol,), attrs)
