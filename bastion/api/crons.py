"""``/api/crons``: the app's cron jobs, as PocketBase lists and runs them (superusers)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, no_content, require_superuser
from bastion.api.openapi import ID_PARAM
from bastion.api.routing import Auth, Endpoint
from bastion.core.errors import NotFound


async def list_crons(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, [job.to_api() for job in app_of(request).crons.jobs()])


async def run_cron(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    job = next((j for j in app.crons.jobs() if j.id == request.path_params["id"]), None)
    if job is None:
        raise NotFound("Missing or invalid cron job.")
    app.crons.start(job)  # in the background, as PocketBase: the answer does not wait for it
    return no_content()


JOBS = {"type": "array", "items": {"type": "object", "properties": {
    "id": {"type": "string"}, "expression": {"type": "string"}}}}
routes = [
    Endpoint("GET", "/api/crons", list_crons, "List the cron jobs (superusers)", Auth.SUPERUSER, response=JOBS),
    Endpoint("POST", "/api/crons/{id}", run_cron, "Run a cron job now (superusers)", Auth.SUPERUSER,
             params=ID_PARAM, errors=(404,)),
]
