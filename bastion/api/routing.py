"""How an endpoint is declared, and what is derived from the declarations.

Each endpoint is one ``Endpoint``, declared in the ``routes`` list of its module beside
its handler: method, path, handler, who may call it, its PocketBase rate-limit tags, and
what the OpenAPI document says about it (summary, parameters, request and response
schemas, error statuses). ``bastion.api.endpoints`` gathers them in router order into one
``RouteTable``, from which come

- the router (``RouteTable.routes``): one Starlette route per endpoint;
- the rate-limit tags (``RouteTable.tags``), read before routing;
- the OpenAPI document (``bastion.api.openapi.build_document``), per caller.

Paths under ``/api/collections/{collection}/`` that act on one collection's records or
accounts are declared once with ``per`` set, and the document repeats them for each live
collection the caller may reach.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]
# A JSON Schema, or for endpoints declared ``per`` collection a function of the
# collection's name (its record schema is ``#/components/schemas/<name>``).
Schema = Mapping[str, Any] | Callable[[str], Mapping[str, Any]]


class Auth(Enum):
    """Who may call an endpoint."""

    ANYONE = "anyone"  # no token needed; one, when sent, may change the answer
    RULES = "rules"  # the collection's API rules decide (listRule ... authRule)
    RECORD = "record"  # a signed-in record of the collection, acting on itself: else 401
    SUPERUSER = "superuser"  # superusers only: 401 without a token, 403 for anyone else


class Per(Enum):
    """Which live collections a ``{collection}`` endpoint is documented for."""

    COLLECTION = "collection"  # each collection, as ``Endpoint.action`` allows the caller
    AUTH_COLLECTION = "auth collection"  # each auth collection the caller may sign in to


# The error statuses an endpoint answers because of who may call it.
AUTH_ERRORS: dict[Auth, tuple[int, ...]] = {
    Auth.ANYONE: (), Auth.RULES: (), Auth.RECORD: (401,), Auth.SUPERUSER: (400, 401, 403)}


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: what serves it, who may call it, and how it is documented."""

    method: str
    path: str
    handler: Handler
    summary: str  # "{collection}" stands for the collection's name when ``per`` is set
    auth: Auth = Auth.ANYONE
    per: Per | None = None
    action: str = ""  # the record action whose rule governs it (list, view, create ...)
    flow: str = ""  # the auth option that turns it off for all but superusers (otp, oauth2 ...)
    ratelimit: tuple[str, ...] = ()  # PocketBase's rate-limit tags ("<collection>:<tag>")
    tag: str = "system"  # the document's group; ``per`` endpoints use the collection's name
    description: str = ""
    params: Sequence[Mapping[str, Any]] = ()
    request: Schema | None = None  # a JSON body (and a form one with ``form``)
    form: bool = False
    response: Schema | None = None  # the 200 JSON body; None answers 204
    errors: tuple[int, ...] = ()  # besides 429, and those implied by ``auth`` and the bodies
    # Answers that replace the generated ones by status; None leaves the status out.
    responses: Mapping[int, Mapping[str, Any] | None] = field(default_factory=dict)
    undocumented: str = ""  # why the document leaves it out; empty: it is documented

    def __post_init__(self) -> None:
        if (self.per is not None or self.ratelimit) and "{collection}" not in self.path:
            raise ValueError(f"{self.method} {self.path}: a per-collection or tagged path names "
                             "its {collection}")
        if self.per is Per.COLLECTION and not self.action:
            raise ValueError(f"{self.method} {self.path}: say which record action governs it")

    @property
    def methods(self) -> frozenset[str]:
        return frozenset((self.method,))


class _HandlerApp:
    """A handler as the ASGI app of its route. Starlette would wrap each handler in its
    own exception layer (a coroutine and a ``send`` wrapper per request) for exception
    handlers Bastion does not use: ErrorMiddleware answers every error."""

    __slots__ = ("handler",)

    def __init__(self, handler: Handler):
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


def _pattern(path: str) -> re.Pattern[str]:
    """``path`` as a regex whose groups are its ``{params}`` (one non-empty segment each)."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


class RouteTable:
    """Every endpoint, in the order the router tries them."""

    def __init__(self, endpoints: Iterable[Endpoint]):
        self.endpoints = tuple(endpoints)
        seen = [(e.method, e.path) for e in self.endpoints]
        twice = {f"{m} {p}" for m, p in seen if seen.count((m, p)) > 1}
        if twice:
            raise ValueError(f"declared twice: {sorted(twice)}")
        self._tagged: dict[str, list[tuple[re.Pattern[str], tuple[str, ...]]]] = {}
        for e in self.endpoints:
            if e.ratelimit:
                self._tagged.setdefault(e.method, []).append((_pattern(e.path), e.ratelimit))

    def routes(self) -> list[Route]:
        """The router's routes. A GET route answers HEAD too."""
        out = []
        for e in self.endpoints:
            route = Route(e.path, e.handler, methods=[e.method])
            route.app = _HandlerApp(e.handler)
            out.append(route)
        return out

    def tags(self, method: str, path: str) -> tuple[str, tuple[str, ...]] | None:
        """``(collection, tags)`` when ``method path`` is a rate-limit tagged endpoint."""
        for pattern, tags in self._tagged.get("GET" if method == "HEAD" else method, ()):
            match = pattern.match(path)
            if match is not None:
                return match["collection"], tags
        return None

    def documented(self) -> list[Endpoint]:
        return [e for e in self.endpoints if not e.undocumented]
