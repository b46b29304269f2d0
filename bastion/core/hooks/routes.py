"""Custom routes: the app's own endpoints under ``/api/``, declared in hook files.

``@app.route("GET", "/api/hello/{name}", auth="record")`` registers a handler that
receives a :class:`RouteEvent` (who asks, the path parameters, the query, the body, the
App and, with ``transaction=True``, a transaction that commits when the handler
returns) and returns what to answer: JSON-able data (200), ``None`` (204) or a response
of the web framework. Errors are Bastion's API errors, as everywhere. The routes are
served after the built-in ones, listed in ``/api/openapi.json`` (tag ``custom``), and
rate-limited by the ``/api/`` rules like every other path.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.core.access import AuthIdentity, RequestInfo
    from bastion.core.ports import Connection

AUTH_LEVELS = ("anyone", "record", "superuser")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PATH = re.compile(r"^/api/[A-Za-z0-9_\-./{}]+$")


@dataclass(eq=False)
class RouteEvent:
    """One request to a custom route."""

    app: Any  # the App (typed loosely: the App module imports this one)
    info: RequestInfo
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    conn: Connection | None = None  # with transaction=True

    @property
    def auth(self) -> AuthIdentity | None:
        return self.info.auth


RouteHandler = Callable[[RouteEvent], Awaitable[Any]]


@dataclass(frozen=True)
class CustomRoute:
    method: str
    path: str
    handler: RouteHandler
    auth: str = "anyone"  # anyone, record (401 without a signed-in record), superuser
    summary: str = ""
    transaction: bool = False


def custom_route(method: str, path: str, handler: RouteHandler, auth: str, summary: str,
                 transaction: bool) -> CustomRoute:
    """A route, checked now: a hook file with a wrong one fails to load, naming it."""
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"route {path!r}: the method must be one of {', '.join(METHODS)}, not {method!r}")
    if not _PATH.match(path) or "//" in path:
        raise ValueError(f"route {path!r}: a custom route's path starts with /api/ and holds letters, digits, "
                         "-_./ and {parameters}")
    if auth not in AUTH_LEVELS:
        raise ValueError(f"route {path!r}: auth must be one of {', '.join(AUTH_LEVELS)}, not {auth!r}")
    return CustomRoute(method, path, handler, auth, summary, transaction)
