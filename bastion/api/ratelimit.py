"""HTTP side of rate limiting: the client IP, route tags, and the middleware.

``RateLimitMiddleware`` runs before routing. It looks the request up in the route table
for the collection and the PocketBase tags its endpoint declares (``list``, ``create``,
``authWithPassword`` + ``auth`` ...), identifies the caller only when a rule could
apply, and answers 429 ``{"status":429,"message":"Too Many Requests.","data":{}}`` with
``Retry-After``. It also
turns a ``RateLimited`` raised by a route (the sign-in lockout) into the same answer.

``guards_of`` gives the auth routes their per-identity limiter and lockouts, sharing the
store of the sign-in lockout (so Redis, when configured, holds them across nodes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.api.errors import error_body
from bastion.api.http import app_of, request_info
from bastion.api.routing import RouteTable
from bastion.core.auth.ratelimit import (
    OTP_LOCKOUT,
    OTP_TOO_MANY,
    IdentityLimiter,
    Lockout,
    RateLimited,
    RateLimiter,
    Target,
)


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def client_ip(scope: Scope, settings: Mapping[str, Any]) -> str:
    """The caller's IP: from ``trustedProxy.headers`` when configured (the right-most
    valid address, or left-most with ``useLeftmostIP``), else the connection's address."""
    proxy = settings.get("trustedProxy") or {}
    names = [str(h).lower().encode("latin-1") for h in proxy.get("headers") or ()]
    if names:
        headers = dict(scope.get("headers") or ())
        for name in names:
            raw = headers.get(name)
            if not raw:
                continue
            candidates = [p.strip() for p in raw.decode("latin-1").split(",")]
            if not proxy.get("useLeftmostIP"):
                candidates.reverse()
            for ip in candidates:
                if _valid_ip(ip):
                    return ip
    client = scope.get("client")
    return str(client[0]) if client else ""


class RateLimitMiddleware:
    """Applies ``settings.rateLimits`` before routing; see the module doc."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, table: RouteTable):
        self.app = app
        self.limiter = limiter
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._check(scope)
        except RateLimited as exc:
            await _reject(send, exc)
            return
        # A route's own 429 (the sign-in lockout) is answered by ErrorMiddleware,
        # with its Retry-After, like every other error a route raises.
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope) -> None:
        if not self.limiter.enabled:
            return
        request = Request(scope)
        app = app_of(request)
        ip = client_ip(scope, app.settings.current)
        if not self.limiter.applies_to(ip):
            return
        method, path = scope["method"], scope["path"]
        target = Target(method, path)
        matched = self.table.tags(method, path)
        if matched is not None:
            collection = app.registry.find(matched[0])
            if collection is not None:
                target = Target(method, path, collection, matched[1])
        if not self.limiter.may_limit(target):
            return
        info = await request_info(request)  # cached in the scope: the route reuses it
        await self.limiter.check(target, ip, authed=info.auth is not None, superuser=info.is_superuser)


async def _reject(send: Send, exc: RateLimited) -> None:
    body = error_body(exc.status, exc.message)
    await send({"type": "http.response.start", "status": exc.status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(exc.retry_after).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})


def lockout_of(request: Request) -> Lockout:
    """The sign-in lockout of this ASGI app (disabled when the app has no store)."""
    lockout = getattr(request.app.state, "lockout", None)
    return lockout if isinstance(lockout, Lockout) else Lockout(None)


@dataclass(frozen=True)
class AuthGuards:
    """What stands before the auth endpoints besides the per-IP rules."""

    identity: IdentityLimiter  # settings.identityRateLimits
    password: Lockout  # failed password sign-ins per identity
    otp: Lockout  # failed OTP codes per identity, across its OTPs


def guards_of(request: Request) -> AuthGuards:
    """The auth guards of this ASGI app, made once (all off when the app has no store)."""
    state = request.app.state
    guards = getattr(state, "auth_guards", None)
    if not isinstance(guards, AuthGuards):
        password = lockout_of(request)
        app = app_of(request)
        guards = AuthGuards(
            IdentityLimiter(lambda: app.settings.current, password.store), password,
            Lockout(password.store, OTP_LOCKOUT, prefix="lockotp:", message=OTP_TOO_MANY))
        state.auth_guards = guards
    return guards
