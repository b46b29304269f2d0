"""Auth endpoints of auth collections: methods, password sign-in, refresh."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.api.http import app_of, json_response, read_body, request_info, request_token
from bastion.core import tokens
from bastion.core.access import AuthIdentity, RequestInfo
from bastion.core.collections import Collection
from bastion.core.errors import Forbidden, NotFound, Unauthorized


def _auth_collection(request: Request) -> Collection:
    col = app_of(request).registry.get(request.path_params["collection"], "Missing or invalid collection context.")
    if not col.is_auth:
        raise NotFound("Missing or invalid auth collection context.")
    return col


async def _auth_response(
    request: Request, identity: AuthIdentity, info: RequestInfo, token: str | None = None
) -> Response:
    app = app_of(request)
    record = app.records.to_api(identity.collection, identity.record, info, include_email=True)
    if request.query_params.get("expand"):
        await app.expander.apply(info, identity.collection, [record], request.query_params["expand"])
    token = token or app.auth.token_for(identity.collection, identity.record)
    return json_response(request, {"token": token, "record": record})


async def auth_methods(request: Request) -> Response:
    col = _auth_collection(request)
    opts = col.auth
    password = opts["passwordAuth"]
    return json_response(request, {
        "password": {"enabled": password["enabled"], "identityFields": password["identityFields"]},
        "oauth2": {"enabled": False, "providers": []},
        "mfa": {"enabled": False, "duration": 0},
        "otp": {"enabled": bool(opts["otp"]["enabled"]),
                "duration": opts["otp"]["duration"] if opts["otp"]["enabled"] else 0},
        "authProviders": [],
        "usernamePassword": password["enabled"] and "username" in password["identityFields"],
        "emailPassword": password["enabled"] and "email" in password["identityFields"],
    })


async def auth_with_password(request: Request) -> Response:
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    identity = await app_of(request).auth.with_password(col, body)
    rule = col.rule("authRule")
    if rule is None and not info.is_superuser:
        raise Forbidden("The request doesn't satisfy the collection requirements to authenticate.")
    return await _auth_response(request, identity, RequestInfo(auth=identity))


async def auth_refresh(request: Request) -> Response:
    col = _auth_collection(request)
    info = await request_info(request)
    if info.auth is None:
        raise Unauthorized("The request requires valid record authorization token.")
    if info.auth.collection.id != col.id:
        raise Forbidden(f"The request requires auth record from {info.auth.collection.name} collection.")
    token = request_token(request)
    claims = tokens.unverified_claims(token) or {}
    # An impersonation token is not refreshable: it comes back unchanged, with fresh data.
    keep = token if claims.get("refreshable") is False else None
    return await _auth_response(request, info.auth, info, token=keep)


routes = [
    Route("/api/collections/{collection}/auth-methods", auth_methods, methods=["GET"]),
    Route("/api/collections/{collection}/auth-with-password", auth_with_password, methods=["POST"]),
    Route("/api/collections/{collection}/auth-refresh", auth_refresh, methods=["POST"]),
]
