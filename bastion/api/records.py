"""``/api/collections/{collection}/records`` — records CRUD."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import (
    FileLimits,
    app_of,
    close_forms,
    json_response,
    no_content,
    read_body,
    request_info,
)
from bastion.api.idempotency import idempotent
from bastion.api.openapi import (
    EXPAND_PARAM,
    FIELDS_PARAM,
    ID_PARAM,
    LIST_PARAMS,
    envelope,
    record_ref,
)
from bastion.api.routing import Auth, Endpoint, Handler, Per
from bastion.core.access import RequestInfo
from bastion.core.errors import NotFound, ValidationFailed
from bastion.core.fields import FileField
from bastion.core.fields.upload import rule_view
from bastion.core.hooks.records import ListEvent, ViewEvent
from bastion.core.records.query import ListParams, page_envelope, parse_list_params
from bastion.core.records.reads import NOT_FOUND, Identify
from bastion.core.schema.collections import Collection


def _collection(request: Request, write: bool = False) -> Collection:
    message = "Missing or invalid collection context." if write else "Missing collection context."
    return app_of(request).registry.get(request.path_params["collection"], message)


def _identify(request: Request) -> Identify:
    """Reads the request's caller on the connection the records are read on."""
    return lambda conn: request_info(request, conn=conn)


async def _expanded(request: Request, info: RequestInfo, col: Collection, records: list[dict[str, Any]]) -> None:
    spec = request.query_params.get("expand")
    if spec:
        await app_of(request).expander.apply(info, col, records, spec)


async def list_records(request: Request) -> Response:
    app = app_of(request)
    col = _collection(request)
    params = parse_list_params(request.query_params)
    if app.hooks.list.has(col):
        return json_response(request, await _hooked_list(request, col, params))
    info, page = await app.records.list_for(_identify(request), col, params)
    await _expanded(request, info, col, page["items"])
    return json_response(request, page)


async def _hooked_list(request: Request, col: Collection, params: ListParams) -> dict[str, Any]:
    app = app_of(request)
    event = ListEvent(col, await request_info(request), params)

    async def read() -> None:
        event.result = await app.records.list(event.info, col, event.params)
        await _expanded(request, event.info, col, event.result["items"])

    await app.hooks.list.run(event, col, read)
    return event.result if event.result is not None else page_envelope([], params, 0)


async def view_record(request: Request) -> Response:
    app = app_of(request)
    col = _collection(request)
    if app.hooks.view.has(col):
        event = ViewEvent(col, await request_info(request), request.path_params["id"])

        async def read() -> None:
            event.record = await app.records.view(event.info, col, event.record_id)
            await _expanded(request, event.info, col, [event.record])

        await app.hooks.view.run(event, col, read)
        if event.record is None:
            raise NotFound(NOT_FOUND)
        return json_response(request, event.record)
    info, record = await app.records.view_for(_identify(request), col, request.path_params["id"])
    await _expanded(request, info, col, [record])
    return json_response(request, record)


def file_limits(col: Collection, prefixes: tuple[str, ...] = ("",)) -> FileLimits:
    """The form keys of ``col``'s file fields (``f``, ``+f``, ``f+`` after one of
    ``prefixes``) with the largest file and the number of files each takes."""
    sizes = {f"{prefix}{key}": (f.max_size, max(f.maxSelect, 1)) for f in col.fields if isinstance(f, FileField)
             for key in (f.name, f"+{f.name}", f"{f.name}+") for prefix in prefixes}
    return sizes.get


async def _record_body(request: Request, col: Collection, failed: str) -> dict[str, Any]:
    """The body of a record write; a file refused as it streams in answers with the
    write's own message, as PocketBase's validation does."""
    try:
        return await read_body(request, file_limits(col))
    except ValidationFailed as exc:
        raise ValidationFailed(failed, exc.data) from None


async def create_record(request: Request) -> Response:
    col = _collection(request, write=True)
    try:
        body = await _record_body(request, col, "Failed to create record.")
        info = await request_info(request, rule_view(body))
        record = await app_of(request).records.create(info, col, body)
    finally:
        await close_forms(request)
    await _expanded(request, info, col, [record])
    return json_response(request, record)


async def update_record(request: Request) -> Response:
    col = _collection(request, write=True)
    try:
        body = await _record_body(request, col, "Failed to update record.")
        info = await request_info(request, rule_view(body))
        record = await app_of(request).records.update(info, col, request.path_params["id"], body)
    finally:
        await close_forms(request)
    await _expanded(request, info, col, [record])
    return json_response(request, record)


async def delete_record(request: Request) -> Response:
    col = _collection(request)
    info = await request_info(request)
    await app_of(request).records.delete(info, col, request.path_params["id"])
    return no_content()


# What a rule does to each action, as in PocketBase: null locks it to superusers (403); an
# expression filters a list, hides a record (404) or refuses a create (400).
RULE_OUTCOMES = {
    "list": "listRule null: 403 except for superusers; an expression only filters the rows.",
    "view": "viewRule null: 403 except for superusers; a record the expression does not match:"
            " 404.",
    "create": "createRule null: 403 except for superusers; an expression the new record does not"
              " match: 400.",
    "update": "updateRule null: 403 except for superusers; a record the expression does not match:"
              " 404.",
    "delete": "deleteRule null: 403 except for superusers; a record the expression does not match:"
              " 404; a record that a required relation still points to: 400.",
}
BASE = "/api/collections/{collection}/records"
ONE = [*ID_PARAM, FIELDS_PARAM, EXPAND_PARAM]


def _record_endpoint(
    method: str, path: str, handler: Handler, summary: str, action: str,
    errors: tuple[int, ...] = (400, 403, 404), **doc: Any,
) -> Endpoint:
    """A record endpoint: the collection's ``action`` rule decides; it is also the tag."""
    return Endpoint(method, path, handler, summary, Auth.RULES, Per.COLLECTION, action,
                    ratelimit=(action,), description=RULE_OUTCOMES[action], errors=errors, **doc)


def _input(suffix: str) -> Callable[[str], dict[str, Any]]:
    return lambda name: record_ref(name + suffix)


routes = [
    _record_endpoint("GET", BASE, list_records, "List {collection}", "list",
                     params=LIST_PARAMS, response=lambda name: envelope(record_ref(name))),
    _record_endpoint("POST", BASE, idempotent(create_record), "Create a {collection} record", "create",
                     params=[FIELDS_PARAM, EXPAND_PARAM], request=_input("Create"), form=True,
                     response=record_ref),
    _record_endpoint("GET", BASE + "/{id}", view_record, "View a {collection} record", "view",
                     params=ONE, response=record_ref, errors=(403, 404)),
    _record_endpoint("PATCH", BASE + "/{id}", idempotent(update_record), "Update a {collection} record", "update",
                     params=ONE, request=_input("Update"), form=True, response=record_ref),
    _record_endpoint("DELETE", BASE + "/{id}", delete_record, "Delete a {collection} record", "delete",
                     params=ID_PARAM),
]
