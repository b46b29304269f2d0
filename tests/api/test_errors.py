"""Unknown errors are logged 500s with a request id and no internals in the body."""

from __future__ import annotations

import logging

from bastion.core.errors import Unavailable


async def test_unexpected_error_is_a_bare_500(client, app, monkeypatch, caplog):
    async def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.records, "list", boom)
    with caplog.at_level(logging.ERROR, logger="bastion.api"):
        res = await client.get("/api/collections/users/records")
    assert res.status_code == 500
    assert "secret" not in res.text
    assert res.json() == {"status": 500, "data": {},
                          "message": "Something went wrong while processing your request."}
    request_id = res.headers["x-request-id"]
    assert any(request_id in r.getMessage() for r in caplog.records)


async def test_unavailable_database_is_503_with_retry_after(client, app, monkeypatch):
    async def down(*args, **kwargs):
        raise Unavailable()

    monkeypatch.setattr(app.records, "view", down)
    res = await client.get("/api/collections/users/records/abc")
    assert res.status_code == 503 and res.headers["retry-after"]


async def test_security_headers_and_request_id(client):
    res = await client.get("/api/health", headers={"X-Request-Id": "abc-123"})
    assert res.headers["x-request-id"] == "abc-123"
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["x-frame-options"] == "SAMEORIGIN"
    res = await client.get("/api/health", headers={"X-Request-Id": "bad id\twith junk"})
    assert res.headers["x-request-id"] != "bad id\twith junk"
    ids = {(await client.get("/api/health")).headers["x-request-id"] for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 16 for i in ids)


async def test_unmatched_routes_and_methods(client):
    # PocketBase never answers 405: an unknown path or method is a 404 (see test_http_compat.py).
    res = await client.get("/api/nothing-here")
    assert res.status_code == 404 and res.json() == {"status": 404, "message": "File not found.", "data": {}}
    res = await client.put("/api/collections/users/records")
    assert res.status_code == 404 and set(res.json()) == {"status", "message", "data"}
    assert "allow" not in res.headers
    assert res.headers["x-request-id"] and res.headers["content-type"] == "application/json"
    res = await client.get("/api/health/")
    assert res.status_code == 404
