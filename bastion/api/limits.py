"""Request body size and pace limits, enforced while the body streams in.

A body larger than the limit is refused with 413 as soon as its declared length or the
bytes received so far exceed it; a body that arrives too slowly is refused with 408. Both
answers close the connection, so the rest of an unwanted body is never read.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.errors import response_for
from bastion.core.errors import BadRequest, BastionError, PayloadTooLarge, RequestTimeout

DEFAULT_BODY_LIMIT = 32 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 10.0
# Slower than any real client, even on a poor mobile link: below this average pace (after
# the first read timeout) a body is treated as a slow-client attack.
MIN_BODY_BYTES_PER_S = 1024


class BodyLimitMiddleware:
    """413 above ``limit`` bytes; 408 when ``read_timeout`` seconds pass without a chunk,
    or when the body falls below ``MIN_BODY_BYTES_PER_S`` after that first allowance."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_BODY_LIMIT, read_timeout: float = DEFAULT_READ_TIMEOUT):
        self.app = app
        self.limit = limit
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _check_declared_length(scope, self.limit):
            await self.app(scope, receive, send)  # no body to guard
            return
        reader = _PacedBody(receive, self.limit, self.read_timeout)
        replaced = False

        async def guarded_send(message: Message) -> None:
            # A route that catches every error while parsing (forms) would answer 400;
            # the limit that was hit is the true answer, so it replaces that answer.
            nonlocal replaced
            if reader.failure is None:
                await send(message)
                return
            if message["type"] == "http.response.start" and not replaced:
                replaced = True
                status, headers, body = response_for(reader.failure, _request_id(scope))
                await send({"type": "http.response.start", "status": status,
                            "headers": headers + [(b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, reader.receive, guarded_send)
        except BastionError:
            if reader.failure is not None:  # a route turned it into another error
                raise reader.failure from None
            raise


def _check_declared_length(scope: Scope, limit: int) -> bool:
    """Refuse a declared length over ``limit``; whether the request has a body at all
    (a length above zero, or a chunked body) that the limits must then watch."""
    has_body = False
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise BadRequest("Invalid Content-Length header.") from None
            if declared > limit:
                raise PayloadTooLarge()
            has_body = has_body or declared > 0
        elif key == b"transfer-encoding":
            has_body = True
    return has_body


def _request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


class _PacedBody:
    """Wraps ``receive``: counts bytes against the limit and bounds the wait for each chunk."""

    def __init__(self, receive: Receive, limit: int, read_timeout: float):
        self._receive = receive
        self._limit = limit
        self._timeout = read_timeout
        self._started = time.monotonic()
        self._received = 0
        self._complete = False
        self.failure: BastionError | None = None

    def _wait_budget(self) -> float:
        now = time.monotonic()
        by_pace = self._started + self._timeout + self._received / MIN_BODY_BYTES_PER_S
        return max(0.0, min(self._timeout, by_pace - now))

    async def receive(self) -> Message:
        if self._complete:  # only a disconnect can follow: wait for it unbounded
            return await self._receive()
        try:
            # asyncio.timeout rather than wait_for: no task per chunk (wait_for made one,
            # ~30 µs, even when the chunk was already there).
            async with asyncio.timeout(self._wait_budget()):
                message = await self._receive()
        except TimeoutError:
            self.failure = RequestTimeout("The request body arrived too slowly.")
            raise self.failure from None
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                self.failure = PayloadTooLarge()
                raise self.failure
            self._complete = not message.get("more_body", False)
        return message
