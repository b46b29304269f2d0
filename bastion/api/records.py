"""``/api/collections/{collection}/records`` — records CRUD."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.api.http import app_of, json_response, no_content, read_body, request_info
from bastion.core.access import RequestInfo
from bastion.core.collections import Collection
from bastion.core.record_query import parse_list_params


def _collection(request: Request, write: bool = False) -> Collection:
    message = "Missing or invalid collection context." if write else "Missing collection context."
    return app_of(request).registry.get(request.path_params["collection"], message)


async def _expanded(request: Request, info: RequestInfo, col: Collection, records: list[dict[str, Any]]) -> None:
    spec = request.query_params.get("expand")
    if spec:
        await app_of(request).expander.apply(info, col, records, spec)


async def list_records(request: Request) -> Response:
    app = app_of(request)
    col = _collection(request)
    params = parse_list_params(request.query_params)
    # The caller's record and the page are read on one connection: one checkout and,
    # on SQLite, one snapshot for both.
    async with app.db.read() as conn:
        info = await request_info(request, conn=conn)
        page = await app.records.list(info, col, params, conn)
    await _expanded(request, info, col, page["items"])
    return json_response(request, page)


async def view_record(request: Request) -> Response:
    app = app_of(request)
    col = _collection(request)
    async with app.db.read() as conn:
        info = await request_info(request, conn=conn)
        record = await app.records.view(info, col, request.path_params["id"], conn)
    await _expanded(request, info, col, [record])
    return json_response(request, record)


async def create_record(request: Request) -> Response:
    col = _collection(request, write=True)
    body = await read_body(request)
    info = await request_info(request, body)
    record = await app_of(request).records.create(info, col, body)
    await _expanded(request, info, col, [record])
    return json_response(request, record)


async def update_record(request: Request) -> Response:
    col = _collection(request, write=True)
    body = await read_body(request)
    info = await request_info(request, body)
    record = await app_of(request).records.update(info, col, request.path_params["id"], body)
    await _expanded(request, info, col, [record])
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
