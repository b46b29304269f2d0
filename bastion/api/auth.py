"""Auth endpoints of auth collections: methods, password sign-in, refresh."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, read_body, request_info, request_token
from bastion.api.openapi import (
    ANY_OBJECT,
    EXPAND_PARAM,
    FIELDS_PARAM,
    MFA_REQUIRED,
    signed_in_schema,
)
from bastion.api.ratelimit import client_ip, guards_of
from bastion.api.routing import Auth, Endpoint, Handler, Per, Schema
from bastion.core.access import AuthIdentity, RequestInfo
from bastion.core.auth import tokens
from bastion.core.auth.mfa import MfaRequired
from bastion.core.auth.service import credentials
from bastion.core.errors import BadRequest, Forbidden, NotFound, Unauthorized, ValidationFailed
from bastion.core.hooks.records import AuthEvent
from bastion.core.schema.collections import Collection
from bastion.tools.jsonutil import dumps


def _auth_collection(request: Request) -> Collection:
    col = app_of(request).registry.get(request.path_params["collection"], "Missing or invalid collection context.")
    if not col.is_auth:
        raise NotFound("Missing or invalid auth collection context.")
    return col


async def _auth_response(
    request: Request, identity: AuthIdentity, info: RequestInfo, token: str | None = None,
    meta: dict[str, Any] | None = None, method: str = "refresh",
) -> Response:
    """The answer of a sign-in (or refresh, impersonation): the token and the record, after
    the app's ``on_record_auth_request`` hooks, which may change it or refuse."""
    app = app_of(request)
    col = identity.collection
    record = app.records.to_api(col, identity.record, info, include_email=True)
    if request.query_params.get("expand"):
        await app.expander.apply(info, col, [record], request.query_params["expand"])
    event = AuthEvent(col, method, record, info, meta=meta)

    async def issue() -> None:
        event.token = token or app.auth.token_for(col, identity.record)

    if app.hooks.auth.has(col):
        if not await app.hooks.auth.run(event, col, issue):
            raise BadRequest("Failed to authenticate.")
    else:
        await issue()
    body: dict[str, Any] = {"token": event.token, "record": event.record}
    if event.meta is not None:
        body["meta"] = event.meta  # OAuth2 sign-ins carry the provider's data
    return json_response(request, body)


async def auth_methods(request: Request) -> Response:
    col = _auth_collection(request)
    opts = col.auth
    password = opts["passwordAuth"]
    return json_response(request, {
        "password": {"enabled": password["enabled"], "identityFields": password["identityFields"]},
        "oauth2": await app_of(request).oauth2.methods(col),
        "mfa": {"enabled": bool(opts["mfa"]["enabled"]),
                "duration": opts["mfa"]["duration"] if opts["mfa"]["enabled"] else 0},
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
    guards, who = guards_of(request), str(body.get("identity") or "")
    lockout = guards.password
    credentials(body)  # a malformed request is refused before it counts as an attempt
    await lockout.begin_attempt(col, who)
    await guards.identity.hit(col, "authWithPassword", who)
    try:
        identity = await app_of(request).auth.with_password(col, body)
    except BadRequest as exc:
        if not isinstance(exc, ValidationFailed):  # wrong identity or password
            await lockout.record_failure(col, who)
        raise
    await lockout.record_success(col, who)
    return await signed_in(request, identity, info, "password", body)


async def signed_in(
    request: Request, identity: AuthIdentity, info: RequestInfo, method: str, body: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> Response:
    """After a factor passed: the auth rule, then MFA (401 with an mfaId), then the token."""
    app = app_of(request)
    col = identity.collection
    rule = col.rule("authRule")
    caller = dataclasses.replace(info, context=method)
    if rule is None and not info.is_superuser:
        raise Forbidden("The request doesn't satisfy the collection requirements to authenticate.")
    if rule and not await app.records.matches_rule(caller, col, "authRule", identity.id):
        raise Forbidden("The request doesn't satisfy the collection requirements to authenticate.")
    mfa_id = request.query_params.get("mfaId") or body.get("mfaId")
    try:
        await app.mfa.gate(identity, method, mfa_id if isinstance(mfa_id, str) else None)
    except MfaRequired as pending:
        return Response(dumps({"mfaId": pending.mfa_id}), status_code=401, media_type="application/json")
    await app.flows.note_origin(identity, client_ip(request.scope, app.settings.current),
                                request.headers.get("user-agent", ""))
    return await _auth_response(request, identity, RequestInfo(auth=identity), meta=meta, method=method)


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


CREDENTIALS = {"type": "object", "required": ["identity", "password"], "properties": {
    "identity": {"type": "string", "minLength": 1, "maxLength": 255},
    "password": {"type": "string", "minLength": 1, "maxLength": 255},
    "identityField": {"type": "string"}}}
P, EACH = "/api/collections/{collection}/", Per.AUTH_COLLECTION


def sign_in(
    path: str, handler: Handler, summary: str, tags: tuple[str, ...], request: Schema, flow: str = "",
) -> Endpoint:
    """A way to sign in to each auth collection: the authRule decides; it answers a token
    and the record, or 401 with an MFA session when a second factor is due."""
    return Endpoint("POST", P + path, handler, summary, Auth.RULES, EACH, flow=flow, ratelimit=tags,
                    params=[FIELDS_PARAM, EXPAND_PARAM], request=request, response=signed_in_schema,
                    errors=(400, 403, 404), responses={401: MFA_REQUIRED})


routes = [
    Endpoint("GET", P + "auth-methods", auth_methods, "List auth methods", per=EACH,
             ratelimit=("listAuthMethods",), params=[FIELDS_PARAM], response=ANY_OBJECT,
             errors=(404,)),
    sign_in("auth-with-password", auth_with_password, "Sign in with a password",
            ("authWithPassword", "auth"), CREDENTIALS, flow="passwordAuth"),
    Endpoint("POST", P + "auth-refresh", auth_refresh, "Refresh the auth token", Auth.RECORD, EACH,
             ratelimit=("authRefresh",), params=[FIELDS_PARAM, EXPAND_PARAM],
             response=signed_in_schema, errors=(403, 404)),
]
