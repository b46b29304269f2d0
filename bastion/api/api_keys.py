"""``/api/api-keys`` — scoped service tokens, managed by superusers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.api.http import app_of, json_response, no_content, read_body, require_superuser


async def list_keys(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, {"items": await app_of(request).api_keys.list()})


async def create_key(request: Request) -> Response:
    info = await require_superuser(request)
    created_by = info.auth.id if info.auth else ""
    return json_response(request, await app_of(request).api_keys.create(await read_body(request), created_by))


async def revoke_key(request: Request) -> Response:
    await require_superuser(request)
    await app_of(request).api_keys.revoke(request.path_params["id"])
    return no_content()


routes = [
    Route("/api/api-keys", list_keys, methods=["GET"]),
    Route("/api/api-keys", create_key, methods=["POST"]),
    Route("/api/api-keys/{id}", revoke_key, methods=["DELETE"]),
]
