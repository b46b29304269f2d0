"""Email flows, OTP and impersonation endpoints of auth collections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.auth import _auth_collection, _auth_response, sign_in, signed_in
from bastion.api.http import app_of, json_response, no_content, read_body, request_info
from bastion.api.openapi import (
    ANY_OBJECT,
    EXPAND_PARAM,
    FIELDS_PARAM,
    ID_PARAM,
    body_schema,
    signed_in_schema,
)
from bastion.api.ratelimit import guards_of
from bastion.api.routing import Auth, Endpoint, Per
from bastion.core.access import AuthIdentity
from bastion.core.auth import tokens
from bastion.core.auth.mfa import TotpGuard
from bastion.core.auth.ratelimit import OTP_TOO_MANY
from bastion.core.errors import (
    BadRequest,
    FieldError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from bastion.core.schema.collections import Collection

MAX_IMPERSONATE = 94_670_856


def _text(body: Any, key: str) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def _token_identity(body: Any) -> str:
    """Whom a confirm-* token targets: its record (read unverified), else the token itself."""
    token = _text(body, "token")[:4096]
    if not token:
        return ""
    record_id = (tokens.unverified_claims(token) or {}).get("id")
    return f"record#{record_id}" if isinstance(record_id, str) and record_id else "token#" + token


async def _limited(
    request: Request, tag: str, identity_of: Callable[[Any], str] | None = None
) -> tuple[Collection, dict[str, Any]]:
    """The collection and body of an email-flow request, counted per identity first."""
    col = _auth_collection(request)
    body = await read_body(request)
    identity = identity_of(body) if identity_of is not None else _text(body, "email")
    await guards_of(request).identity.hit(col, tag, identity)
    return col, body


async def request_verification(request: Request) -> Response:
    col, body = await _limited(request, "requestVerification")
    await app_of(request).flows.request_verification(col, body)
    return no_content()


async def confirm_verification(request: Request) -> Response:
    col, body = await _limited(request, "confirmVerification", _token_identity)
    await app_of(request).flows.confirm_verification(col, body)
    return no_content()


async def request_password_reset(request: Request) -> Response:
    col, body = await _limited(request, "requestPasswordReset")
    await app_of(request).flows.request_password_reset(col, body)
    return no_content()


async def confirm_password_reset(request: Request) -> Response:
    col, body = await _limited(request, "confirmPasswordReset", _token_identity)
    await app_of(request).flows.confirm_password_reset(col, body)
    return no_content()


async def request_email_change(request: Request) -> Response:
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    if info.auth is not None and info.auth.collection.id == col.id:
        await guards_of(request).identity.hit(col, "requestEmailChange", f"record#{info.auth.id}")
    await app_of(request).flows.request_email_change(col, info.auth, body)
    return no_content()


async def confirm_email_change(request: Request) -> Response:
    col, body = await _limited(request, "confirmEmailChange", _token_identity)
    await app_of(request).flows.confirm_email_change(col, body)
    return no_content()


async def request_otp(request: Request) -> Response:
    col, body = await _limited(request, "requestOTP")
    otp_id = await app_of(request).flows.request_otp(col, body)
    # made-up ids for unknown emails too: guesses at either count against the email
    await guards_of(request).identity.remember_otp(col, otp_id, _text(body, "email"), col.auth["otp"]["duration"])
    return json_response(request, {"otpId": otp_id})


async def auth_with_otp(request: Request) -> Response:
    """PocketBase allows five tries per OTP identity in three minutes (then 429); failed
    codes across all of an identity's OTPs also lock it out with backoff."""
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    guards = guards_of(request)
    who = await guards.identity.otp_identity(col, _text(body, "otpId")[:255]) if _text(body, "otpId") else ""
    await guards.otp.begin_attempt(col, who)
    await guards.identity.hit(col, "authWithOTP", who, OTP_TOO_MANY)
    try:
        identity = await app_of(request).flows.auth_with_otp(col, body)
    except BadRequest as exc:
        if not isinstance(exc, ValidationFailed):
            await guards.otp.record_failure(col, who)
        raise
    await guards.otp.record_success(col, who)
    return await signed_in(request, identity, info, "otp", body)


async def _self(request: Request) -> tuple[AuthIdentity, dict[str, Any]]:
    """The caller's own auth record in this collection (the totp endpoints need one)."""
    col = _auth_collection(request)
    body = await read_body(request)
    info = await request_info(request, body)
    if info.auth is None or info.auth.collection.id != col.id:
        raise Unauthorized("The request requires valid record authorization token.")
    return info.auth, body


def _totp_guard(request: Request) -> TotpGuard:
    """The per-record window and lockout of every TOTP code check (sign-in, confirm,
    disable): guesses at any of them count together. Six digits are quick to guess, so
    it is the OTP lockout (10 wrong codes lock for 5 minutes, doubling to a day)."""
    guards = guards_of(request)
    return TotpGuard(guards.identity, guards.otp)


async def totp_enroll(request: Request) -> Response:
    identity, _ = await _self(request)
    return json_response(request, await app_of(request).mfa.enroll(identity))


async def totp_confirm(request: Request) -> Response:
    identity, body = await _self(request)
    codes = await app_of(request).mfa.confirm(identity, body.get("code"), _totp_guard(request))
    return json_response(request, {"recoveryCodes": codes})


async def totp_disable(request: Request) -> Response:
    identity, body = await _self(request)
    await app_of(request).mfa.disable(identity, body.get("code"), _totp_guard(request))
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
    await app.mfa.verify(identity, body.get("code"), _totp_guard(request))
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
    return await _auth_response(request, identity, info, token=token, method="impersonate")


P, EACH = "/api/collections/{collection}/", Per.AUTH_COLLECTION
EMAIL = body_schema("email", required=("email",))
OTP = {"type": "object", "properties": {"otpId": {"type": "string"}}}
RECOVERY_CODES = {"type": "object", "properties": {
    "recoveryCodes": {"type": "array", "items": {"type": "string"}}}}
IMPERSONATE = body_schema("duration", duration={"type": "integer", "minimum": 0})
# Requests, confirmations and OTP requests are counted per identity too: past the limit
# they answer 429 even with settings.rateLimits off.
routes = [
    Endpoint("POST", P + "request-verification", request_verification,
             "Email a verification link (204 for unknown emails too)", per=EACH,
             ratelimit=("requestVerification",), request=EMAIL, errors=(400, 404)),
    Endpoint("POST", P + "confirm-verification", confirm_verification,
             "Confirm an email address", per=EACH,
             ratelimit=("confirmVerification",), request=body_schema("token"), errors=(400, 404)),
    Endpoint("POST", P + "request-password-reset", request_password_reset,
             "Email a password reset link (204 for unknown emails too)", per=EACH,
             ratelimit=("requestPasswordReset",), request=EMAIL, errors=(400, 404)),
    Endpoint("POST", P + "confirm-password-reset", confirm_password_reset,
             "Set a new password with a reset token", per=EACH, ratelimit=("confirmPasswordReset",),
             request=body_schema("token", "password", "passwordConfirm"), errors=(400, 404)),
    Endpoint("POST", P + "request-email-change", request_email_change,
             "Email a link to confirm a new address (the record itself)", Auth.RECORD, EACH,
             ratelimit=("requestEmailChange",), request=body_schema("newEmail"),
             errors=(400, 403, 404)),
    Endpoint("POST", P + "confirm-email-change", confirm_email_change,
             "Confirm a new email address", per=EACH, ratelimit=("confirmEmailChange",),
             request=body_schema("token", "password"), errors=(400, 404)),
    Endpoint("POST", P + "request-otp", request_otp,
             "Email a one-time password (an otpId for unknown emails too)", per=EACH, flow="otp",
             ratelimit=("requestOTP",), request=EMAIL, response=OTP, errors=(400, 403, 404)),
    sign_in("auth-with-otp", auth_with_otp, "Sign in with a one-time password",
            ("authWithOTP", "auth"), body_schema("otpId", "password"), flow="otp"),
    Endpoint("POST", P + "impersonate/{id}", impersonate,
             "A non-refreshable token for a record (superusers)", Auth.SUPERUSER, EACH,
             params=[*ID_PARAM, FIELDS_PARAM, EXPAND_PARAM], request=IMPERSONATE,
             response=signed_in_schema, errors=(404,)),
    sign_in("auth-with-totp", auth_with_totp,
            "Second factor: a TOTP or recovery code for an MFA session", (),
            body_schema("mfaId", "code")),
    Endpoint("POST", P + "totp/enroll", totp_enroll, "Start TOTP enrolment (the record itself)",
             Auth.RECORD, EACH, response=ANY_OBJECT, errors=(400, 404)),
    Endpoint("POST", P + "totp/confirm", totp_confirm, "Confirm TOTP enrolment with a first code",
             Auth.RECORD, EACH, request=body_schema("code"), response=RECOVERY_CODES,
             errors=(400, 404)),
    Endpoint("POST", P + "totp/disable", totp_disable, "Turn TOTP off with a current code",
             Auth.RECORD, EACH, request=body_schema("code"), errors=(400, 404)),
]
