"""``/api/collections`` — the schema, for superusers only."""

from __future__ import annotations

import operator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, no_content, read_body, require_superuser
from bastion.api.openapi import (
    ANY_OBJECT,
    COLLECTION,
    COLLECTION_INPUT,
    FIELDS_PARAM,
    LIST_PARAMS,
    envelope,
)
from bastion.api.routing import Auth, Endpoint
from bastion.core.errors import BadRequest
from bastion.core.records.query import page_envelope, parse_list_params
from bastion.core.schema.collections import TYPES, parse_collection

SORTABLE = ("id", "created", "updated", "name", "system", "type")


async def list_collections(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    params = parse_list_params(request.query_params)
    items = [c.to_dict() for c in app.registry.all()]
    if params.filter_text:
        ids = await app.collections.matching_ids(params.filter_text, SORTABLE)
        items = [c for c in items if c["id"] in ids]
    for name, desc in reversed(_sort_keys(params.sort)):
        items.sort(key=operator.itemgetter(name), reverse=desc)
    total = len(items)
    start = (params.page - 1) * params.per_page
    page = items[start:start + params.per_page]
    return json_response(request, page_envelope(page, params, -1 if params.skip_total else total))


def _sort_keys(text: str) -> list[tuple[str, bool]]:
    keys = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name = part.lstrip("+-")
        if name not in SORTABLE:
            raise BadRequest(f"Invalid sort parameter: collections sort by {', '.join(SORTABLE)}.")
        keys.append((name, part.startswith("-")))
    return keys


async def view_collection(request: Request) -> Response:
    await require_superuser(request)
    col = app_of(request).registry.get(request.path_params["collection"], "The requested resource wasn't found.")
    return json_response(request, col.to_dict())


async def create_collection(request: Request) -> Response:
    await require_superuser(request)
    col = await app_of(request).collections.create(await read_body(request))
    return json_response(request, col.to_dict())


async def update_collection(request: Request) -> Response:
    await require_superuser(request)
    body = await read_body(request)
    col = await app_of(request).collections.update(request.path_params["collection"], body)
    return json_response(request, col.to_dict())


async def delete_collection(request: Request) -> Response:
    await require_superuser(request)
    await app_of(request).collections.delete(request.path_params["collection"])
    return no_content()


async def truncate_collection(request: Request) -> Response:
    await require_superuser(request)
    await app_of(request).collections.truncate(request.path_params["collection"])
    return no_content()


async def import_collections(request: Request) -> Response:
    await require_superuser(request)
    body = await read_body(request)
    delete_missing = body.get("deleteMissing", False)
    if not isinstance(delete_missing, bool):
        raise BadRequest("deleteMissing must be a boolean.")
    await app_of(request).collections.import_collections(body.get("collections"), delete_missing)
    return no_content()


def scaffolds() -> dict[str, Any]:
    out = {}
    for ctype in TYPES:
        data: dict[str, Any] = {"name": "scaffold", "type": ctype}
        if ctype == "view":
            data["viewQuery"] = "select 1 as id"
        col = parse_collection(data, None, creating=True)
        item = col.to_dict()
        item.update({"id": "", "name": "", "created": "", "updated": ""})
        item["indexes"] = []
        if ctype == "view":
            item["viewQuery"] = ""
        out[ctype] = item
    return out


async def get_scaffolds(request: Request) -> Response:
    await require_superuser(request)
    return json_response(request, scaffolds())


ONE = [{"name": "collection", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "Id or name"}]
IMPORT = {"type": "object", "properties": {
    "collections": {"type": "array", "items": COLLECTION_INPUT}, "deleteMissing": {"type": "boolean"}}}
SU, TAG, C = Auth.SUPERUSER, "collections", "/api/collections"
routes = [
    Endpoint("GET", C, list_collections, "List collections (superusers)", SU, tag=TAG,
             params=LIST_PARAMS, response=envelope(COLLECTION)),
    Endpoint("POST", C, create_collection, "Create a collection (superusers)", SU, tag=TAG,
             params=[FIELDS_PARAM], request=COLLECTION_INPUT, response=COLLECTION),
    Endpoint("PUT", C + "/import", import_collections,
             "Create or replace many collections; deleteMissing drops the others (superusers)",
             SU, tag=TAG, request=IMPORT),
    Endpoint("GET", C + "/meta/scaffolds", get_scaffolds, "Blank collections of each type (superusers)",
             SU, tag=TAG, params=[FIELDS_PARAM], response=ANY_OBJECT),
    Endpoint("GET", C + "/{collection}", view_collection, "View a collection (superusers)", SU, tag=TAG,
             params=[*ONE, FIELDS_PARAM], response=COLLECTION, errors=(404,)),
    Endpoint("PATCH", C + "/{collection}", update_collection, "Change a collection (superusers)",
             SU, tag=TAG, params=[*ONE, FIELDS_PARAM], request=COLLECTION_INPUT, response=COLLECTION,
             errors=(404,)),
    Endpoint("DELETE", C + "/{collection}", delete_collection,
             "Delete a collection and its records (superusers)", SU, tag=TAG, params=ONE, errors=(404,)),
    Endpoint("DELETE", C + "/{collection}/truncate", truncate_collection,
             "Delete every record of a collection (superusers)", SU, tag=TAG, params=ONE, errors=(404,)),
]
