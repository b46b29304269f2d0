"""Request parsing and response writing shared by every resource module."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from bastion.api import multipart
from bastion.api.fields_param import pick_fields
from bastion.api.limits import json_body_limit
from bastion.api.multipart import MAX_FILES, SPOOL
from bastion.core.access import RequestInfo
from bastion.core.app import App
from bastion.core.auth.api_keys import PREFIX as API_KEY_PREFIX
from bastion.core.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    Unauthorized,
)
from bastion.core.fields.gocast import format_float
from bastion.core.fields.upload import Upload, add_uploads, base_name, stored_name
from bastion.core.files.service import SNIFF_BYTES
from bastion.core.ports import Connection
from bastion.tools import sniff
from bastion.tools.jsonutil import dumps

_NUMBER_RE = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?$")
MAX_FORM_FIELDS = 1000
UNSUPPORTED_CONTENT_TYPE = "Unsupported Content-Type."


def app_of(request: Request) -> App:
    return request.app.state.bastion


def json_response(request: Request, data: Any, status: int = 200) -> Response:
    """JSON with PocketBase's conventions; ``?fields=`` applies to every 2xx body."""
    fields = request.query_params.get("fields")
    if fields and 200 <= status < 300 and data is not None:
        data = pick_fields(data, fields)
    return Response(dumps(data), status_code=status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


async def read_body(request: Request, files: FileLimits | None = None) -> dict[str, Any]:
    """The body as a dict, from JSON, multipart or urlencoded forms. Uploads come as
    ``Upload`` objects under the keys ``files`` takes (other files are dropped); the
    handler calls ``close_forms`` when done with them."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw_length = request.headers.get("content-length")
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            return await _read_form(request, files)
        finally:
            if files is None:
                await close_forms(request)
    data = await request.body()
    if not data or raw_length == "0":
        return {}
    # As PocketBase: a body needs a Content-Type it reads (none at all is refused too).
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise BadRequest(UNSUPPORTED_CONTENT_TYPE)
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON body: {exc.msg} at position {exc.pos}.") from None
    if body is None:  # PocketBase reads `null` as no data
        return {}
    if not isinstance(body, dict):
        raise BadRequest("The JSON body must be an object.")
    return body


def _infer(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if _NUMBER_RE.match(value):
        number = float(value)
        if format_float(number) != value:  # as PocketBase: only what prints back as it was sent
            return value
        return number if "." in value or value == "-0" else int(value)
    return value


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
FORMS = "bastion.forms"  # the scope key of the forms a request parsed (their files closed at its end)

# For a multipart body: the largest file a form key takes, in bytes, and how many files
# it takes, or None when the key takes no file (its files are dropped, as PocketBase
# ignores them).
FileLimits = Callable[[str], tuple[int, int] | None]


async def _read_urlencoded(request: Request) -> FormData:
    """Refuse what the form parser would quietly drop: a body that is not ASCII or has a
    ``%`` not followed by two hex digits."""
    raw = await request.body()
    if not raw.isascii() or _BAD_ESCAPE.search(raw):
        raise BadRequest("Failed to read the form body: it is not valid urlencoded text.")
    try:
        return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    except Exception as exc:  # noqa: BLE001 - python-multipart raises several types
        raise BadRequest(f"Failed to read the form body: {exc}") from None


async def _read_form(request: Request, files: FileLimits | None) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() == "multipart/form-data":
        def limit(key: str) -> tuple[int, int]:
            found = files(key) if files is not None else None
            return (SPOOL, MAX_FILES) if found is None else found

        form = await multipart.parse(request, limit, MAX_FORM_FIELDS)
        request.scope.setdefault(FORMS, []).append(form)
    else:
        form = await _read_urlencoded(request)
    body: dict[str, Any] = {}
    uploaded: dict[str, list[Upload]] = {}
    # Each part holds at most 1 MiB (Starlette), but a body may repeat @jsonPayload: all of
    # them together may hold no more JSON than a JSON body could.
    json_left = json_body_limit(request.scope)
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if files is not None and files(key) is not None:
                uploaded.setdefault(key, []).append(await _upload(value))
            continue
        if key == "@jsonPayload":
            json_left -= len(value)
            if json_left < 0:
                raise PayloadTooLarge()
            try:
                payload = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise BadRequest("Invalid @jsonPayload: it must hold a JSON object.") from None
            if not isinstance(payload, dict):
                raise BadRequest("Invalid @jsonPayload: it must hold a JSON object.")
            body.update(payload)
            continue
        item = _infer(value)
        if key in body:
            body[key] = (body[key] if isinstance(body[key], list) else [body[key]]) + [item]
        else:
            body[key] = item
    for key, items in uploaded.items():
        add_uploads(body, key, items)
    return body


async def _upload(file: UploadFile) -> Upload:
    head = await file.read(SNIFF_BYTES)
    await file.seek(0)
    ctype = sniff.content_type(head)
    original = base_name(file.filename or "")
    return Upload(original, stored_name(original, sniff.extension(ctype)), file.size or 0, ctype, file.file)


async def close_forms(request: Request) -> None:
    """Close the temporary files of the forms this request parsed."""
    for form in request.scope.pop(FORMS, ()):
        await form.close()


def request_token(request: Request) -> str:
    """The auth token of the request (``Authorization: <token>`` or ``Bearer <token>``)."""
    return _auth_token(request)


def _auth_token(request: Request) -> str:
    header = request.headers.get("authorization", "").strip()
    if header[:7].lower() == "bearer ":
        header = header[7:].strip()
    return header


class RuleHeaders(Mapping[str, str]):
    """The request headers as rules read them (``@request.headers.x_token``): names in
    lower case with ``-`` as ``_``. Decoded on first use: most requests meet no rule
    that reads a header."""

    __slots__ = ("_raw", "_decoded")

    def __init__(self, raw: list[tuple[bytes, bytes]]):
        self._raw = raw
        self._decoded: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._decoded is None:
            self._decoded = {k.decode("latin-1").lower().replace("-", "_"): v.decode("latin-1")
                             for k, v in self._raw}
        return self._decoded

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


async def request_info(
    request: Request, body: dict[str, Any] | None = None, conn: Connection | None = None,
) -> RequestInfo:
    """Who is calling and with what; the token is checked once per request (the caller's
    record read on ``conn`` when given)."""
    cached = request.scope.get("bastion.info")
    if cached is not None:
        if body is not None:
            cached.body = body
        return cached
    app = app_of(request)
    token = _auth_token(request)
    api_key = await app.api_keys.identify(token) if token.startswith(API_KEY_PREFIX) else None
    auth = await app.auth.identify(token, conn) if token and api_key is None else None
    info = RequestInfo(
        auth=auth,
        api_key=api_key,
        method=request.method,
        headers=RuleHeaders(request.scope["headers"]),
        query=dict(request.query_params),
        body=body or {},
    )
    request.scope["bastion.info"] = info
    return info


async def require_superuser(request: Request) -> RequestInfo:
    info = await request_info(request)
    if info.auth is None:
        raise Unauthorized("The request requires valid record authorization token.")
    if not info.is_superuser:
        raise Forbidden("The authorized record is not allowed to perform this action.")
    return info
