"""Email flows, OTP and impersonation endpoints of auth collections."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.api.auth import _auth_collection, _auth_response, signed_in
from bastion.api.http import app_of, json_response, no_content, read_body, request_info
from bastion.core.access import AuthIdentity
from bastion.core.errors import FieldError, Forbidden, NotFound, Unauthorized, ValidationFailed

MAX_IMPERSONATE = 94_670_856


async def request_verification(request: Request) -> Response:
    await app_of(request).flows.request_verification(_auth_collection(request), await read_body(request))
    return no_content()


async def confirm_verification(request: Request) -> Response:
    await app_of(request).flows.confirm_verification(_auth_collection(request), await read_body(request))
    return no_content()


async def request_password_reset(request: Request) -> Response:
    await app_of(request).flows.request_password_reset(_auth_collection(request), await read_body(request))
    return no_content()


async def confirm_password_reset(request: Request) -> Response:
    await app_of(request).flows.confirm_password_reset(_auth_collection(request), await read_body(request))
    return no_content()


async def request_email_change(request: Request) -> Response:
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    await app_of(request).flows.request_email_change(col, info.auth, body)
    return no_content()


async def confirm_email_change(request: Request) -> Response:
    await app_of(request).flows.confirm_email_change(_auth_collection(request), await read_body(request))
    return no_content()


async def request_otp(request: Request) -> Response:
    otp_id = await app_of(request).flows.request_otp(_auth_collection(request), await read_body(request))
    return json_response(request, {"otpId": otp_id})


async def auth_with_otp(request: Request) -> Response:
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    identity = await app_of(request).flows.auth_with_otp(col, body)
    return await signed_in(request, identity, info, "otp", body)


async def _self(request: Request) -> tuple[AuthIdentity, dict[str, Any]]:
    """The caller's own auth record in this collection (the totp endpoints need one)."""
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    if info.auth is None or info.auth.collection.id != col.id:
        raise Unauthorized("The request requires valid record authorization token.")
    return info.auth, body


async def totp_enroll(request: Request) -> Response:
    identity, _ = await _self(request)
    return json_response(request, await app_of(request).mfa.enroll(identity))


async def totp_confirm(request: Request) -> Response:
    identity, body = await _self(request)
    codes = await app_of(request).mfa.confirm(identity, body.get("code"))
    return json_response(request, {"recoveryCodes": codes})


async def totp_disable(request: Request) -> Response:
    identity, body = await _self(request)
    await app_of(request).mfa.disable(identity, body.get("code"))
    return no_content()


async def auth_with_totp(request: Request) -> Response:
    """The second factor of an MFA sign-in: ``{mfaId, code}`` (a TOTP or recovery code)."""
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    mfa_id = body.get("mfaId") or request.query_params.get("mfaId")
    if not isinstance(mfa_id, str) or not mfa_id:
        raise ValidationFailed("An error occurred while validating the submitted data.", {
            "mfaId": FieldError("validation_required", "Cannot be blank")})
    app = app_of(request)
    identity = await app.mfa.pending_identity(col, mfa_id)
    await app.mfa.verify(identity, body.get("code"))
    return await signed_in(request, identity, info, "totp", {**body, "mfaId": mfa_id})


async def impersonate(request: Request) -> Response:
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    if info.auth is None:
        raise Unauthorized("The request requires valid record authorization token.")
    if not info.is_superuser:
        raise Forbidden("The authorized record is not allowed to perform this action.")
    duration = body.get("duration", 0)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= MAX_IMPERSONATE:
        raise ValidationFailed("An error occurred while validating the submitted data.", {
            "duration": FieldError("validation_invalid_value", f"Must be an integer between 0 and {MAX_IMPERSONATE}")})
    app = app_of(request)
    identity = await app.auth.by_id(col, request.path_params["id"])
    if identity is None:
        raise NotFound("The requested resource wasn't found.")
    token = app.auth.token_for(col, identity.record, refreshable=False, duration=duration or None)
    return await _auth_response(request, identity, info, token=token)


P = "/api/collections/{collection}/"
routes = [
    Route(P + "request-verification", request_verification, methods=["POST"]),
    Route(P + "confirm-verification", confirm_verification, methods=["POST"]),
    Route(P + "request-password-reset", request_password_reset, methods=["POST"]),
    Route(P + "confirm-password-reset", confirm_password_reset, methods=["POST"]),
    Route(P + "request-email-change", request_email_change, methods=["POST"]),
    Route(P + "confirm-email-change", confirm_email_change, methods=["POST"]),
    Route(P + "request-otp", request_otp, methods=["POST"]),
    Route(P + "auth-with-otp", auth_with_otp, methods=["POST"]),
    Route(P + "impersonate/{id}", impersonate, methods=["POST"]),
    Route(P + "auth-with-totp", auth_with_totp, methods=["POST"]),
    Route(P + "totp/enroll", totp_enroll, methods=["POST"]),
    Route(P + "totp/confirm", totp_confirm, methods=["POST"]),
    Route(P + "totp/disable", totp_disable, methods=["POST"]),
]
