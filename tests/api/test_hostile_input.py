"""Input people send by mistake or on purpose: always a clear 4xx, never a 500."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from bastion.api.app import HttpOptions, create_asgi
from tests.shapes import make_posts


@pytest.mark.parametrize("path", [
    "/api/collections/posts/records/%00",
    "/api/collections/posts/records/a%00b",
    "/api/collections/%00/records",
    "/api/collections/posts/records?filter=title%3D%22%00%22",
    "/api/collections/posts/records?sort=%00",
    "/api/collections/posts/records?fields=%00",
    "/api/collections/posts/records?filter=" + "title%3D1%26%26" * 300 + "title%3D1",
    "/api/collections/posts/records?filter=" + "(" * 500 + "title%3D1" + ")" * 500,
    "/api/collections/posts/records?page=99999999999999999999",
    "/api/collections/posts/records?perPage=-5",
])
async def test_hostile_queries(client, path):
    await make_posts(client)
    res = await client.get(path)
    assert res.status_code < 500, (path, res.text)
    assert set(res.json()) >= {"status", "message", "data"} or "items" in res.json()


@pytest.mark.parametrize("body", [
    {"title": "nul\x00byte"},
    {"title": "ok", "slug": "\x00"},
    {"title": {"nested": [1, 2]}},
    {"title": ["a"]},
    {"title": "x" * 200},
    {"views": "1e999"},
    {"views": 10**400 if False else 1e308},
    {"views": [1]},
    {"title": "ok", "views": True},
])
async def test_hostile_bodies(client, body):
    await make_posts(client)
    res = await client.post("/api/collections/posts/records", json=body)
    assert res.status_code in (200, 400), (body, res.text)
    listing = (await client.get("/api/collections/posts/records")).json()
    assert listing["totalItems"] == (1 if res.status_code == 200 else 0)


async def test_deeply_nested_json(client):
    await client.post("/api/collections", headers=client.su(), json={
        "name": "docs", "createRule": "", "fields": [{"name": "data", "type": "json"}]})
    deep = "[" * 5000 + "]" * 5000
    res = await client.post("/api/collections/docs/records", content=('{"data": ' + deep + "}").encode(),
                            headers={"content-type": "application/json"})
    assert res.status_code == 400
    nul = await client.post("/api/collections/docs/records", json={"data": {"k": "a\x00b"}})
    assert nul.status_code in (200, 400)


async def test_hostile_collection_definitions(client):
    for body in (
        {"name": "x" * 300},
        {"name": "ok", "fields": "nope"},
        {"name": "ok", "fields": [{"name": "a" * 300, "type": "text"}]},
        {"name": "ok", "fields": [{"name": "n", "type": "number", "min": "1"}]},
        {"name": "ok", "fields": [{"name": "s", "type": "text", "pattern": "("}]},
        {"name": "ok", "fields": [{"name": "s", "type": "text", "autogeneratePattern": "(a|b)+"}]},
        {"name": "ok", "fields": [{"name": "t", "type": "text"}, {"name": "T", "type": "text"}]},  # one name twice
        {"name": "ok", "indexes": ["CREATE INDEX i ON ok (nope)"]},
        {"name": "ok", "listRule": 5},
        {"name": "ok", "type": "view", "viewQuery": "SELECT 1 AS id; DELETE FROM users"},
        {"name": "ok\x00"},
    ):
        res = await client.post("/api/collections", json=body, headers=client.su())
        assert res.status_code == 400, (body, res.text)


async def test_multipart_body_over_the_limit_is_413(client):
    await make_posts(client)

    async def stream():  # no Content-Length: the limit must hold while the body streams
        yield b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
        for _ in range(40):
            yield b"x" * 65536

    res = await client.post("/api/collections/posts/records", content=stream(),
                            headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert res.status_code == 413, res.text
    assert res.json() == {"status": 413, "message": "Request entity too large.", "data": {}}
    assert res.headers["connection"] == "close"


async def test_a_stalled_body_gets_408_and_the_connection_closed(app):
    asgi = create_asgi(app, HttpOptions(manage_lifespan=False, read_timeout=0.3))
    scope = {"type": "http", "method": "POST", "path": "/api/collections/_superusers/auth-with-password",
             "raw_path": b"/api/collections/_superusers/auth-with-password", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"50")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "scheme": "http",
             "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"}}
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"identity":', "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes

    sent = []

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(asgi(scope, receive, send), 5)
    start = sent[0]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert orjson.loads(sent[1]["body"])["message"] == "The request body arrived too slowly."
