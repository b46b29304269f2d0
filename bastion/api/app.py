"""The ASGI application: routes, middleware and the error mapping."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.api import custom_routes
from bastion.api.cors import CorsMiddleware
from bastion.api.endpoints import TABLE
from bastion.api.errors import ErrorMiddleware
from bastion.api.fields_param import pick_fields
from bastion.api.limits import (
    DEFAULT_BODY_LIMIT,
    DEFAULT_JSON_BODY_LIMIT,
    DEFAULT_READ_TIMEOUT,
    BodyLimitMiddleware,
)
from bastion.api.paths import CleanPathMiddleware
from bastion.api.ratelimit import RateLimitMiddleware
from bastion.core.app import App
from bastion.core.auth.ratelimit import RateLimiter

log = logging.getLogger("bastion.api")


@dataclass(frozen=True)
class HttpOptions:
    body_limit: int = DEFAULT_BODY_LIMIT  # multipart bodies
    json_body_limit: int = DEFAULT_JSON_BODY_LIMIT  # every other body (at most body_limit)
    read_timeout: float = DEFAULT_READ_TIMEOUT  # max wait for each chunk of a request body
    origins: list[str] = field(default_factory=lambda: ["*"])
    manage_lifespan: bool = True


class _Asgi(Starlette):
    """Starlette with only Bastion's middleware: ErrorMiddleware already answers every
    error (the router's 404/405 included), so Starlette's own outer error layer and
    exception layer, each a coroutine and a ``send`` wrapper per request, are left out."""

    bastion: App
    _catch_up_failing = False

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A sibling worker or another node changed the schema or settings: catch up before
        # answering, so no request is served on a schema older than one a client was
        # already answered on (for other nodes: once their notice has arrived).
        if self.bastion.behind():
            try:
                await self.bastion.catch_up()
            except Exception as exc:  # noqa: BLE001 - the next request retries; this one goes on
                if not self._catch_up_failing:  # once per outage, not once per request
                    log.warning("could not load a schema or settings change made elsewhere (%s); "
                                "serving on the current one and retrying", exc)
                self._catch_up_failing = True
            else:
                self._catch_up_failing = False
        await super().__call__(scope, receive, send)


def create_asgi(app: App, options: HttpOptions | None = None) -> Starlette:
    """Serve ``app`` over HTTP. The App is started and closed with the ASGI lifespan."""
    options = options or HttpOptions()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if options.manage_lifespan:
            await app.start()
        try:
            yield
        finally:
            if options.manage_lifespan:
                await app.close()

    # Rate-limit counters live in the App's store (memory or Redis); without one they are off.
    rate_limits = [] if app.store is None else [Middleware(
        RateLimitMiddleware, limiter=RateLimiter(lambda: app.settings.current, app.store), table=TABLE)]
    asgi = _Asgi(
        routes=TABLE.routes(),
        # An unclean path is redirected before anything else, as PocketBase's router does.
        # CORS comes next so that every answer, errors included, carries its headers (a
        # browser shows a script no status or message of an answer without them), and so
        # that preflights are answered before rate limits and routing.
        middleware=[
            Middleware(CleanPathMiddleware),
            Middleware(CorsMiddleware, origins=options.origins),
            Middleware(ErrorMiddleware),
            *rate_limits,
            Middleware(BodyLimitMiddleware, limit=options.body_limit, read_timeout=options.read_timeout,
                       json_limit=options.json_body_limit),
        ],
        lifespan=lifespan,
    )
    asgi.router.redirect_slashes = False  # /api/x/ and /api/x are different routes, as in PocketBase
    asgi.state.route_table = TABLE  # what /api/openapi.json describes
    custom_routes.install(asgi, app)  # the app's own routes, after the built-in ones
    asgi.state.bastion = app
    asgi.bastion = app
    asgi.state.lockout = app.lockout
    app.realtime.dispatcher.pick = pick_fields  # subscriptions' ``fields``, as the API picks them
    if app.store is None:
        log.warning("the App has no store: rate limits and the sign-in lockout are off")
    return asgi
