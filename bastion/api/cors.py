"""CORS as PocketBase answers it.

Every answer varies by ``Origin``. An allowed origin gets ``Access-Control-Allow-Origin``
(``*`` when ``*`` is configured, else the origin itself). Every ``OPTIONS`` request is a
preflight, answered here with 204 and an empty body before any route or middleware (so a
preflight is neither routed nor rate limited): for an allowed origin with the methods
Bastion serves, the request's own ``Access-Control-Request-Headers`` echoed back and
``Vary`` naming the two request headers; for a missing or refused origin with ``Vary:
Origin`` only, so the browser refuses the request. Like PocketBase, no ``Max-Age`` is sent.

Configured origins are matched as PocketBase matches them: ``*``; the exact origin;
``scheme://*.example.com`` for any subdomain (not the bare domain); and ``*`` / ``?``
wildcards anywhere in an origin (``http://localhost:*``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = b"GET,HEAD,PUT,PATCH,POST,DELETE"
_VARY_ORIGIN = (b"vary", b"Origin")
_MAX_HOST = 253  # the longest DNS name: longer origins never match a pattern


def _subdomain_of(origin: str, pattern: str) -> bool:
    """``origin`` is a subdomain of ``pattern``'s ``*`` part: the same scheme, and the
    host's labels equal the pattern's from the right up to a ``*`` label."""
    scheme, sep, host = origin.partition("://")
    p_scheme, p_sep, p_host = pattern.partition("://")
    if not sep or not p_sep or scheme != p_scheme or len(host) > _MAX_HOST:
        return False
    labels, wanted = host.split(".")[::-1], p_host.split(".")[::-1]
    for i, label in enumerate(labels):
        if i >= len(wanted):
            return False
        if wanted[i] == "*":
            return True
        if wanted[i] != label:
            return False
    return False


class OriginPolicy:
    """Which ``Origin`` values are allowed, and what ``Access-Control-Allow-Origin`` says."""

    def __init__(self, origins: Sequence[str]):
        self.origins = [o for o in origins if o] or ["*"]
        self.patterns = [re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in o))
                         for o in self.origins if o != "*"]

    def allow(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, None when refused."""
        for allowed in self.origins:
            if allowed == "*" or allowed == origin:
                return allowed
            if _subdomain_of(origin, allowed):
                return origin
        if len(origin) <= _MAX_HOST + 8 and "://" in origin:
            if any(p.fullmatch(origin) for p in self.patterns):
                return origin
        return None


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: Sequence[str] = ("*",)):
        self.app = app
        self.policy = OriginPolicy(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_headers = b""
        for key, value in scope["headers"]:
            if key == b"origin" and not origin:
                origin = value
            elif key == b"access-control-request-headers" and not request_headers:
                request_headers = value
        allowed = self.policy.allow(origin.decode("latin-1")) if origin else None
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": _preflight(allowed, request_headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = [_VARY_ORIGIN] if allowed is None else [
            _VARY_ORIGIN, (b"access-control-allow-origin", allowed.encode("latin-1"))]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*extra, *message.get("headers", ())]
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _preflight(allowed: str | None, request_headers: bytes) -> list[tuple[bytes, bytes]]:
    if allowed is None:
        return [_VARY_ORIGIN]
    headers = [
        _VARY_ORIGIN, (b"vary", b"Access-Control-Request-Method"), (b"vary", b"Access-Control-Request-Headers"),
        (b"access-control-allow-origin", allowed.encode("latin-1")), (b"access-control-allow-methods", ALLOWED_METHODS),
    ]
    if request_headers:
        headers.append((b"access-control-allow-headers", request_headers))
    return headers
