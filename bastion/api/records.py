"""``/api/collections/{collection}/records`` — records CRUD."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.api.http import app_of, json_response, no_content, read_body, request_info
from bastion.core.record_query import parse_list_params


def _collection(request: Request, write: bool = False):  # type: ignore[no-untyped-def]
    message = "Missing or invalid collection context." if write else "Missing collection context."
    return app_of(request).registry.get(request.path_params["collection"], message)


async def list_records(request: Request) -> Response:
    col = _collection(request)
    info = await request_info(request)
    params = parse_list_params(request.query_params)
    if params.filter_text:
        params.filter = app_of(request).filters.builder(params.filter_text, info)
    return json_response(request, await app_of(request).records.list(info, col, params))


async def view_record(request: Request) -> Response:
    col = _collection(request)
    info = await request_info(request)
    return json_response(request, await app_of(request).records.view(info, col, request.path_params["id"]))


async def create_record(request: Request) -> Response:
    col = _collection(request, write=True)
    body = await read_body(request)
    info = await request_info(request, body)
    return json_response(request, await app_of(request).records.create(info, col, body))


async def update_record(request: Request) -> Response:
    col = _collection(request, write=True)
    body = await read_body(request)
    info = await request_info(request, body)
    record = await app_of(request).records.update(info, col, request.path_params["id"], body)
    return json_response(request, record)


async def delete_record(request: Request) -> Response:
    col = _collection(request)
    info = await request_info(request)
    await app_of(request).records.delete(info, col, request.path_params["id"])
    return no_content()




routes = [
    Route("/api/collections/{collection}/records", list_records, methods=["GET"]),
    Route("/api/collections/{collection}/records", create_record, methods=["POST"]),
    Route("/api/collections/{collection}/records/{id}", view_record, methods=["GET"]),
    Route("/api/collections/{collection}/records/{id}", update_record, methods=["PATCH"]),
    Route("/api/collections/{collection}/records/{id}", delete_record, methods=["DELETE"]),
]
