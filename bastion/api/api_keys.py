"""``/api/api-keys`` — scoped service tokens, managed by superusers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, no_content, read_body, require_superuser
from bastion.api.openapi import API_KEY, FIELDS_PARAM, ID_PARAM, body_schema
from bastion.api.routing import Auth, Endpoint


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


NEW_KEY = body_schema(
    "name", "collections", "actions", "expires", required=("name", "collections", "actions"),
    collections={"type": "array", "items": {"type": "string"}},
    actions={"type": "array", "items": {"enum": ["list", "view", "create", "update", "delete"]}})
KEYS = {"type": "object", "properties": {"items": {"type": "array", "items": API_KEY}}}
SU = Auth.SUPERUSER
routes = [
    Endpoint("GET", "/api/api-keys", list_keys, "List API keys (superusers)", SU,
             params=[FIELDS_PARAM], response=KEYS),
    Endpoint("POST", "/api/api-keys", create_key, "Create an API key (superusers)", SU,
             params=[FIELDS_PARAM], request=NEW_KEY, response=API_KEY),
    Endpoint("DELETE", "/api/api-keys/{id}", revoke_key, "Revoke an API key (superusers)", SU,
             params=ID_PARAM, errors=(404,)),
]
