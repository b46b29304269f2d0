"""HTTP-level answers that follow PocketBase 0.40.6 (measured side by side in
tests/compat/test_http.py): CORS, unknown routes and methods, unclean paths, health,
request bodies and list parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bastion.api.app import HttpOptions, create_asgi
from bastion.api.cors import OriginPolicy
from bastion.api.paths import clean_path
from bastion.core.app import App

POSTS = "/api/collections/posts/records"
ORIGIN = {"Origin": "https://app.example.com"}
NOT_FOUND = {"status": 404, "message": "The requested resource wasn't found.", "data": {}}
FILE_NOT_FOUND = {"status": 404, "message": "File not found.", "data": {}}


@pytest.fixture
async def posts(client):
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "posts", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]})
    assert res.status_code == 200, res.text
    for n in range(3):
        res = await client.post(POSTS, json={"title": f"t{n}", "n": n})
        assert res.status_code == 200, res.text
    return client


async def test_every_options_request_is_a_preflight(client):
    for path in (POSTS, "/api/nope", "/api/health"):
        res = await client.options(path, headers={**ORIGIN, "Access-Control-Request-Method": "PATCH",
                                                  "Access-Control-Request-Headers": "authorization"})
        assert (res.status_code, res.content) == (204, b"")
        assert res.headers["access-control-allow-origin"] == "*"
        assert res.headers["access-control-allow-methods"] == "GET,HEAD,PUT,PATCH,POST,DELETE"
        assert res.headers["access-control-allow-headers"] == "authorization"
        assert res.headers.get_list("vary") == ["Origin", "Access-Control-Request-Method",
                                                "Access-Control-Request-Headers"]
        assert "access-control-max-age" not in res.headers and "content-type" not in res.headers
    bare = await client.options(POSTS)
    assert (bare.status_code, bare.content, bare.headers.get_list("vary")) == (204, b"", ["Origin"])
    assert "access-control-allow-origin" not in bare.headers


async def test_answers_vary_by_origin(client):
    res = await client.get("/api/health")
    assert res.headers["vary"] == "Origin" and "access-control-allow-origin" not in res.headers
    res = await client.get("/api/health", headers=ORIGIN)
    assert res.headers["vary"] == "Origin" and res.headers["access-control-allow-origin"] == "*"
    res = await client.get("/api/health", headers={"Origin": ""})
    assert "access-control-allow-origin" not in res.headers


async def test_security_headers_include_the_opener_policy(client):
    for res in (await client.get("/api/health"), await client.get("/api/nope"), await client.put(POSTS)):
        assert res.headers["cross-origin-opener-policy"] == "same-origin"
        assert res.headers["x-frame-options"] == "SAMEORIGIN"


@pytest.fixture
async def listed_origins(app: App) -> AsyncIterator[httpx.AsyncClient]:
    origins = ["https://app.example.com", "https://*.example.org", "http://localhost:*"]
    asgi = create_asgi(app, HttpOptions(manage_lifespan=False, origins=origins))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bastion.test") as c:
        yield c


@pytest.mark.parametrize(("origin", "allowed"), [
    ("https://app.example.com", True), ("https://evil.example.com", False),
    ("https://a.example.org", True), ("https://a.b.example.org", True), ("https://example.org", False),
    ("http://a.example.org", False), ("http://localhost:5173", True), ("http://localhost", False),
])
async def test_listed_origins(listed_origins, origin, allowed):
    res = await listed_origins.get("/api/health", headers={"Origin": origin})
    assert res.status_code == 200 and res.headers["vary"] == "Origin"
    assert res.headers.get("access-control-allow-origin") == (origin if allowed else None)
    res = await listed_origins.options("/api/health",
                                       headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
    # A refused origin still gets an empty 204, without the headers a browser needs.
    assert (res.status_code, res.content) == (204, b"")
    assert res.headers.get("access-control-allow-origin") == (origin if allowed else None)
    assert ("access-control-allow-methods" in res.headers) is allowed


def test_origin_policy():
    assert OriginPolicy(["*"]).allow("http://x.test") == "*"
    assert OriginPolicy([]).allow("http://x.test") == "*"
    policy = OriginPolicy(["https://*.example.com", "https://app?.test"])
    assert policy.allow("https://a.example.com") == "https://a.example.com"
    assert policy.allow("https://a.example.com:8443") is None
    assert policy.allow("https://app1.test") == "https://app1.test"
    assert policy.allow("https://app12.test") is None
    assert policy.allow("https://" + "a." * 200 + "example.com") is None  # too long for a host


async def test_no_405_anywhere(posts):
    for method, path in (("PUT", POSTS), ("DELETE", POSTS), ("POST", "/api/health"), ("PUT", "/api/settings"),
                         ("POST", "/api/nope"), ("PATCH", "/")):
        res = await posts.request(method, path)
        assert (res.status_code, res.json()) == (404, NOT_FOUND), (method, path)
        assert "allow" not in res.headers
    for path in ("/api/nope", "/", "/api/collections/users/auth-with-password", "/api/batch", POSTS + "/"):
        res = await posts.get(path)
        assert (res.status_code, res.json()) == (404, FILE_NOT_FOUND), path
    res = await posts.head("/api/nope")
    assert (res.status_code, res.content) == (404, b"")


async def test_file_downloads_are_404(posts):
    res = await posts.get("/api/files/posts/abc/file.png")
    assert (res.status_code, res.json()) == (404, NOT_FOUND)
    res = await posts.get("/api/files/missing/abc/file.png")
    assert res.json()["message"] == "Missing or invalid collection context."


async def test_unclean_paths_redirect(posts):
    res = await posts.get("/api//health", params={"a": "1"}, headers=ORIGIN)
    assert res.status_code == 307 and res.headers["location"] == "/api/health?a=1"
    assert res.text == '<a href="/api/health?a=1">Temporary Redirect</a>.\n\n'
    assert res.headers["content-type"] == "text/html; charset=utf-8"
    assert "vary" not in res.headers and "access-control-allow-origin" not in res.headers
    res = await posts.post("/api//collections/posts/records", json={"title": "moved"})
    assert (res.status_code, res.content, res.headers["location"]) == (307, b"", POSTS)
    assert "content-type" not in res.headers
    res = await posts.post("/api//collections/posts/records", json={"title": "moved"}, follow_redirects=True)
    assert res.status_code == 200 and res.json()["title"] == "moved"


@pytest.mark.parametrize(("path", "clean"), [
    ("/", "/"), ("//", "/"), ("/a//b", "/a/b"), ("/a/./b", "/a/b"), ("/a/../b", "/b"), ("/..", "/"),
    ("/a/b/..", "/a"), ("/a/b/../", "/a/"), ("/a/.", "/a"), ("/a/./", "/a/"), ("/a/%2e%2e/b", "/a/%2e%2e/b"),
])
def test_clean_path(path, clean):
    assert clean_path(path) == clean


async def test_health(client):
    res = await client.get("/api/health")
    assert res.content == b'{"code":200,"data":{},"message":"API is healthy."}'  # no trailing newline
    res = await client.get("/api/health", headers={**client.su(), "Fly-Client-IP": "1.2.3.4"})
    assert res.json()["data"] == {"canBackup": False, "realIP": "127.0.0.1", "possibleProxyHeader": "Fly-Client-IP"}
    res = await client.patch("/api/settings", headers=client.su(),
                             json={"trustedProxy": {"headers": ["X-Real-IP"], "useLeftmostIP": False}})
    assert res.status_code == 200, res.text
    res = await client.get("/api/health", headers={**client.su(), "X-Real-IP": "10.1.2.3", "CF-Connecting-IP": "x"})
    assert res.json()["data"] == {"canBackup": False, "realIP": "10.1.2.3", "possibleProxyHeader": "X-Real-IP"}


async def test_bodies(posts):
    def create(content: bytes, ctype: str | None = None):
        headers = {"Content-Type": ctype} if ctype else {}
        return posts.post(POSTS, content=content, headers=headers, params={"fields": "title,n"})

    for content, ctype in ((b"", None), (b"", "text/plain"), (b"null", "application/json")):
        res = await create(content, ctype)
        assert (res.status_code, res.json()) == (200, {"title": "", "n": 0}), (content, ctype)
    for ctype in (None, "text/plain", "application/xml"):
        res = await create(b'{"title": "x"}', ctype)
        assert res.status_code == 400 and res.json()["message"] == "Unsupported Content-Type.", ctype
    for content in (b"   ", b"[1]", b'{"title": '):
        res = await create(content, "application/json")
        assert res.status_code == 400, content


async def test_list_parameters_read_as_pocketbase_reads_them(posts):
    async def page(**params):
        res = await posts.get(POSTS, params={"sort": "n", "fields": "title", **params})
        return res.status_code, res.json()

    status, body = await page(perPage="+2", page="002")
    assert status == 200 and (body["page"], body["perPage"], body["items"]) == (2, 2, [{"title": "t2"}])
    for flag, skipped in (("TRUE", True), ("True", True), ("t", True), ("F", False), ("", False)):
        status, body = await page(skipTotal=flag)
        assert status == 200 and (body["totalItems"] == -1) is skipped, flag
    for params in ({"page": " 1"}, {"page": "1_0"}, {"perPage": "٣"}, {"page": "9" * 20}, {"page": "1" * 5000},
                   {"skipTotal": "tRuE"}, {"skipTotal": "yes"}):
        status, _ = await page(**params)
        assert status == 400, params
    status, body = await page(page="000000000000000000000000001")
    assert status == 200 and body["page"] == 1
