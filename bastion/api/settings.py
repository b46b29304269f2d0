"""``/api/settings`` — runtime settings, for superusers only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, no_content, read_body, require_superuser
from bastion.api.openapi import ANY_OBJECT, FIELDS_PARAM, body_schema
from bastion.api.routing import Auth, Endpoint
from bastion.core.app import App
from bastion.core.errors import BadRequest, BastionError, FieldError, NotFound, Unavailable, ValidationFailed
from bastion.core.fields.text import EMAIL_RE
from bastion.core.ports import StorageFactory

S3_FILESYSTEMS = ("storage", "backups")
S3_TEST_FAILED = "Failed to test the S3 filesystem."


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


async def test_s3(request: Request) -> Response:
    """Store, list and delete a test file in the bucket of the file storage (``storage``)
    or of the backups, as PocketBase's ``POST /api/settings/test/s3`` does."""
    await require_superuser(request)
    body = await read_body(request)
    app, filesystem = app_of(request), body.get("filesystem")
    if not isinstance(filesystem, str) and filesystem is not None:
        raise BadRequest("An error occurred while loading the submitted data.")
    if filesystem not in S3_FILESYSTEMS:
        code, text = ("validation_in_invalid", "Must be a valid value") if filesystem else (
            "validation_required", "Cannot be blank")
        raise ValidationFailed(S3_TEST_FAILED, {"filesystem": FieldError(code, text)})
    settings = app.settings.current
    options = settings["backups"]["s3"] if filesystem == "backups" else settings["s3"]
    if not options["enabled"]:
        raise BadRequest(f"{S3_TEST_FAILED} Raw error: \nS3 storage filesystem is not enabled")
    check = getattr(_storages(app)(options), "check", None)
    if check is None:
        raise BadRequest(f"{S3_TEST_FAILED} Raw error: \nS3 storage filesystem is not enabled")
    try:
        await check()
    except BastionError as exc:
        raise BadRequest(f"{S3_TEST_FAILED} Raw error: \n{exc.message}") from None
    return no_content()


def _storages(app: App) -> StorageFactory:
    """The App's file storage factory (``cli/`` and ``bastion.testing`` wire it)."""
    factory: StorageFactory | None = app.storage
    if factory is None:
        raise Unavailable("No file storage is set up on this server.")
    return factory


SU = Auth.SUPERUSER
TEST_EMAIL = body_schema("email", "template", "collection", required=("email", "template"))
TEST_S3 = body_schema("filesystem", required=("filesystem",), filesystem={"enum": list(S3_FILESYSTEMS)})
routes = [
    Endpoint("POST", "/api/settings/test/s3", test_s3, "Test the S3 bucket of the files or backups (superusers)",
             SU, request=TEST_S3),
    Endpoint("POST", "/api/settings/test/email", test_email, "Send a test email (superusers)", SU,
             request=TEST_EMAIL, errors=(404,)),
    Endpoint("GET", "/api/settings", get_settings, "Read settings (superusers)", SU,
             params=[FIELDS_PARAM], response=ANY_OBJECT),
    Endpoint("PATCH", "/api/settings", patch_settings, "Change settings (superusers)", SU,
             params=[FIELDS_PARAM], request=ANY_OBJECT, response=ANY_OBJECT),
]
