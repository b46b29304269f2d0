"""Custom routes declared by hooks: served after the built-in ones with who may call
them enforced, a transaction when asked, listed in the OpenAPI document, replaced when
hook files are loaded again, and refused when they repeat a built-in route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bastion.core.app import App
from bastion.core.errors import BadRequest
from bastion.core.hooks.routes import RouteEvent
from bastion.testing import HookFileError, TestClient, load_hooks, token_for

pytestmark = pytest.mark.backends


async def test_routes_with_auth_transactions_and_docs(app: App, client: TestClient) -> None:
    @app.route("GET", "/api/hello/{name}", summary="Say hello")
    async def hello(e: RouteEvent) -> dict[str, Any]:
        return {"hello": e.params["name"], "shout": e.query.get("shout") == "1", "auth": e.auth is not None}

    @app.route("POST", "/api/me/echo", auth="record")
    async def echo(e: RouteEvent) -> dict[str, Any]:
        assert e.auth is not None
        return {"id": e.auth.id, "body": e.body}

    @app.route("POST", "/api/admin/params", auth="superuser", transaction=True)
    async def store(e: RouteEvent) -> None:
        assert e.conn is not None
        await e.conn.execute(sa.text(
            "INSERT INTO _params (id, value, created, updated) VALUES ('hooked', 'x', '', '')"))
        if e.body.get("fail"):
            raise BadRequest("refused after writing")

    res = await client.get("/api/hello/ada", params={"shout": "1"})
    assert res.status_code == 200 and res.json() == {"hello": "ada", "shout": True, "auth": False}
    assert (await client.post("/api/me/echo", json={})).status_code == 401
    user_id, user = await token_for(client, "u@example.com")
    res = await client.post("/api/me/echo", json={"x": 1}, headers=user)
    assert res.json() == {"id": user_id, "body": {"x": 1}}
    assert (await client.post("/api/admin/params", json={}, headers=user)).status_code == 403
    refused = await client.post("/api/admin/params", json={"fail": True}, headers=client.su())
    assert refused.status_code == 400 and refused.json()["message"] == "Refused after writing."
    async with app.db.read() as conn:  # the transaction rolled back with the error
        assert await conn.scalar(sa.text("SELECT count(*) FROM _params WHERE id = 'hooked'")) == 0
    assert (await client.post("/api/admin/params", json={}, headers=client.su())).status_code == 204
    async with app.db.read() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM _params WHERE id = 'hooked'")) == 1
    doc = (await client.get("/api/openapi.json", headers=client.su())).json()
    assert doc["paths"]["/api/hello/{name}"]["get"]["summary"] == "Say hello"
    assert "/api/admin/params" not in (await client.get("/api/openapi.json")).json()["paths"]  # superusers only
    assert (await client.get("/api/health")).status_code == 200  # built-in routes unchanged
    assert (await client.get("/api/nothing-here")).status_code == 404


async def test_routes_follow_their_hook_files(app: App, client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "bastion_hooks"
    folder.mkdir()
    (folder / "ping.py").write_text(
        "def setup(app):\n"
        "    @app.route('GET', '/api/ping')\n"
        "    async def ping(e):\n"
        "        return {'pong': 1}\n")
    load_hooks(app, folder)
    assert (await client.get("/api/ping")).json() == {"pong": 1}
    (folder / "ping.py").write_text(
        "def setup(app):\n"
        "    @app.route('GET', '/api/ping2')\n"
        "    async def ping(e):\n"
        "        return {'pong': 2}\n")
    load_hooks(app, folder)
    assert (await client.get("/api/ping")).status_code == 404
    assert (await client.get("/api/ping2")).json() == {"pong": 2}
    (folder / "ping.py").write_text(
        "def setup(app):\n"
        "    @app.route('GET', '/api/health')\n"
        "    async def mine(e):\n"
        "        return {}\n")
    with pytest.raises(HookFileError, match="declared twice"):
        load_hooks(app, folder)
    assert (await client.get("/api/ping2")).json() == {"pong": 2}  # the previous hooks stay
    (folder / "ping.py").write_text("def setup(app):\n    app.route('GET', 'hello')(None)\n")
    with pytest.raises(HookFileError, match="starts with /api/"):
        load_hooks(app, folder)
