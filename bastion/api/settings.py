"""``/api/settings`` — runtime settings, for superusers only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.api.http import app_of, json_response, read_body, require_superuser


async def get_settings(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, app_of(request).settings.public())


async def patch_settings(request: Request) -> Response:
    await require_superuser(request)
    body = await read_body(request)
    return json_response(request, await app_of(request).settings.update(body))


routes = [
    Route("/api/settings", get_settings, methods=["GET"]),
    Route("/api/settings", patch_settings, methods=["PATCH"]),
]
