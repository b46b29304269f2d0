"""OpenAPI 3.1 built from the live schema, and the interactive docs page.

The document describes what the server really answers, so that a schema fuzzer (and a
client generator) can trust it: every status an operation may return, the error shape,
and record shapes per collection (zero values included: ``""`` for an unset email, url or
date, ``[]`` for an empty multiple select). ``?fields=`` may pick any subset of a 2xx
body, so record properties are never listed as required.

Each caller is described only what it may reach (``Audience``): superusers get the whole
API; an API key its collections and actions; anyone else (guests and signed-in records)
the non-system collections whose list or view rule is not null, with only the
operations whose rule is not null, no hidden field, and the sign-in flows of auth
collections whose auth rule is not null. Nothing of the rest appears, not even a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bastion.api.http import app_of, request_info
from bastion.core.access import KEY_ACTIONS, RequestInfo
from bastion.core.api_keys import ApiKeyScope
from bastion.core.collections import Collection
from bastion.core.fields import FIELD_TYPES as FIELD_CLASSES
from bastion.core.fields import Field
from bastion.core.fields.scalar import DATE_OUT
from bastion.tools.jsonutil import dumps

ERROR = {"$ref": "#/components/schemas/Error"}
ANY_OBJECT: dict[str, Any] = {"type": "object"}
STATUS_TEXT = {
    200: "OK", 204: "Done, no content", 400: "Bad request or failed validation (details in data)",
    401: "The request requires valid record authorization token",
    403: "Forbidden: a locked (null) rule, a superuser-only action, or a disabled feature",
    404: "Not found, or hidden by the view/update/delete rule",
    413: "The request body is too large", 429: "Too many requests (settings.rateLimits)",
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


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any] | None, errors: tuple[int, ...], body: dict[str, Any] | None = None,
        tag: str = "", params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One operation; ``ok=None`` answers 204. Every operation may also answer 429, and
    one that answers JSON 400 (a ``fields`` parameter it cannot read, as in PocketBase)."""
    responses: dict[str, Any] = {}
    if ok is None:
        responses["204"] = {"description": STATUS_TEXT[204]}
    else:
        responses["200"] = {"description": STATUS_TEXT[200], **_json(ok)}
    codes = {*errors, 429} | ({400, 413} if body is not None else set()) | ({400} if ok is not None else set())
    for code in sorted(codes):
        responses[str(code)] = {"description": STATUS_TEXT[code], **_json(ERROR)}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "tags": [tag] if tag else []}
    if body is not None:
        op["requestBody"] = {"required": False, **_json(body)}
    if params:
        op["parameters"] = params
    return op


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


FIELDS_PARAM = _query("fields", {"type": "string"}, "Comma list of keys to return (dot paths, *, :excerpt(n))")
EXPAND_PARAM = _query("expand", {"type": "string"}, "Comma list of relations to expand (a.b.c, x_via_y)")
LIST_PARAMS = [
    _query("page", {"type": "integer"}, "1 and up; lower values mean 1"),
    _query("perPage", {"type": "integer"}, "Default 30, at most 1000; 0 or less means the default"),
    _query("sort", {"type": "string"}), _query("filter", {"type": "string"}),
    _query("skipTotal", {"type": "boolean"}), FIELDS_PARAM, EXPAND_PARAM,
    _query("cursor", {"type": "string"}, "Keyset pagination: empty for the first page, then the nextCursor "
                                         "of the previous page"),
]
AGGREGATE_PARAMS = [
    _query(n, {"type": "string"}, d)
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


# What a rule does to each action, as in PocketBase: null locks it to superusers (403); an
# expression filters a list, hides a record (404) or refuses a create (400).
RULE_OUTCOMES = {
    "list": "listRule null: 403 except for superusers; an expression only filters the rows.",
    "view": "viewRule null: 403 except for superusers; a record the expression does not match: 404.",
    "create": "createRule null: 403 except for superusers; an expression the new record does not match: 400.",
    "update": "updateRule null: 403 except for superusers; a record the expression does not match: 404.",
    "delete": "deleteRule null: 403 except for superusers; a record the expression does not match: 404;"
              " a record that a required relation still points to: 400.",
}


def record_paths(col: Collection, actions: tuple[str, ...] = KEY_ACTIONS) -> dict[str, Any]:
    """The record operations of ``col`` for ``actions`` (a view has no writes)."""
    name = col.name
    ref = {"$ref": f"#/components/schemas/{name}"}
    base = f"/api/collections/{name}/records"
    one = [*ID_PARAM, FIELDS_PARAM, EXPAND_PARAM]
    paths: dict[str, Any] = {
        base: {"get": _op(f"List {name}", envelope(ref), (400, 403, 404), tag=name, params=LIST_PARAMS)},
        f"{base}/{{id}}": {"get": _op(f"View a {name} record", ref, (403, 404), tag=name, params=one)},
        f"/api/collections/{name}/aggregate": {"get": _op(
            f"Aggregate {name} (count, sum, avg, min, max, group-by) under the list rule", AGGREGATE,
            (400, 403, 404), tag=name, params=AGGREGATE_PARAMS)},
    }
    if not col.is_view:
        create = {"$ref": f"#/components/schemas/{name}Create"}
        update = {"$ref": f"#/components/schemas/{name}Update"}
        paths[base]["post"] = _op(f"Create a {name} record", ref, (400, 403, 404), create, name,
                                  [FIELDS_PARAM, EXPAND_PARAM])
        paths[f"{base}/{{id}}"]["patch"] = _op(f"Update a {name} record", ref, (400, 403, 404), update, name, one)
        # As PocketBase: forms too, where "true"/"false" and plain numbers are read as such,
        # a repeated key is a list and a part named @jsonPayload holds a JSON object.
        for op, body in ((paths[base]["post"], create), (paths[f"{base}/{{id}}"]["patch"], update)):
            op["requestBody"]["content"]["multipart/form-data"] = {"schema": body}
        paths[f"{base}/{{id}}"]["delete"] = _op(f"Delete a {name} record", None, (400, 403, 404), tag=name,
                                                params=ID_PARAM)
    for path, method, action in ((base, "get", "list"), (f"{base}/{{id}}", "get", "view"), (base, "post", "create"),
                                 (f"{base}/{{id}}", "patch", "update"), (f"{base}/{{id}}", "delete", "delete")):
        if method not in paths[path]:
            continue
        if action not in actions:
            del paths[path][method]
            if action == "list":
                del paths[f"/api/collections/{name}/aggregate"]  # it reads under the list rule
            continue
        paths[path][method]["description"] = RULE_OUTCOMES[action]
    return {path: ops for path, ops in paths.items() if ops}


def auth_paths(col: Collection, audience: Audience = EVERYONE) -> dict[str, Any]:
    """Sign-in and account flows of an auth collection. Superusers read them all; others
    not impersonation (superusers only) nor a way to sign in that the collection turned off."""
    name, base = col.name, f"/api/collections/{col.name}"
    ref = {"$ref": f"#/components/schemas/{name}"}
    creds = {"type": "object", "required": ["identity", "password"], "properties": {
        "identity": {"type": "string", "minLength": 1, "maxLength": 255},
        "password": {"type": "string", "minLength": 1, "maxLength": 255},
        "identityField": {"type": "string"}}}
    auth = {"type": "object", "properties": {
        "token": {"type": "string"}, "record": ref, "meta": ANY_OBJECT}}
    signin = _op("Sign in with a password", auth, (400, 403, 404), creds, name, [FIELDS_PARAM, EXPAND_PARAM])
    # With MFA on, a first factor answers 401 with only the id of the MFA session (as PocketBase).
    signin["responses"]["401"] = {"description": "Second factor required (MFA)", **_json({
        "oneOf": [ERROR, {"type": "object", "required": ["mfaId"], "properties": {"mfaId": {"type": "string"}}}]})}
    paths = {
        f"{base}/auth-with-password": {"post": signin},
        f"{base}/auth-refresh": {"post": _op("Refresh the auth token", auth, (401, 403, 404), tag=name,
                                             params=[FIELDS_PARAM, EXPAND_PARAM])},
        f"{base}/auth-methods": {"get": _op("List auth methods", ANY_OBJECT, (404,), tag=name, params=[FIELDS_PARAM])},
    }
    paths.update(flow_paths(col, auth))
    if audience.superuser:
        return paths
    off = {"impersonate/{id}"}
    opts = col.auth
    if not opts["passwordAuth"]["enabled"]:
        off.add("auth-with-password")
    if not opts["otp"]["enabled"]:
        off.update(("request-otp", "auth-with-otp"))
    if not opts["oauth2"]["enabled"]:
        off.add("auth-with-oauth2")
    return {path: ops for path, ops in paths.items() if path.removeprefix(base + "/") not in off}


def _body(*names: str, required: tuple[str, ...] = (), **special: dict[str, Any]) -> dict[str, Any]:
    props = {n: special.get(n, {"type": "string"}) for n in names}
    return {"type": "object", "properties": props, **({"required": list(required)} if required else {})}


def flow_paths(col: Collection, auth: dict[str, Any]) -> dict[str, Any]:
    """Email flows, OTP, OAuth2, TOTP and impersonation of one auth collection.

    Requests, confirmations and OTP requests are counted per identity too: past the limit
    they answer 429 even with settings.rateLimits off.
    """
    name, base = col.name, f"/api/collections/{col.name}"
    mfa_401 = {"description": "Second factor required (MFA)", **_json({"oneOf": [ERROR, {
        "type": "object", "required": ["mfaId"], "properties": {"mfaId": {"type": "string"}}}]})}
    email = _body("email", required=("email",))
    ops: dict[str, Any] = {
        "request-verification": _op("Email a verification link (204 for unknown emails too)", None, (400, 404),
                                    email, name),
        "confirm-verification": _op("Confirm an email address", None, (400, 404), _body("token"), name),
        "request-password-reset": _op("Email a password reset link (204 for unknown emails too)", None,
                                      (400, 404), email, name),
        "confirm-password-reset": _op("Set a new password with a reset token", None, (400, 404),
                                      _body("token", "password", "passwordConfirm"), name),
        "request-email-change": _op("Email a link to confirm a new address (the record itself)", None,
                                    (400, 401, 403, 404), _body("newEmail"), name),
        "confirm-email-change": _op("Confirm a new email address", None, (400, 404),
                                    _body("token", "password"), name),
        "request-otp": _op("Email a one-time password (an otpId for unknown emails too)", {
            "type": "object", "properties": {"otpId": {"type": "string"}}}, (400, 403, 404), email, name),
        "auth-with-otp": _op("Sign in with a one-time password", auth, (400, 403, 404),
                             _body("otpId", "password"), name, [FIELDS_PARAM, EXPAND_PARAM]),
        "auth-with-oauth2": _op("Sign in with an OAuth2 authorization code", auth, (400, 403, 404), _body(
            "provider", "code", "codeVerifier", "redirectURL", "createData", createData=ANY_OBJECT), name,
            [FIELDS_PARAM, EXPAND_PARAM]),
        "auth-with-totp": _op("Second factor: a TOTP or recovery code for an MFA session", auth, (400, 403, 404),
                              _body("mfaId", "code"), name, [FIELDS_PARAM, EXPAND_PARAM]),
        "totp/enroll": _op("Start TOTP enrolment (the record itself)", ANY_OBJECT, (400, 401, 404), tag=name),
        "totp/confirm": _op("Confirm TOTP enrolment with a first code", {"type": "object", "properties": {
            "recoveryCodes": {"type": "array", "items": {"type": "string"}}}}, (400, 401, 404), _body("code"), name),
        "totp/disable": _op("Turn TOTP off with a current code", None, (400, 401, 404), _body("code"), name),
    }
    for key in ("auth-with-otp", "auth-with-oauth2", "auth-with-totp"):
        ops[key]["responses"]["401"] = mfa_401
    paths = {f"{base}/{key}": {"post": op} for key, op in ops.items()}
    paths[f"{base}/impersonate/{{id}}"] = {"post": _op(
        "A non-refreshable token for a record (superusers)", auth, (400, 401, 403, 404),
        _body("duration", duration={"type": "integer", "minimum": 0}), name, [*ID_PARAM, FIELDS_PARAM, EXPAND_PARAM])}
    return paths


SUPERUSER = (400, 401, 403)
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


def collection_paths() -> dict[str, Any]:
    one = [{"name": "collection", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "Id or name"}]
    tag = "collections"
    return {
        "/api/collections": {
            "get": _op("List collections (superusers)", envelope(COLLECTION), SUPERUSER, tag=tag, params=LIST_PARAMS),
            "post": _op("Create a collection (superusers)", COLLECTION, SUPERUSER, COLLECTION_INPUT, tag,
                        [FIELDS_PARAM])},
        "/api/collections/{collection}": {
            "get": _op("View a collection (superusers)", COLLECTION, (401, 403, 404), tag=tag,
                       params=[*one, FIELDS_PARAM]),
            "patch": _op("Change a collection (superusers)", COLLECTION, (*SUPERUSER, 404), COLLECTION_INPUT, tag,
                         [*one, FIELDS_PARAM]),
            "delete": _op("Delete a collection and its records (superusers)", None, (*SUPERUSER, 404), tag=tag,
                          params=one)},
        "/api/collections/{collection}/truncate": {"delete": _op(
            "Delete every record of a collection (superusers)", None, (*SUPERUSER, 404), tag=tag, params=one)},
        "/api/collections/import": {"put": _op(
            "Create or replace many collections; deleteMissing drops the others (superusers)", None, SUPERUSER,
            {"type": "object", "properties": {"collections": {"type": "array", "items": COLLECTION_INPUT},
                                              "deleteMissing": {"type": "boolean"}}}, tag)},
        "/api/collections/meta/scaffolds": {"get": _op(
            "Blank collections of each type (superusers)", ANY_OBJECT, (401, 403), tag=tag, params=[FIELDS_PARAM])},
    }


def system_paths() -> dict[str, Any]:
    redirect = _op("Where an OAuth2 provider returns the browser (all-in-one flow)", None, (400,), tag="system",
                   params=[_query(n, {"type": "string"}) for n in ("state", "code", "error")])
    redirect["responses"].pop("204")
    redirect["responses"]["200"] = {"description": "Plain text for the person in the browser", **TEXT}
    redirect["responses"]["400"]["content"]["text/plain"] = TEXT["content"]["text/plain"]
    return {
        **collection_paths(),
        "/api/oauth2-redirect": {"get": redirect},
        "/api/api-keys": {
            "get": _op("List API keys (superusers)", {"type": "object", "properties": {
                "items": {"type": "array", "items": API_KEY}}}, SUPERUSER, tag="system", params=[FIELDS_PARAM]),
            "post": _op("Create an API key (superusers)", API_KEY, SUPERUSER, _body(
                "name", "collections", "actions", "expires", required=("name", "collections", "actions"),
                collections={"type": "array", "items": {"type": "string"}},
                actions={"type": "array", "items": {"enum": ["list", "view", "create", "update", "delete"]}}),
                "system", [FIELDS_PARAM])},
        "/api/api-keys/{id}": {"delete": _op("Revoke an API key (superusers)", None, (*SUPERUSER, 404),
                                             tag="system", params=ID_PARAM)},
        "/api/settings/test/email": {"post": _op("Send a test email (superusers)", None, (*SUPERUSER, 404), _body(
            "email", "template", "collection", required=("email", "template")), "system")},
        "/api/health": {"get": _op("Health check", HEALTH, (), tag="system", params=[FIELDS_PARAM])},
        "/api/batch": {"post": _op("Run record writes in one transaction (settings.batch.enabled)", BATCH_RESULT,
                                   (400, 403), BATCH, "system", [FIELDS_PARAM])},
        "/api/settings": {
            "get": _op("Read settings (superusers)", ANY_OBJECT, SUPERUSER, tag="system", params=[FIELDS_PARAM]),
            "patch": _op("Change settings (superusers)", ANY_OBJECT, SUPERUSER, ANY_OBJECT, "system",
                         [FIELDS_PARAM])},
    }


# System routes anyone may call; the rest (collections, settings, API keys, test email)
# answer superusers only and are described to them only.
PUBLIC_PATHS = ("/api/health", "/api/batch", "/api/oauth2-redirect")


def build_document(cols: list[Collection], version: str, audience: Audience = EVERYONE) -> dict[str, Any]:
    """The document for ``audience`` (the whole API for superusers)."""
    schemas: dict[str, Any] = {"Error": {
        "type": "object", "required": ["status", "message", "data"], "properties": {
            "status": {"type": "integer"}, "message": {"type": "string"}, "data": ANY_OBJECT}}}
    paths = system_paths()
    if not audience.superuser:
        paths = {path: paths[path] for path in PUBLIC_PATHS}
    for col in sorted(cols, key=lambda c: c.name):
        actions = audience.actions(col)
        signs_in = audience.signs_in(col)
        if actions or signs_in:
            schemas[col.name] = record_schema(col, audience)
        if "create" in actions:
            schemas[f"{col.name}Create"] = record_input_schema(col, True, audience)
        if "update" in actions:
            schemas[f"{col.name}Update"] = record_input_schema(col, False, audience)
        paths.update(record_paths(col, actions))
        if signs_in:
            paths.update(auth_paths(col, audience))
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

    audience = Audience.of(await request_info(request))
    doc = build_document(app_of(request).registry.all(), __version__, audience)
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
    Route("/api/openapi.json", openapi_json, methods=["GET"]),
    Route("/api/docs", docs_page, methods=["GET"]),
]
