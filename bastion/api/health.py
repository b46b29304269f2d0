"""``/api/health``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.api.http import json_response, request_info


async def health(request: Request) -> Response:
    info = await request_info(request)
    data = {}
    if info.is_superuser:
        data = {
            "canBackup": False,
            "realIP": request.client.host if request.client else "",
            "possibleProxyHeader": "",
        }
    return json_response(request, {"code": 200, "message": "API is healthy.", "data": data})


routes = [Route("/api/health", health, methods=["GET", "HEAD"])]
