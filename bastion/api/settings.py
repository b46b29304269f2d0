"""``/api/settings`` — runtime settings, for superusers only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, no_content, read_body, require_superuser
from bastion.api.openapi import ANY_OBJECT, FIELDS_PARAM, body_schema
from bastion.api.routing import Auth, Endpoint
from bastion.core.errors import FieldError, NotFound, ValidationFailed
from bastion.core.fields.text import EMAIL_RE


async def get_settings(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, app_of(request).settings.public())


async def patch_settings(request: Request) -> Response:
    await require_superuser(request)
    body = await read_body(request)
    return json_response(request, await app_of(request).settings.update(body))


async def test_email(request: Request) -> Response:
    await require_superuser(request)
    body = await read_body(request)
    app = app_of(request)
    email, template = body.get("email"), body.get("template")
    collection = body.get("collection") or "_superusers"
    if not isinstance(email, str) or not EMAIL_RE.match(email) or not isinstance(collection, str):
        raise ValidationFailed("Failed to send the test email.", {
            "email": FieldError("validation_is_email", "Must be a valid email address")})
    col = app.registry.get(collection, "Missing or invalid auth collection context.")
    if not col.is_auth:
        raise NotFound("Missing or invalid auth collection context.")
    await app.flows.send_test(col, str(template), email)
    return no_content()


SU = Auth.SUPERUSER
TEST_EMAIL = body_schema("email", "template", "collection", required=("email", "template"))
routes = [
    Endpoint("POST", "/api/settings/test/email", test_email, "Send a test email (superusers)", SU,
             request=TEST_EMAIL, errors=(404,)),
    Endpoint("GET", "/api/settings", get_settings, "Read settings (superusers)", SU,
             params=[FIELDS_PARAM], response=ANY_OBJECT),
    Endpoint("PATCH", "/api/settings", patch_settings, "Change settings (superusers)", SU,
             params=[FIELDS_PARAM], request=ANY_OBJECT, response=ANY_OBJECT),
]
