"""uvicorn's HTTP/1.1 protocol with a deadline for request headers and JSON errors.

uvicorn bounds the idle time between two requests on a kept-alive connection, but not
the time a client takes to send a request's headers, so a client can hold a connection
forever by sending nothing or one byte at a time. Here every request's headers (from the
connection's start or the request's first byte) must arrive within ``header_timeout``
seconds; otherwise the client gets a 408 and the connection is closed. The request line
and headers together may take ``MAX_HEAD_BYTES`` (431 above; the parser itself has no
limit). Requests the parser rejects get Bastion's JSON error shape instead of plain text.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bastion.api.errors import SECURITY_HEADERS, error_body

MAX_HEAD_BYTES = 64 * 1024


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing; the parser wraps it in its own error."""


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_too_large = False
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

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

    def send_400_response(self, msg: str) -> None:
        self._disarm_header_timer()
        if self._head_too_large:
            self._answer_and_close(431, "The request line and headers are too large.")
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

    def _answer_and_close(self, status: int, message: str) -> None:
        body = error_body(status, message)
        head = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode()]
        headers: list[tuple[bytes, bytes]] = [
            *self.server_state.default_headers, (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close"), *SECURITY_HEADERS,
        ]
        head.extend(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}


def guarded_protocol(header_timeout: float) -> type[GuardedHttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this header deadline."""
    attrs: dict[str, Any] = {"header_timeout": header_timeout}
    return type("BastionHttpProtocol", (GuardedHttpProtocol,), attrs)
