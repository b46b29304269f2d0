"""Request body size and pace limits, enforced while the body streams in.

A body larger than its limit is refused with 413 as soon as its declared length or the
bytes received so far exceed it; a body that arrives too slowly is refused with 408. Both
answers close the connection (the server reads and drops what is still on its way, for
a bounded time, so the client reads the answer: ``cli/http_protocol.py``).

Two limits: ``limit`` for ``multipart/form-data`` (where large file parts may come) and
the lower ``json_limit`` for every other body (JSON, urlencoded forms), which is parsed
whole into memory. A route may lower the limit of its own request (``lower_body_limit``).
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.errors import response_for
from bastion.core.errors import BadRequest, BastionError, PayloadTooLarge, RequestTimeout

DEFAULT_BODY_LIMIT = 32 * 1024 * 1024
# A record create whose JSON is all small objects (``[{},{},...]``) costs about 20 ms of
# CPU and 20 MiB of memory per MiB (measured); 2 MiB still holds a full json field (1 MiB)
# beside a large editor value.
DEFAULT_JSON_BODY_LIMIT = 2 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 10.0
# Slower than any real client, even on a poor mobile link: below this average pace (after
# the first read timeout) a body is treated as a slow-client attack.
MIN_BODY_BYTES_PER_S = 1024
_READER = "bastion.body"  # the scope key of a request's _PacedBody


class BodyLimitMiddleware:
    """413 above ``limit`` bytes for multipart bodies and ``json_limit`` (at most
    ``limit``) for any other; 408 when ``read_timeout`` seconds pass without a chunk,
    or when the body falls below ``MIN_BODY_BYTES_PER_S`` after that first allowance."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_BODY_LIMIT, read_timeout: float = DEFAULT_READ_TIMEOUT,
                 json_limit: int = DEFAULT_JSON_BODY_LIMIT):
        self.app = app
        self.limit = limit
        self.json_limit = min(json_limit, limit)
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, multipart = _body_headers(scope)
        if declared == 0:
            await self.app(scope, receive, send)  # no body to guard
            return
        limit = self.limit if multipart else self.json_limit
        if declared > limit:
            raise PayloadTooLarge()
        reader = _PacedBody(receive, limit, self.json_limit, declared, self.read_timeout)
        scope[_READER] = reader
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
        finally:
            # The reader holds the server's receive, which holds the scope: left there, that
            # cycle would keep the request (its parsed body too) until the next full GC.
            del scope[_READER]


def lower_body_limit(scope: Scope, limit: int) -> None:
    """Refuse this request's body (413) above ``limit`` bytes, when that is lower than the
    limit it already has: at once if its declared length is larger, else while it streams."""
    reader: _PacedBody | None = scope.get(_READER)
    if reader is not None:
        reader.lower_limit(limit)


def lower_json_limit(scope: Scope, limit: int) -> None:
    """Allow this request at most ``limit`` bytes of JSON (a JSON body, or the
    ``@jsonPayload`` parts of a multipart one), leaving a multipart body's limit as it is."""
    reader: _PacedBody | None = scope.get(_READER)
    if reader is not None:
        reader.json_limit = min(reader.json_limit, limit)


def json_body_limit(scope: Scope) -> int:
    """How many bytes of JSON this request may bring, in a JSON body or in the
    ``@jsonPayload`` parts of a multipart one."""
    reader: _PacedBody | None = scope.get(_READER)
    return DEFAULT_JSON_BODY_LIMIT if reader is None else reader.json_limit


def _body_headers(scope: Scope) -> tuple[int, bool]:
    """The declared body length (-1 for a chunked body, 0 for none) and whether the body
    is multipart; a malformed Content-Length is refused."""
    length = 0
    chunked = multipart = False
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise BadRequest("Invalid Content-Length header.") from None
            length = max(length, declared)
        elif key == b"transfer-encoding":
            chunked = True
        elif key == b"content-type":
            multipart = value[:19].lower() == b"multipart/form-data"
    return -1 if chunked and not length else length, multipart


def _request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


class _PacedBody:
    """Wraps ``receive``: counts bytes against the limit and bounds the wait for each chunk."""

    def __init__(self, receive: Receive, limit: int, json_limit: int, declared: int, read_timeout: float):
        self._receive = receive
        self._limit = limit
        self.json_limit = json_limit
        self._declared = declared
        self._timeout = read_timeout
        self._started = time.monotonic()
        self._received = 0
        self._complete = False
        self.failure: BastionError | None = None

    def lower_limit(self, limit: int) -> None:
        self._limit = min(self._limit, limit)
        self.json_limit = min(self.json_limit, limit)
        if max(self._declared, self._received) > self._limit:
            self.failure = PayloadTooLarge()
            raise self.failure

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
