"""The one mapper from errors to HTTP responses, and the outermost safety net."""

from __future__ import annotations

import itertools
import logging
import secrets
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.errors import DEFAULT_MESSAGES, BastionError
from bastion.tools.jsonutil import dumps

log = logging.getLogger("bastion.api")

SECURITY_HEADERS = [
    (b"x-xss-protection", b"1; mode=block"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

FRAMEABLE = b"x-bastion-frameable"  # set by an answer other sites may frame (files); not sent


def _security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The security headers for an answer: all of them, except ``X-Frame-Options`` for an
    answer marked frameable (an uploaded file, sandboxed by its own CSP), which, as in
    PocketBase, another site may show in a frame. The mark itself is taken out."""
    for i, (name, _value) in enumerate(headers):
        if name == FRAMEABLE:
            del headers[i]
            return [h for h in SECURITY_HEADERS if h[0] != b"x-frame-options"]
    return SECURITY_HEADERS


# No route for a method and path: PocketBase's router sends GET and HEAD to its static
# file handler (pb_public) and every other method to its catch-all route, so the message
# tells which; it never answers 405.
FILE_NOT_FOUND = "File not found."

# Request ids: unique, not secret. A random prefix per process and a counter (one
# getrandom() per request was 1 % of a small request's CPU).
_ID_PREFIX = secrets.token_hex(3)
_ID_COUNTER = itertools.count(int.from_bytes(secrets.token_bytes(4), "big"))

# Answers after which the rest of the request (an oversized or crawling body) is not worth
# reading: the server closes the connection instead of draining it.
CLOSE_AFTER = frozenset({408, 413})


def error_body(status: int, message: str | None = None, data: dict[str, Any] | None = None) -> bytes:
    return dumps({"status": status, "message": message or DEFAULT_MESSAGES.get(status, ""), "data": data or {}})


def response_for(exc: BastionError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, int(retry_after))).encode()))
    if exc.status in CLOSE_AFTER:
        headers.append((b"connection", b"close"))
    return exc.status, headers, dumps(exc.to_dict())


class ErrorMiddleware:
    """Adds a request id and security headers; turns any escaped error into JSON.

    Known errors keep their status and message. The router's own answers (no route for
    the path, or none for the method) become PocketBase's 404s (see ``route_not_found``);
    anything else is logged with the request id and answered with a bare 500 that
    reveals nothing of the cause.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFF:010x}"
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.extend(_security_headers(headers))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BastionError as exc:
            if started:
                raise
            status, headers, body = response_for(exc, request_id)
            await _send(send, status, headers + SECURITY_HEADERS, body)
        except HTTPException as exc:
            if started:
                raise
            headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
            if exc.status_code in (404, 405):  # Starlette's router: no route for this path or method
                body = route_not_found(scope["method"])
                await _send(send, 404, headers + SECURITY_HEADERS, body)
                return
            headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
            await _send(send, exc.status_code, headers + SECURITY_HEADERS, error_body(exc.status_code))
        except Exception:
            log.exception("unhandled error [request %s] %s %s", request_id, scope.get("method"), scope.get("path"))
            if started:
                raise
            headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
            await _send(send, 500, headers + SECURITY_HEADERS, error_body(500))


def route_not_found(method: str) -> bytes:
    """The body of PocketBase's 404 for a method and path no route serves."""
    return error_body(404, FILE_NOT_FOUND if method in ("GET", "HEAD") else None)


def _incoming_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 64 and text.replace("-", "").isalnum():
                return text
    return None


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = headers + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
