"""The router, the rate-limit tags and the OpenAPI document agree, because all three come
from the endpoint declarations (``bastion.api.routing``, gathered in ``bastion.api.endpoints``).

Every route the server answers is in ``/api/openapi.json`` for a superuser, unless its
declaration says why not; every documented path and method is one the server answers;
the declared caller (superuser, signed-in record) is the one the endpoint asks for.
"""

from __future__ import annotations

import pytest
from starlette.routing import Match, Route

from bastion.api.app import HttpOptions, create_asgi
from bastion.api.endpoints import TABLE, route_tags
from bastion.api.routing import Auth, Per

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # no engine involved

COLLECTIONS = (
    {"name": "notes", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
     "fields": [{"name": "title", "type": "text"}]},
    {"name": "members", "type": "auth", "authRule": "", "otp": {"enabled": True},
     "oauth2": {"enabled": True}},
    {"name": "titles", "type": "view", "listRule": "", "viewQuery": "select id, title from notes"},
)


def served(app) -> list[tuple[str, Route]]:
    """``(method, route)`` for every route of the ASGI app (HEAD goes with GET)."""
    routes = create_asgi(app, HttpOptions(manage_lifespan=False)).router.routes
    return [(m, r) for r in routes if isinstance(r, Route) for m in sorted(r.methods or ()) if m != "HEAD"]


def answering(routes: list[tuple[str, Route]], method: str, path: str) -> Route | None:
    """The route the router dispatches ``method path`` to, as Starlette picks it."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return next((r for _, r in routes if r.matches(scope)[0] is Match.FULL), None)


async def superuser_document(client) -> dict:
    for col in COLLECTIONS:
        res = await client.post("/api/collections", headers=client.su(), json=col)
        assert res.status_code == 200, res.text
    res = await client.get("/api/openapi.json", headers=client.su())
    assert res.status_code == 200, res.text
    return res.json()


@SQLITE_ONLY
def test_the_router_serves_exactly_the_declared_endpoints(app):
    declared = sorted((e.method, e.path) for e in TABLE.endpoints)
    assert sorted((m, r.path) for m, r in served(app)) == declared


@SQLITE_ONLY
async def test_every_route_is_documented_and_every_documented_path_served(app, client):
    doc = await superuser_document(client)
    documented = [(method.upper(), path) for path, ops in doc["paths"].items() for method in ops]
    undocumented = {(e.method, e.path): e.undocumented for e in TABLE.endpoints if e.undocumented}
    routes, missing = served(app), []
    for method, route in routes:
        found = [p for m, p in documented if m == method and route.path_regex.match(p)]
        if (method, route.path) in undocumented:
            assert not found, f"{method} {route.path} is documented though declared undocumented"
        elif not found:
            missing.append(f"{method} {route.path}")
    assert not missing, f"served but not in /api/openapi.json: {missing}"
    unserved = [f"{m} {p}" for m, p in documented if answering(routes, m, p) is None]
    assert not unserved, f"in /api/openapi.json but not served: {unserved}"
    # Each collection kind got its own paths: a view has no writes, a base no sign-in.
    assert set(doc["paths"]["/api/collections/titles/records"]) == {"get"}
    assert "/api/collections/members/auth-with-otp" in doc["paths"]
    assert "/api/collections/notes/auth-with-password" not in doc["paths"]


def test_undocumented_endpoints_say_why():
    for e in TABLE.endpoints:
        if e.undocumented:
            assert len(e.undocumented) > 20, f"{e.method} {e.path}: give the reason"


@pytest.mark.parametrize("endpoint", [e for e in TABLE.endpoints if e.ratelimit], ids=lambda e: f"{e.method} {e.path}")
def test_rate_limit_tags_come_from_the_declaration(endpoint):
    path = endpoint.path.replace("{collection}", "notes")
    for name in ("id", "record", "filename"):
        path = path.replace("{" + name + "}", "x1")
    assert route_tags(endpoint.method, path) == ("notes", endpoint.ratelimit)
    assert route_tags(endpoint.method, path + "/") is None
    if endpoint.method == "GET":
        assert route_tags("HEAD", path) == ("notes", endpoint.ratelimit)


@SQLITE_ONLY
async def test_declared_callers_are_the_ones_asked_for(client):
    """A guest gets 401 from every endpoint declared for superusers or signed-in records."""
    await superuser_document(client)
    for e in TABLE.endpoints:
        if e.auth not in (Auth.SUPERUSER, Auth.RECORD):
            continue
        collection = "members" if e.per is Per.AUTH_COLLECTION else "notes"
        path = e.path.replace("{collection}", collection).replace("{id}", "x1")
        res = await client.request(e.method, path, json={})
        assert res.status_code == 401, f"{e.method} {path}: {res.status_code} {res.text}"
