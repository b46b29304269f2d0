"""``/api/collections/{collection}/aggregate`` — grouped counts, sums, averages, minima, maxima."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.http import app_of, json_response, request_info
from bastion.api.openapi import AGGREGATE, AGGREGATE_PARAMS
from bastion.api.routing import Auth, Endpoint, Per
from bastion.core.errors import BadRequest
from bastion.core.records.aggregates import AggregateService, parse_aggregate_params


def _single_values(request: Request) -> None:
    seen: set[str] = set()
    for key, _ in request.query_params.multi_items():
        if key in seen:
            raise BadRequest(f'The parameter "{key[:40]}" is given more than once: use one comma list.')
        seen.add(key)


async def aggregate_records(request: Request) -> Response:
    app = app_of(request)
    col = app.registry.get(request.path_params["collection"])
    info = await request_info(request)
    _single_values(request)
    params = parse_aggregate_params(request.query_params)
    service = AggregateService(app.db, app.registry, app.access, app.filters)
    return json_response(request, await service.aggregate(info, col, params))


routes = [
    Endpoint("GET", "/api/collections/{collection}/aggregate", aggregate_records,
             "Aggregate {collection} (count, sum, avg, min, max, group-by) under the list rule",
             Auth.RULES, Per.COLLECTION, "list",
             params=AGGREGATE_PARAMS, response=AGGREGATE, errors=(400, 403, 404)),
]
