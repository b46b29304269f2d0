"""``/api/jobs``: the app's background jobs and their state (superusers)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, require_superuser
from bastion.api.openapi import ID_PARAM, query_param
from bastion.api.routing import Auth, Endpoint
from bastion.core.errors import BadRequest, NotFound
from bastion.core.hooks.jobs import STATES

JOB = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "payload": {}, "state": {"enum": list(STATES)},
    "attempts": {"type": "integer"}, "maxAttempts": {"type": "integer"}, "runAt": {"type": "string"},
    "lastError": {"type": "string"}, "created": {"type": "string"}, "updated": {"type": "string"}}}


async def list_jobs(request: Request) -> Response:
    await require_superuser(request)
    state = request.query_params.get("state", "")
    if state and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}.")
    return json_response(request, await app_of(request).jobs.list(state))


async def view_job(request: Request) -> Response:
    await require_superuser(request)
    job = await app_of(request).jobs.get(request.path_params["id"])
    if job is None:
        raise NotFound("Missing or invalid job.")
    return json_response(request, job)


routes = [
    Endpoint("GET", "/api/jobs", list_jobs, "List the latest background jobs (superusers)", Auth.SUPERUSER,
             params=[query_param("state", {"enum": list(STATES)}, "only the jobs in this state")],
             response={"type": "array", "items": JOB}, errors=(400,)),
    Endpoint("GET", "/api/jobs/{id}", view_job, "View a background job (superusers)", Auth.SUPERUSER,
             params=ID_PARAM, response=JOB, errors=(404,)),
]
