"""OpenAPI 3.1 built from the live schema, and the interactive docs page.

The document describes what the server really answers, so that a schema fuzzer (and a
client generator) can trust it: every status an operation may return, the error shape,
and record shapes per collection (zero values included: ``""`` for an unset email, url or
date, ``[]`` for an empty multiple select). ``?fields=`` may pick any subset of a 2xx
body, so record properties are never listed as required.

The paths come from the endpoint declarations (``bastion.api.routing``): each endpoint's
``routes`` entry gives its summary, parameters, bodies and error statuses; the shared
schemas below are what those entries name.

Each caller is described only what it may reach (``Audience``): superusers get the whole
API; an API key its collections and actions; anyone else (guests and signed-in records)
the non-system collections whose list or view rule is not null, with only the
operations whose rule is not null, no hidden field, and the sign-in flows of auth
collections whose auth rule is not null. Nothing of the rest appears, not even a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bastion.api.http import app_of, request_info
from bastion.api.routing import AUTH_ERRORS, Auth, Endpoint, Per, RouteTable, Schema
from bastion.core.access import KEY_ACTIONS, RequestInfo
from bastion.core.auth.api_keys import ApiKeyScope
from bastion.core.fields import FIELD_TYPES as FIELD_CLASSES
from bastion.core.fields import Field
from bastion.core.fields.scalar import DATE_OUT
from bastion.core.schema.collections import Collection
from bastion.tools.jsonutil import dumps

ERROR = {"$ref": "#/components/schemas/Error"}
ANY_OBJECT: dict[str, Any] = {"type": "object"}
STATUS_TEXT = {
    200: "OK", 204: "Done, no content", 400: "Bad request or failed validation (details in data)",
    401: "The request requires valid record authorization token",
    403: "Forbidden: a locked (null) rule, a superuser-only action, or a disabled feature",
    404: "Not found, or hidden by the view/update/delete rule",
    413: "The request body is too large", 429: "Too many requests (settings.rateLimits)",
    503: "The server is busy or a service it needs is unavailable; try again shortly",
}


RECORD_RULES = {"list": "listRule", "view": "viewRule", "create": "createRule", "update": "updateRule",
                "delete": "deleteRule"}


@dataclass(frozen=True)
class Audience:
    """Whom a document is for, and so what it may name."""

    superuser: bool = False
    key: ApiKeyScope | None = None

    @classmethod
    def of(cls, info: RequestInfo) -> Audience:
        return cls(superuser=info.is_superuser, key=None if info.is_superuser else info.api_key)

    def actions(self, col: Collection) -> tuple[str, ...]:
        """The record actions on ``col`` to describe, in ``KEY_ACTIONS`` order.

        As ``core.access`` decides: a key reaches the non-system collections and actions it
        names, and nothing else; anyone else an action whose rule is not null, of a
        non-system collection that can be listed or viewed (an expression may still refuse
        them a given record, which the operation's responses say).
        """
        possible = KEY_ACTIONS[:2] if col.is_view else KEY_ACTIONS
        if self.superuser:
            return possible
        if col.system:
            return ()
        if self.key is not None:
            return tuple(a for a in possible if self.key.allows(col.id, a))
        if col.rule("listRule") is None and col.rule("viewRule") is None:
            return ()
        return tuple(a for a in possible if col.rule(RECORD_RULES[a]) is not None)

    def signs_in(self, col: Collection) -> bool:
        """Whether to describe ``col``'s auth flows: superusers see all; a key none (it is
        no record and cannot sign in); others those of non-system auth collections whose
        authRule lets anyone but a superuser sign in."""
        if self.superuser:
            return col.is_auth
        return self.key is None and col.is_auth and not col.system and col.rule("authRule") is not None

    def shows(self, f: Field) -> bool:
        """Hidden fields reach superusers only, so only they read about them."""
        return self.superuser or not f.hidden


EVERYONE = Audience(superuser=True)


def field_schema(f: Field, for_input: bool = False) -> dict[str, Any]:
    return f.json_schema(for_input)


def record_schema(col: Collection, audience: Audience = EVERYONE) -> dict[str, Any]:
    """A record as the API returns it (hidden fields only reach superusers)."""
    props: dict[str, Any] = {"collectionId": {"type": "string"}, "collectionName": {"type": "string"}}
    for f in col.fields:
        if f.SECRET or f.name == "tokenKey" or not audience.shows(f):
            continue
        props[f.name] = field_schema(f)
    props["expand"] = {"type": "object", "description": "Expanded relations, by field name"}
    note = "Fields marked hidden reach superusers only."
    if col.is_auth:
        note += (" email is shown when emailVisibility is true, and to the record itself, superusers and"
                 " callers matching the manageRule; sign-in responses always include it.")
    return {"type": "object", "properties": props, "description": note}


def record_input_schema(col: Collection, creating: bool, audience: Audience = EVERYONE) -> dict[str, Any]:
    """A create (or update) body: unknown keys and modifiers such as ``tags+`` pass through.

    An auth collection's password is hidden but every client sets it, so it is always
    described; other hidden fields only to superusers (nobody else may write them)."""
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in col.fields:
        if f.SERVER_SET or f.name == "tokenKey":
            continue
        if not audience.shows(f) and not (col.is_auth and f.system and f.SECRET):
            continue
        if f.SECRET:
            props["password"] = props["passwordConfirm"] = f.json_schema(for_input=True)
            if not creating:
                props["oldPassword"] = {"type": "string"}
            continue
        props[f.name] = field_schema(f, for_input=True)
        if creating and f.required and f.name != "id":
            required.append(f.name)
    if not creating:
        props.pop("id", None)
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def query_param(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


FIELDS_PARAM = query_param("fields", {"type": "string"},
                           "Comma list of keys to return (dot paths, *, :excerpt(n))")
EXPAND_PARAM = query_param("expand", {"type": "string"},
                           "Comma list of relations to expand (a.b.c, x_via_y)")
LIST_PARAMS = [
    query_param("page", {"type": "integer"}, "1 and up; lower values mean 1"),
    query_param("perPage", {"type": "integer"},
                "Default 30, at most 1000; 0 or less means the default"),
    query_param("sort", {"type": "string"}), query_param("filter", {"type": "string"}),
    query_param("skipTotal", {"type": "boolean"}), FIELDS_PARAM, EXPAND_PARAM,
    query_param("cursor", {"type": "string"},
                "Keyset pagination: empty for the first page, then the nextCursor of the previous page"),
]
AGGREGATE_PARAMS = [
    query_param(n, {"type": "string"}, d)
    for n, d in (("groupBy", "comma list of fields (at most 5)"), ("sum", "number fields"),
                 ("avg", "number fields"), ("min", "fields"), ("max", "fields"), ("filter", "filter expression"),
                 ("sort", "count, sum.<f>, avg.<f>, min.<f>, max.<f> or a groupBy field; - for descending"),
                 ("limit", "1-1000, default 100"), ("fields", "keys to return"))
]
AGGREGATE = {"type": "object", "properties": {
    "totalGroups": {"type": "integer"}, "items": {"type": "array", "items": {"type": "object", "properties": {
        "group": ANY_OBJECT, "count": {"type": "integer"}, "sum": ANY_OBJECT, "avg": ANY_OBJECT,
        "min": ANY_OBJECT, "max": ANY_OBJECT}}}}}
ID_PARAM = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def envelope(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["page", "perPage", "totalItems", "totalPages", "items"], "properties": {
        "page": {"type": "integer"}, "perPage": {"type": "integer"}, "totalItems": {"type": "integer"},
        "totalPages": {"type": "integer"}, "items": {"type": "array", "items": item},
        "nextCursor": {"type": ["string", "null"]}},
        "description": "totalItems and totalPages are -1 with skipTotal or cursor"}


def body_schema(
    *names: str, required: tuple[str, ...] = (), **special: dict[str, Any],
) -> dict[str, Any]:
    """An object of string properties ``names`` (``special`` gives others their schema)."""
    props = {n: special.get(n, {"type": "string"}) for n in names}
    return {"type": "object", "properties": props, **({"required": list(required)} if required else {})}


def record_ref(name: str) -> dict[str, Any]:
    """A record of collection ``name`` as the API returns it."""
    return {"$ref": f"#/components/schemas/{name}"}


def signed_in_schema(name: str) -> dict[str, Any]:
    """What a sign-in to collection ``name`` answers."""
    return {"type": "object", "properties": {
        "token": {"type": "string"}, "record": record_ref(name), "meta": ANY_OBJECT}}


# With MFA on, a first factor answers 401 with only the id of the MFA session (as PocketBase).
MFA_REQUIRED = {"description": "Second factor required (MFA)", **_json({"oneOf": [ERROR, {
    "type": "object", "required": ["mfaId"], "properties": {"mfaId": {"type": "string"}}}]})}


COLLECTION = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "type": {"enum": ["base", "auth", "view"]},
    "system": {"type": "boolean"}, "fields": {"type": "array", "items": ANY_OBJECT},
    "indexes": {"type": "array", "items": {"type": "string"}}}}
HEALTH = {"type": "object", "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                                           "data": ANY_OBJECT}}
BATCH = {"type": "object", "required": ["requests"], "properties": {"requests": {"type": "array", "items": {
    "type": "object", "required": ["method", "url"], "properties": {
        "method": {"enum": ["POST", "PUT", "PATCH", "DELETE"]}, "url": {"type": "string"},
        "body": ANY_OBJECT, "headers": ANY_OBJECT}}}}}
BATCH_RESULT = {"type": "array", "items": {"type": "object", "properties": {
    "status": {"type": "integer"}, "body": {}}}}


FIELD_TYPES = list(FIELD_CLASSES)
RULE = {"type": ["string", "null"], "description": "null: superusers only; \"\": everyone; else a filter"}
COLLECTION_INPUT = {"type": "object", "properties": {
    "name": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,100}$"}, "type": {"enum": ["base", "auth", "view"]},
    "fields": {"type": "array", "items": {"type": "object", "required": ["name", "type"], "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,100}$"}, "type": {"enum": FIELD_TYPES},
        "required": {"type": "boolean"}, "hidden": {"type": "boolean"}, "maxSelect": {"type": "integer"},
        "min": {}, "max": {}, "values": {"type": "array", "items": {"type": "string"}},
        "collectionId": {"type": "string"}, "onCreate": {"type": "boolean"}, "onUpdate": {"type": "boolean"}}}},
    "indexes": {"type": "array", "items": {"type": "string"}}, "viewQuery": {"type": "string"},
    **{r: RULE for r in ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")}}}
API_KEY = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "collections": {"type": "array", "items": {"type": "string"}},
    "actions": {"type": "array", "items": {"type": "string"}}, "expires": DATE_OUT, "revoked": {"type": "boolean"},
    "key": {"type": "string", "description": "Shown once, on create"}}}
TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


def _resolve(schema: Schema | None, name: str) -> Mapping[str, Any] | None:
    return schema(name) if callable(schema) else schema


def operation(e: Endpoint, name: str = "") -> dict[str, Any]:
    """The document's operation for ``e``, on collection ``name`` when ``e.per`` is set.

    ``response=None`` answers 204. Every operation may also answer 429, one with a body
    400 and 413, and one that answers JSON 400 (a ``fields`` parameter it cannot read, as
    in PocketBase); ``e.auth`` adds the statuses of a caller it refuses."""
    ok, body = _resolve(e.response, name), _resolve(e.request, name)
    responses: dict[str, Any] = {}
    if ok is None:
        responses["204"] = {"description": STATUS_TEXT[204]}
    else:
        responses["200"] = {"description": STATUS_TEXT[200], **_json(ok)}
    codes = {*e.errors, *AUTH_ERRORS[e.auth], 429} | ({400, 413} if body is not None else set())
    for code in sorted(codes | ({400} if ok is not None else set())):
        responses[str(code)] = {"description": STATUS_TEXT[code], **_json(ERROR)}
    for code, answer in e.responses.items():
        if answer is None:
            responses.pop(str(code), None)
        else:
            responses[str(code)] = answer
    op: dict[str, Any] = {"summary": e.summary.replace("{collection}", name),
                          "responses": responses, "tags": [name if e.per is not None else e.tag]}
    if e.description:
        op["description"] = e.description
    if body is not None:
        op["requestBody"] = {"required": False, **_json(body)}
        if e.form:  # as PocketBase: "true"/"false" and plain numbers read as such, a repeated
            # key is a list and a part named @jsonPayload holds a JSON object
            op["requestBody"]["content"]["multipart/form-data"] = {"schema": body}
    if e.params:
        op["parameters"] = list(e.params)
    return op


def _reaches(e: Endpoint, audience: Audience, col: Collection, actions: tuple[str, ...]) -> bool:
    """Whether ``audience`` reads about ``e`` on ``col`` (an endpoint declared ``per``)."""
    if e.per is Per.COLLECTION:
        return e.action in actions
    if not audience.signs_in(col):
        return False
    # Superusers read every flow; others not a superuser's (impersonation) nor a way to
    # sign in that the collection turned off.
    if audience.superuser:
        return True
    return e.auth is not Auth.SUPERUSER and (not e.flow or col.auth[e.flow]["enabled"])


def build_paths(table: RouteTable, cols: list[Collection], audience: Audience) -> dict[str, Any]:
    """The paths ``audience`` may reach: system endpoints superusers only are described to
    superusers only; ``per`` endpoints once for each collection ``audience`` reaches."""
    paths: dict[str, Any] = {}
    endpoints = table.documented()
    for e in endpoints:
        if e.per is None and (audience.superuser or e.auth is not Auth.SUPERUSER):
            paths.setdefault(e.path, {})[e.method.lower()] = operation(e)
    for col in sorted(cols, key=lambda c: c.name):
        actions = audience.actions(col)
        for e in endpoints:
            if e.per is not None and _reaches(e, audience, col, actions):
                path = e.path.replace("{collection}", col.name)
                paths.setdefault(path, {})[e.method.lower()] = operation(e, col.name)
    return paths


def build_document(
    table: RouteTable, cols: list[Collection], version: str, audience: Audience = EVERYONE
) -> dict[str, Any]:
    """The document for ``audience`` (the whole API for superusers)."""
    schemas: dict[str, Any] = {"Error": {
        "type": "object", "required": ["status", "message", "data"], "properties": {
            "status": {"type": "integer"}, "message": {"type": "string"}, "data": ANY_OBJECT}}}
    for col in sorted(cols, key=lambda c: c.name):
        actions = audience.actions(col)
        if actions or audience.signs_in(col):
            schemas[col.name] = record_schema(col, audience)
        if "create" in actions:
            schemas[f"{col.name}Create"] = record_input_schema(col, True, audience)
        if "update" in actions:
            schemas[f"{col.name}Update"] = record_input_schema(col, False, audience)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Bastion API", "version": version,
                 "description": "The PocketBase-compatible Web API of this Bastion app."},
        "paths": build_paths(table, cols, audience),
        "components": {"schemas": schemas, "securitySchemes": {
            "token": {"type": "apiKey", "in": "header", "name": "Authorization"}}},
        "security": [{}, {"token": []}],
    }


def route_table(request: Request) -> RouteTable:
    """The endpoints this ASGI app serves (``create_asgi`` keeps them in its state)."""
    table = request.app.state.route_table
    assert isinstance(table, RouteTable)
    return table


async def openapi_json(request: Request) -> Response:
    from bastion import __version__

    audience = Audience.of(await request_info(request))
    cols = app_of(request).registry.all()
    doc = build_document(route_table(request), cols, __version__, audience)
    # What it lists depends on the caller: no shared cache may hand one caller's to another.
    return Response(dumps(doc), media_type="application/json",
                    headers={"Cache-Control": "private, no-store", "Vary": "Authorization"})


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
    Endpoint("GET", "/api/openapi.json", openapi_json,
             "This document: the API as the caller may reach it",
             undocumented="the document itself: it describes the API, not itself"),
    Endpoint("GET", "/api/docs", docs_page, "An interactive page that shows this document",
             undocumented="an HTML page for people, showing this document"),
]
