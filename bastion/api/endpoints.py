"""Every endpoint of the Web API, in the order the router tries them.

Each module declares its endpoints in its ``routes`` list (see ``bastion.api.routing``);
this is the one place that gathers them. The router, the rate-limit tags and the OpenAPI
document are all built from ``TABLE``.
"""

from __future__ import annotations

from bastion.api import (
    aggregate,
    api_keys,
    auth,
    auth_flows,
    batch,
    collections,
    crons,
    files,
    health,
    jobs,
    oauth2,
    openapi,
    realtime,
    records,
    settings,
    webhooks,
)
from bastion.api.routing import RouteTable

TABLE = RouteTable([
    # the busiest paths first: the router tries routes in this order
    *health.routes, *records.routes, *files.routes, *openapi.routes, *collections.routes, *auth.routes,
    *auth_flows.routes, *api_keys.routes, *batch.routes, *settings.routes, *aggregate.routes,
    *oauth2.routes, *realtime.routes, *crons.routes, *jobs.routes, *webhooks.routes,
])


def route_tags(method: str, path: str) -> tuple[str, tuple[str, ...]] | None:
    """``(collection, PocketBase rate-limit tags)`` of the endpoint ``method path`` reaches."""
    return TABLE.tags(method, path)
