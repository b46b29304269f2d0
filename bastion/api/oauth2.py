"""OAuth2 sign-in endpoints: ``auth-with-oauth2`` and the all-in-one ``oauth2-redirect``."""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bastion.api.auth import _auth_collection, sign_in, signed_in
from bastion.api.http import app_of, read_body, request_info
from bastion.api.openapi import (
    ANY_OBJECT,
    ERROR,
    STATUS_TEXT,
    TEXT,
    body_schema,
    query_param,
)
from bastion.api.ratelimit import client_ip, guards_of
from bastion.api.routing import Endpoint
from bastion.core.errors import BadRequest
from bastion.tools.jsonutil import dumps

OAUTH2_TOPIC = "@oauth2"
FAILED = "Failed to authenticate. You can close this window and go back to the app to try again."


async def auth_with_oauth2(request: Request) -> Response:
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    guards = guards_of(request)

    async def per_account(account: str) -> None:
        await guards.identity.hit(col, "authWithOAuth2", account)

    done = await app_of(request).oauth2.authenticate(col, body, info, per_account)
    return await signed_in(request, done.identity, info, "oauth2", body, meta=done.meta)


async def oauth2_redirect(request: Request) -> Response:
    """Where providers send the browser back in the SDK's all-in-one flow: ``{state,
    code}`` go to the realtime client whose id is ``state`` (subscribed to ``@oauth2``,
    connected from the same address), on whichever process holds it; the SDK then
    finishes the sign-in with ``auth-with-oauth2``."""
    app = app_of(request)
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        with contextlib.suppress(BadRequest):
            params.update(await read_body(request))  # Apple's response_mode=form_post
    state, code, error = (params.get(k) if isinstance(params.get(k), str) else "" for k in ("state", "code", "error"))
    if not state:
        return _text(FAILED, 400)
    message = {"state": state, "code": code, **({"error": error} if error else {})}
    app.realtime.direct(state, OAUTH2_TOPIC, dumps(message),
                        client_ip(request.scope, app.settings.current))
    if error or not code:
        return _text(FAILED, 400)
    return _text("The OAuth2 provider authorized the sign-in. You can close this window and continue in the app.")


def _text(message: str, status: int = 200) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers={"Cache-Control": "no-store"})


CODE = body_schema("provider", "code", "codeVerifier", "redirectURL", "createData",
                   createData=ANY_OBJECT)
# The browser reads plain text, for a person; a 400 may be either.
TEXT_ANSWERS = {
    204: None,
    200: {"description": "Plain text for the person in the browser", **TEXT},
    400: {"description": STATUS_TEXT[400],
          "content": {"application/json": {"schema": ERROR}, **TEXT["content"]}},
}
routes = [
    sign_in("auth-with-oauth2", auth_with_oauth2, "Sign in with an OAuth2 authorization code",
            ("authWithOAuth2", "auth"), CODE, flow="oauth2"),
    Endpoint("GET", "/api/oauth2-redirect", oauth2_redirect,
             "Where an OAuth2 provider returns the browser (all-in-one flow)",
             params=[query_param(n, {"type": "string"}) for n in ("state", "code", "error")],
             errors=(400,), responses=TEXT_ANSWERS),
    Endpoint("POST", "/api/oauth2-redirect", oauth2_redirect,
             "Where an OAuth2 provider posts the browser back",
             undocumented="Apple's form_post: the GET's parameters, sent as a form; the GET "
                          "describes them"),
]
