"""``/api/health``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, request_info
from bastion.api.openapi import FIELDS_PARAM, HEALTH
from bastion.api.ratelimit import client_ip
from bastion.api.routing import Endpoint

# Headers that suggest a reverse proxy in front of the server, checked (as PocketBase does)
# after the configured ``trustedProxy.headers``.
PROXY_HEADERS = ("CF-Connecting-IP", "Fly-Client-IP", "X-Forwarded-For")


async def health(request: Request) -> Response:
    info = await request_info(request)
    data = {}
    if info.is_superuser:
        settings = app_of(request).settings.current
        configured = [str(h) for h in (settings.get("trustedProxy") or {}).get("headers") or ()]
        data = {
            "canBackup": False,  # Bastion has no backups API
            "realIP": client_ip(request.scope, settings),
            "possibleProxyHeader": next((h for h in (*configured, *PROXY_HEADERS) if request.headers.get(h)), ""),
        }
    return json_response(request, {"code": 200, "message": "API is healthy.", "data": data})


routes = [
    Endpoint("GET", "/api/health", health, "Health check", params=[FIELDS_PARAM], response=HEALTH),
]
