"""``/api/webhooks``: endpoints told of record changes, and their failed deliveries
(superusers). See ``core/hooks/webhooks.py``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, no_content, read_body, require_superuser
from bastion.api.openapi import ANY_OBJECT, ID_PARAM
from bastion.api.routing import Auth, Endpoint
from bastion.core.hooks.webhooks import JOB


async def list_webhooks(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, await app_of(request).webhooks.all())


async def create_webhook(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, await app_of(request).webhooks.create(await read_body(request)))


async def view_webhook(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, await app_of(request).webhooks.get(request.path_params["id"]))


async def update_webhook(request: Request) -> Response:
    await require_superuser(request)
    body = await read_body(request)
    return json_response(request, await app_of(request).webhooks.update(request.path_params["id"], body))


async def delete_webhook(request: Request) -> Response:
    await require_superuser(request)
    await app_of(request).webhooks.delete(request.path_params["id"])
    return no_content()


async def rotate_secret(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, await app_of(request).webhooks.rotate(request.path_params["id"]))


async def failed_deliveries(request: Request) -> Response:
    """The dead letters: deliveries that ran out of attempts, newest first."""
    await require_superuser(request)
    jobs = await app_of(request).jobs.list("failed")
    return json_response(request, [j for j in jobs if j["name"] == JOB])


async def replay_delivery(request: Request) -> Response:
    await require_superuser(request)
    await app_of(request).webhooks.replay(request.path_params["id"])
    return no_content()


HOOK = {"type": "object", "properties": {
    "id": {"type": "string"}, "url": {"type": "string"}, "collections": {"type": "array", "items": {"type": "string"}},
    "actions": {"type": "array", "items": {"enum": ["create", "update", "delete"]}}, "enabled": {"type": "boolean"},
    "failures": {"type": "integer"}, "maxFailures": {"type": "integer"},
    "secrets": {"type": "array", "items": {"type": "string"}}, "created": {"type": "string"},
    "updated": {"type": "string"}}}
SU = Auth.SUPERUSER
routes = [
    Endpoint("GET", "/api/webhooks", list_webhooks, "List the webhooks (superusers)", SU,
             response={"type": "array", "items": HOOK}),
    Endpoint("POST", "/api/webhooks", create_webhook, "Register a webhook (superusers)", SU,
             request=ANY_OBJECT, response=HOOK, errors=(400,)),
    Endpoint("GET", "/api/webhooks/deliveries/failed", failed_deliveries,
             "List the failed webhook deliveries (superusers)", SU, response={"type": "array", "items": ANY_OBJECT}),
    Endpoint("POST", "/api/webhooks/deliveries/{id}/replay", replay_delivery,
             "Deliver a failed webhook delivery again (superusers)", SU, params=ID_PARAM, errors=(404,)),
    Endpoint("GET", "/api/webhooks/{id}", view_webhook, "View a webhook (superusers)", SU, params=ID_PARAM,
             response=HOOK, errors=(404,)),
    Endpoint("PATCH", "/api/webhooks/{id}", update_webhook, "Change a webhook (superusers)", SU, params=ID_PARAM,
             request=ANY_OBJECT, response=HOOK, errors=(400, 404)),
    Endpoint("DELETE", "/api/webhooks/{id}", delete_webhook, "Delete a webhook (superusers)", SU, params=ID_PARAM,
             errors=(404,)),
    Endpoint("POST", "/api/webhooks/{id}/rotate", rotate_secret,
             "Give a webhook a new secret; the previous one keeps signing (superusers)", SU, params=ID_PARAM,
             response=HOOK, errors=(404,)),
]
