"""The app's own routes (``core/hooks/routes.py``) served beside the built-in ones.

The router and the OpenAPI document are built from one route table: the built-in
endpoints, then the custom ones. When the custom routes change (hook files loaded again
with ``serve --dev``, or a route registered on a running app), the table is built again
and the router's routes replaced at once. A custom route that repeats a built-in one
(same method and path) is refused.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from bastion.api.endpoints import TABLE
from bastion.api.http import app_of, json_response, no_content, read_body, request_info, require_superuser
from bastion.api.openapi import ANY_OBJECT
from bastion.api.routing import Auth, Endpoint, Handler, RouteTable
from bastion.core.app import App
from bastion.core.errors import Unauthorized
from bastion.core.hooks.routes import CustomRoute, RouteEvent

log = logging.getLogger("bastion.hooks")
AUTH = {"anyone": Auth.ANYONE, "record": Auth.RECORD, "superuser": Auth.SUPERUSER}


def _handler(route: CustomRoute) -> Handler:
    async def handle(request: Request) -> Response:
        app = app_of(request)
        info = await require_superuser(request) if route.auth == "superuser" else await request_info(request)
        if route.auth == "record" and info.auth is None:
            raise Unauthorized("The request requires valid record authorization token.")
        body = await read_body(request) if request.method != "GET" else {}
        event = RouteEvent(app, info, dict(request.path_params), dict(request.query_params), body)
        if route.transaction:
            async with app.db.transaction() as conn:
                event.conn = conn
                result = await route.handler(event)
        else:
            result = await route.handler(event)
        if isinstance(result, Response):
            return result
        return no_content() if result is None else json_response(request, result)
    return handle


def _endpoint(route: CustomRoute) -> Endpoint:
    return Endpoint(route.method, route.path, _handler(route), route.summary or f"{route.method} {route.path}",
                    AUTH[route.auth], tag="custom", response=ANY_OBJECT, errors=(400, 403, 404),
                    request=ANY_OBJECT if route.method != "GET" else None)


def install(asgi: Starlette, app: App) -> None:
    """Serve the app's custom routes after the built-in ones, now and whenever they change."""

    def rebuild() -> None:
        table = RouteTable([*TABLE.endpoints, *(_endpoint(r) for r in app.hooks.routes)])
        asgi.router.routes = list[BaseRoute](table.routes())
        asgi.state.route_table = table

    rebuild()
    app.routes_changed.append(rebuild)
