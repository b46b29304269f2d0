"""``POST /api/batch`` — several record writes in one transaction.

What a batch may cost is settled before its body is parsed: while batches are off the
body is never read, a body over the batch bound (``BatchService.body_limit``) is refused
with 413 as it streams in (in a multipart batch the bound is on the requests' JSON, the
``@jsonPayload`` parts; files beside them are bounded like any upload), and the number
of requests is checked before any of them is looked at.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.fields_param import pick_fields
from bastion.api.http import app_of, close_forms, json_response, read_body, request_info
from bastion.api.idempotency import idempotent
from bastion.api.limits import lower_body_limit, lower_json_limit
from bastion.api.multipart import MAX_FILES
from bastion.api.openapi import BATCH, BATCH_RESULT, FIELDS_PARAM
from bastion.api.routing import Endpoint
from bastion.core.errors import BadRequest, FieldError, ValidationFailed
from bastion.core.fields.upload import add_uploads
from bastion.core.records.batch import BatchFailed, BatchOp, BatchService

_RECORDS = re.compile(r"^/api/collections/([^/]+)/records(?:/([^/]+))?$")
_ACTIONS = {("POST", False): "create", ("PUT", False): "upsert", ("PATCH", True): "update", ("DELETE", True): "delete"}


def parse_ops(body: dict[str, Any], service: BatchService) -> list[BatchOp]:
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise BadRequest("Failed to read the submitted batch data.")
    if not requests:
        raise ValidationFailed("Invalid batch request data.", {
            "requests": FieldError("validation_required", "Cannot be blank")})
    service.check_allowed(len(requests))  # before any request is read, as PocketBase validates
    ops = []
    for i, item in enumerate(requests):
        op = _parse_one(item)
        if isinstance(op, FieldError):
            # As PocketBase: the envelope is fine, this request is one the batch cannot run.
            raise BatchFailed(i, BadRequest(op.message))
        ops.append(op)
    return ops


def _parse_one(item: Any) -> BatchOp | FieldError:
    if not isinstance(item, dict):
        return FieldError("validation_invalid_value", "Each request must be an object")
    method = str(item.get("method", "")).upper()
    url = item.get("url")
    if not isinstance(url, str) or len(url) > 2048:
        return FieldError("validation_invalid_value", "Missing or invalid url")
    parts = urlsplit(url)
    match = _RECORDS.match(parts.path)
    action = _ACTIONS.get((method, bool(match and match.group(2)))) if match else None
    if match is None or action is None:
        return FieldError("validation_invalid_value", f"Unsupported batch request: {method} {parts.path[:100]}")
    body = item.get("body") if item.get("body") is not None else {}
    headers = item.get("headers") if item.get("headers") is not None else {}
    if not isinstance(body, dict) or not isinstance(headers, dict):
        return FieldError("validation_invalid_value", "body and headers must be objects")
    return BatchOp(
        action=action, collection=unquote(match.group(1)), record_id=unquote(match.group(2) or ""), body=body,
        headers={
            str(k).lower().replace("-", "_"): str(v) for k, v in headers.items() if str(k).lower() != "authorization"
        },
        query=dict(parse_qsl(parts.query)),
    )


# Uploads of a multipart batch: ``requests.N.field`` or ``requests[N].field`` (``+`` as for
# a single record), as PocketBase names them.
ANY_SIZE = 2**62  # a batch's file parts: bounded by the body limit (each file by its field, later)
_FILE_KEY = re.compile(r"^requests(?:\.(\d{1,6})\.|\[(\d{1,6})\]\.?)(.+)$")


def _attach_files(body: dict[str, Any], ops: list[BatchOp]) -> None:
    """Move the uploads of ``body`` into the bodies of the requests they name."""
    for key in [k for k in body if _FILE_KEY.match(k)]:
        match = _FILE_KEY.match(key)
        assert match is not None
        index = int(match.group(1) or match.group(2))
        if index >= len(ops):
            continue
        add_uploads(ops[index].body, match.group(3), body[key])


async def batch(request: Request) -> Response:
    app = app_of(request)
    app.batch.check_allowed(0)  # off: refused before the token or the body is read
    limit = app.batch.body_limit()
    if request.headers.get("content-type", "")[:19].lower() == "multipart/form-data":
        # The bound is on the requests' JSON; files beside it are bounded by the multipart
        # body limit, and each by its field's maxSize once its request is read.
        lower_json_limit(request.scope, limit)
    else:
        lower_body_limit(request.scope, limit)
    info = await request_info(request)
    try:
        form = await read_body(request, lambda key: (ANY_SIZE, MAX_FILES) if _FILE_KEY.match(key) else None)
        ops = parse_ops(form, app.batch)
        _attach_files(form, ops)
        results = await app.batch.run(info, ops)
    finally:
        await close_forms(request)
    out = []
    for op, result in zip(ops, results, strict=True):
        body = result.body
        if body is not None:
            if op.query.get("expand"):
                await app.expander.apply(info, result.collection, [body], op.query["expand"])
            if op.query.get("fields"):
                body = pick_fields(body, op.query["fields"])
        out.append({"status": result.status, "body": body})
    return json_response(request, out)


routes = [
    Endpoint("POST", "/api/batch", idempotent(batch),
             "Run record writes in one transaction (settings.batch.enabled)",
             params=[FIELDS_PARAM], request=BATCH, response=BATCH_RESULT, errors=(400, 403)),
]
