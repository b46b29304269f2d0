"""OpenAPI 3.1 built from the live schema, and the interactive docs page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bastion.api.http import app_of
from bastion.core.collections import Collection
from bastion.core.fields import Field
from bastion.tools.jsonutil import dumps

ERROR = {"$ref": "#/components/schemas/Error"}


def field_schema(f: Field) -> dict[str, Any]:
    t = f.TYPE
    if t == "number":
        return {"type": "number"}
    if t == "bool":
        return {"type": "boolean"}
    if t == "json":
        return {}
    if t == "geoPoint":
        return {"type": "object", "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}}}
    if t in ("select", "relation", "file") and f.multi:
        item: dict[str, Any] = {"type": "string"}
        if t == "select":
            item["enum"] = list(f.values)  # type: ignore[attr-defined]
        return {"type": "array", "items": item}
    schema: dict[str, Any] = {"type": "string"}
    if t == "select":
        schema["enum"] = [*f.values, ""]  # type: ignore[attr-defined]
    if t == "email":
        schema["format"] = "email"
    if t == "url":
        schema["format"] = "uri"
    return schema


def record_schema(col: Collection, for_input: bool) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if not for_input:
        props["collectionId"] = {"type": "string"}
        props["collectionName"] = {"type": "string"}
    for f in col.fields:
        if f.TYPE == "password":
            if for_input and col.is_auth:
                props["password"] = {"type": "string"}
                props["passwordConfirm"] = {"type": "string"}
            continue
        if f.name == "tokenKey" or (for_input and f.TYPE == "autodate"):
            continue
        props[f.name] = field_schema(f)
    return {"type": "object", "properties": props}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any] | None, body: dict[str, Any] | None = None, tag: str = "") -> dict[str, Any]:
    responses: dict[str, Any] = {"400": {"description": "Bad request", **_json(ERROR)},
                                 "403": {"description": "Forbidden", **_json(ERROR)},
                                 "404": {"description": "Not found", **_json(ERROR)}}
    responses["200" if ok is not None else "204"] = {"description": "OK", **(_json(ok) if ok else {})}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "tags": [tag] if tag else []}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    return op


LIST_PARAMS = [
    {"name": n, "in": "query", "required": False, "schema": s}
    for n, s in (("page", {"type": "integer", "minimum": 1}), ("perPage", {"type": "integer", "minimum": 1}),
                 ("sort", {"type": "string"}), ("filter", {"type": "string"}),
                 ("skipTotal", {"type": "boolean"}), ("fields", {"type": "string"}),
                 ("expand", {"type": "string"}),
                 ("cursor", {"type": "string", "description": "Keyset pagination: empty for the first page, "
                             "then the nextCursor of the previous page"}))
]
AGGREGATE_PARAMS = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
    for n, d in (("groupBy", "comma list of fields (at most 5)"), ("sum", "number fields"),
                 ("avg", "number fields"), ("min", "fields"), ("max", "fields"), ("filter", "filter expression"),
                 ("sort", "count, sum.<f>, avg.<f>, min.<f>, max.<f> or a groupBy field; - for descending"),
                 ("limit", "1-1000, default 100"))
]


def collection_paths(col: Collection) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{col.name}"}
    body = {"$ref": f"#/components/schemas/{col.name}Input"}
    envelope = {"type": "object", "properties": {
        "page": {"type": "integer"}, "perPage": {"type": "integer"}, "totalItems": {"type": "integer"},
        "totalPages": {"type": "integer"}, "items": {"type": "array", "items": ref}}}
    base = f"/api/collections/{col.name}/records"
    idp = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths: dict[str, Any] = {base: {"get": {**_op(f"List {col.name}", envelope, tag=col.name), "parameters": LIST_PARAMS}},
                             f"{base}/{{id}}": {"get": {**_op(f"View a {col.name} record", ref, tag=col.name), "parameters": idp}}}
    aggregate = {"type": "object", "properties": {"totalGroups": {"type": "integer"}, "items": {
        "type": "array", "items": {"type": "object", "properties": {
            "group": {"type": "object"}, "count": {"type": "integer"}, "sum": {"type": "object"},
            "avg": {"type": "object"}, "min": {"type": "object"}, "max": {"type": "object"}}}}}}
    paths[f"/api/collections/{col.name}/aggregate"] = {"get": {
        **_op(f"Aggregate {col.name} (count, sum, avg, min, max, group-by) under the list rule", aggregate,
              tag=col.name), "parameters": AGGREGATE_PARAMS}}
    if not col.is_view:
        paths[base]["post"] = _op(f"Create a {col.name} record", ref, body, col.name)
        paths[f"{base}/{{id}}"]["patch"] = {**_op(f"Update a {col.name} record", ref, body, col.name), "parameters": idp}
        paths[f"{base}/{{id}}"]["delete"] = {**_op(f"Delete a {col.name} record", None, tag=col.name), "parameters": idp}
    if col.is_auth:
        creds = {"type": "object", "required": ["identity", "password"], "properties": {
            "identity": {"type": "string", "minLength": 1, "maxLength": 255},
            "password": {"type": "string", "minLength": 1, "maxLength": 255},
            "identityField": {"type": "string"}}}
        auth = {"type": "object", "properties": {"token": {"type": "string"}, "record": ref}}
        paths[f"/api/collections/{col.name}/auth-with-password"] = {"post": _op("Sign in with a password", auth, creds, col.name)}
        paths[f"/api/collections/{col.name}/auth-refresh"] = {"post": _op("Refresh the auth token", auth, tag=col.name)}
        paths[f"/api/collections/{col.name}/auth-methods"] = {"get": _op("List auth methods", {"type": "object"}, tag=col.name)}
    return paths


def build_document(cols: list[Collection], version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": {"type": "object", "required": ["status", "message", "data"], "properties": {
        "status": {"type": "integer"}, "message": {"type": "string"}, "data": {"type": "object"}}}}
    paths: dict[str, Any] = {
        "/api/health": {"get": _op("Health check", {"type": "object"}, tag="system")},
        "/api/batch": {"post": _op("Run record writes in one transaction", {"type": "array"},
                                   {"type": "object", "properties": {"requests": {"type": "array"}}}, "system")},
        "/api/settings": {"get": _op("Read settings (superusers)", {"type": "object"}, tag="system"),
                          "patch": _op("Change settings (superusers)", {"type": "object"}, {"type": "object"}, "system")},
        "/api/collections": {"get": {**_op("List collections (superusers)", {"type": "object"}, tag="collections"),
                                     "parameters": LIST_PARAMS},
                             "post": _op("Create a collection (superusers)", {"type": "object"}, {"type": "object"}, "collections")},
    }
    for col in sorted(cols, key=lambda c: c.name):
        schemas[col.name] = record_schema(col, for_input=False)
        schemas[f"{col.name}Input"] = record_schema(col, for_input=True)
        paths.update(collection_paths(col))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Bastion API", "version": version,
                 "description": "The PocketBase-compatible Web API of this Bastion app."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "token": {"type": "apiKey", "in": "header", "name": "Authorization"}}},
        "security": [{}, {"token": []}],
    }


async def openapi_json(request: Request) -> Response:
    from bastion import __version__

    doc = build_document(app_of(request).registry.all(), __version__)
    return Response(dumps(doc), media_type="application/json")


DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Bastion API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<script id="api-reference" data-url="/api/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
<noscript>The interactive reference needs JavaScript; the document itself is at
<a href="/api/openapi.json">/api/openapi.json</a>.</noscript>
</body></html>
"""


async def docs_page(request: Request) -> Response:
    return HTMLResponse(DOCS_PAGE)


routes = [
    Route("/api/openapi.json", openapi_json, methods=["GET"]),
    Route("/api/docs", docs_page, methods=["GET"]),
]
