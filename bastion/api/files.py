"""``/api/files/{collection}/{recordId}/{filename}``: no files are stored yet (file fields
hold names only), so every download is one of PocketBase's 404s for a missing file (an
unknown collection has its own message), not the router's answer for a path it does not
serve."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of
from bastion.api.routing import Auth, Endpoint
from bastion.core.errors import NotFound


async def download(request: Request) -> Response:
    app_of(request).registry.get(request.path_params["collection"], "Missing or invalid collection context.")
    raise NotFound()


routes = [
    Endpoint("GET", "/api/files/{collection}/{record}/{filename}", download,
             "Download a file of a record", Auth.RULES, ratelimit=("file",),
             undocumented="no file is stored yet: every download answers 404"),
]
