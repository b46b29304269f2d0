"""HTTP-level answers compared with PocketBase: CORS, unknown routes and methods, HEAD,
trailing slashes, unclean paths, health, request bodies and list parameters.

Each case sends the same request to both servers and asserts the answers are equal, and
also what they are (PocketBase 0.40.6 as measured), so a change on either side shows.
The differences Bastion keeps on purpose are pinned in ``test_known_differences``.
"""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.compat.harness import Answer, Pair, Side

POSTS = "/api/collections/posts/records"  # four records with known ids, for lists
INBOX = "/api/collections/inbox/records"  # where requests create records
ORIGIN = {"Origin": "http://x.test"}
NOT_FOUND = {"data": {}, "message": "The requested resource wasn't found.", "status": 404}
FILE_NOT_FOUND = {"data": {}, "message": "File not found.", "status": 404}
GENERIC_400 = "Something went wrong while processing your request."
METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
                "access-control-allow-credentials", "access-control-expose-headers", "access-control-max-age",
                "vary")
SECURITY_HEADERS = {"x-xss-protection": "1; mode=block", "x-content-type-options": "nosniff",
                    "x-frame-options": "SAMEORIGIN", "cross-origin-opener-policy": "same-origin"}
IDS = ["a1a1a1a1a1a1a1a", "b2b2b2b2b2b2b2b", "c3c3c3c3c3c3c3c", "d4d4d4d4d4d4d4d"]


@pytest.fixture(scope="module")
def scenario(pair: Pair) -> Pair:
    pair.setup("POST", "/api/collections", json={
        "id": "pbc_posts", "name": "posts", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": "", "deleteRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]})
    for n, rid in enumerate(IDS):
        pair.setup("POST", POSTS, json={"id": rid, "title": f"t{n}", "n": n})
    pair.setup("POST", "/api/collections", json={
        "id": "pbc_inbox", "name": "inbox", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]})
    return pair


def raw_both(pair: Pair, method: str, path: str, who: str | None = None,
             **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    return pair.pb.request(method, path, who, **kw), pair.bastion.request(method, path, who, **kw)


def cors(res: httpx.Response) -> dict[str, str]:
    return {k: res.headers[k] for k in CORS_HEADERS if k in res.headers}


def same(pb: Answer, bastion: Answer) -> Answer:
    assert (bastion.status, bastion.body) == (pb.status, pb.body)
    return pb


# -- CORS ------------------------------------------------------------------------------

PREFLIGHTS = [
    (POSTS, {**ORIGIN, "Access-Control-Request-Method": "GET"},
     {"access-control-allow-origin": "*", "access-control-allow-methods": METHODS, "vary": PREFLIGHT_VARY}),
    (POSTS, {**ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type, authorization"},
     {"access-control-allow-origin": "*", "access-control-allow-methods": METHODS,
      "access-control-allow-headers": "content-type, authorization", "vary": PREFLIGHT_VARY}),
    # Every OPTIONS request is a preflight, with or without Access-Control-Request-Method.
    (POSTS, ORIGIN, {"access-control-allow-origin": "*", "access-control-allow-methods": METHODS,
                     "vary": PREFLIGHT_VARY}),
    (POSTS, {}, {"vary": "Origin"}),
    (POSTS, {"Origin": ""}, {"vary": "Origin"}),
    ("/api/nope", {**ORIGIN, "Access-Control-Request-Method": "DELETE"},
     {"access-control-allow-origin": "*", "access-control-allow-methods": METHODS, "vary": PREFLIGHT_VARY}),
    ("/api/health", {**ORIGIN, "Access-Control-Request-Method": "GET"},
     {"access-control-allow-origin": "*", "access-control-allow-methods": METHODS, "vary": PREFLIGHT_VARY}),
]


@pytest.mark.parametrize(("path", "headers", "expected"), PREFLIGHTS)
def test_preflight(scenario: Pair, path: str, headers: dict[str, str], expected: dict[str, str]) -> None:
    pb, bastion = raw_both(scenario, "OPTIONS", path, headers=headers)
    assert (pb.status_code, pb.content, cors(pb)) == (204, b"", expected)
    assert (bastion.status_code, bastion.content, cors(bastion)) == (204, b"", expected)
    # A preflight is answered before PocketBase's other middleware: no content type, no
    # security headers.
    for res in (pb, bastion):
        assert "content-type" not in res.headers and "x-frame-options" not in res.headers


@pytest.mark.parametrize(("method", "path", "headers", "expected"), [
    ("GET", POSTS, ORIGIN, {"access-control-allow-origin": "*", "vary": "Origin"}),
    ("GET", POSTS, {}, {"vary": "Origin"}),
    ("GET", POSTS, {"Origin": "null"}, {"access-control-allow-origin": "*", "vary": "Origin"}),
    ("GET", POSTS, {"Origin": ""}, {"vary": "Origin"}),
    ("HEAD", POSTS, ORIGIN, {"access-control-allow-origin": "*", "vary": "Origin"}),
    ("POST", INBOX, ORIGIN, {"access-control-allow-origin": "*", "vary": "Origin"}),
    # Errors carry the same headers.
    ("PUT", POSTS, ORIGIN, {"access-control-allow-origin": "*", "vary": "Origin"}),
    ("GET", "/api/nope", ORIGIN, {"access-control-allow-origin": "*", "vary": "Origin"}),
    ("GET", "/api/collections/missing/records", ORIGIN, {"access-control-allow-origin": "*", "vary": "Origin"}),
])
def test_cors_headers_of_answers(scenario: Pair, method: str, path: str, headers: dict[str, str],
                                 expected: dict[str, str]) -> None:
    kw: dict[str, Any] = {"json": {"title": "cors"}, "params": {"fields": "title"}} if method == "POST" else {}
    pb, bastion = raw_both(scenario, method, path, headers=headers, **kw)
    assert bastion.status_code == pb.status_code
    assert cors(pb) == expected
    assert cors(bastion) == expected


@pytest.mark.parametrize(("method", "path"), [
    ("GET", POSTS), ("GET", "/api/health"), ("PUT", POSTS), ("GET", "/api/nope"),
    ("GET", f"{POSTS}/zzzzzzzzzzzzzzz"), ("POST", INBOX),
])
def test_security_headers(scenario: Pair, method: str, path: str) -> None:
    kw: dict[str, Any] = {"content": b"x", "headers": {"Content-Type": "text/plain"}} if method == "POST" else {}
    pb, bastion = raw_both(scenario, method, path, **kw)
    assert bastion.status_code == pb.status_code
    for res in (pb, bastion):
        assert {k: res.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS


# -- routes and methods ----------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("PUT", POSTS), ("PATCH", POSTS), ("DELETE", POSTS), ("TRACE", POSTS),
    ("POST", f"{POSTS}/{IDS[0]}"), ("PUT", f"{POSTS}/{IDS[0]}"),
    ("POST", "/api/health"), ("DELETE", "/api/health"),
    ("PUT", "/api/collections"), ("PATCH", "/api/collections"),
    ("PUT", "/api/collections/users/auth-methods"), ("PUT", "/api/settings"), ("POST", "/api/settings"),
    # Unknown paths for a method other than GET and HEAD: PocketBase's catch-all route.
    ("POST", "/api/nope"), ("DELETE", "/api/nope"), ("PATCH", "/nope"), ("PUT", "/api/collections/x/nope"),
])
def test_wrong_method_or_path_is_the_catch_all_404(scenario: Pair, method: str, path: str) -> None:
    pb = same(*scenario.both(method, path, "su"))
    assert (pb.status, pb.body) == (404, NOT_FOUND)


@pytest.mark.parametrize("path", [
    "/api/nope", "/nope", "/", "/api", "/api/", "/api/collections/x/nope", "/api/collections/posts/nope",
    # A GET on a path served for other methods only: PocketBase's static file handler.
    "/api/collections/users/auth-with-password", "/api/collections/posts/auth-with-password", "/api/batch",
    "/api/collections/users/request-otp",
])
def test_unknown_get_is_file_not_found(scenario: Pair, path: str) -> None:
    pb = same(*scenario.both("GET", path, "su"))
    assert (pb.status, pb.body) == (404, FILE_NOT_FOUND)


@pytest.mark.parametrize(("path", "message"), [
    (f"{POSTS}/zzzzzzzzzzzzzzz", NOT_FOUND["message"]),
    (f"/api/files/posts/{IDS[0]}/nothing.png", NOT_FOUND["message"]),
    (f"/api/files/posts/{IDS[0]}/", FILE_NOT_FOUND["message"]),
    ("/api/collections/missing/records", "Missing collection context."),
    ("/api/files/missing/x/y.txt", "Missing or invalid collection context."),
])
def test_missing_resources_are_not_unknown_routes(scenario: Pair, path: str, message: str) -> None:
    for who in (None, "su"):
        pb = same(*scenario.both("GET", path, who))
        assert (pb.status, pb.body) == (404, {"data": {}, "message": message, "status": 404})


@pytest.mark.parametrize(("path", "status"), [
    (POSTS, 200), (f"{POSTS}/{IDS[0]}", 200), ("/api/health", 200), ("/api/collections", 200),
    ("/api/nope", 404), (f"{POSTS}/zzzzzzzzzzzzzzz", 404), ("/api/collections/users/auth-with-password", 404),
    ("/api/health/", 404),
])
def test_head(scenario: Pair, path: str, status: int) -> None:
    pb, bastion = raw_both(scenario, "HEAD", path, "su")
    assert (pb.status_code, pb.content) == (status, b"")
    assert (bastion.status_code, bastion.content) == (status, b"")
    assert bastion.headers.get("content-type") == pb.headers.get("content-type")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/collections/"), ("GET", f"{POSTS}/"), ("GET", f"{POSTS}/{IDS[0]}/"), ("GET", "/api/health/"),
    ("POST", f"{INBOX}/"), ("GET", "/api/collections/posts/"),
])
def test_trailing_slash_is_another_route(scenario: Pair, method: str, path: str) -> None:
    pb = same(*scenario.both(method, path, "su"))
    assert (pb.status, pb.body) == (404, FILE_NOT_FOUND if method == "GET" else NOT_FOUND)


# -- unclean paths ---------------------------------------------------------------------

def send_raw(side: Side, method: str, target: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    """A request with its target exactly as given (httpx would normalise dot segments)."""
    url = urlparse(side.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.read(), {k.lower(): v for k, v in res.getheaders()}
    finally:
        conn.close()


@pytest.mark.parametrize(("method", "target", "location"), [
    ("GET", "//api/health", "/api/health"),
    ("GET", "/api//health?x=1&y=%20", "/api/health?x=1&y=%20"),
    ("GET", "/api/./health", "/api/health"),
    ("GET", "/api/x/../health", "/api/health"),
    ("GET", "/api/health/.", "/api/health"),
    ("GET", "/api/health/..", "/api"),
    ("GET", "/api/health/./", "/api/health/"),
    ("GET", "/..", "/"),
    ("GET", "/api//h%C3%A9alth", "/api/h%C3%A9alth"),
    ("GET", "/api//a%2Fb", "/api/a%2Fb"),
    ("GET", "/api//x?a='b\"<>", "/api/x?a='b\"<>"),
    ("HEAD", "/api//health", "/api/health"),
    ("POST", "/api//collections/inbox/records", "/api/collections/inbox/records"),
    ("DELETE", "//api/nope", "/api/nope"),
    ("OPTIONS", "/api//health", "/api/health"),
])
def test_unclean_paths_redirect(scenario: Pair, method: str, target: str, location: str) -> None:
    headers = {**ORIGIN, "Content-Type": "application/json"}
    body = b'{"title": "moved"}' if method == "POST" else None
    pb, bastion = (send_raw(side, method, target, headers, body) for side in scenario.sides)
    assert pb[0] == bastion[0] == 307
    assert pb[1] == bastion[1]
    for _, _, hdrs in (pb, bastion):
        assert hdrs["location"] == location
        # The redirect comes before the CORS and security middleware.
        assert "vary" not in hdrs and "access-control-allow-origin" not in hdrs and "x-frame-options" not in hdrs
    assert bastion[2].get("content-type") == pb[2].get("content-type")
    if method == "GET":
        assert pb[2]["content-type"] == "text/html; charset=utf-8" and pb[1].startswith(b'<a href="')


def test_encoded_dots_are_not_a_segment(scenario: Pair) -> None:
    pb, bastion = (send_raw(side, "GET", "/api/%2e%2e/api/health") for side in scenario.sides)
    assert pb[:2] == bastion[:2]
    assert pb[0] == 404


# -- /api/health -------------------------------------------------------------------------

def test_health(scenario: Pair) -> None:
    pb, bastion = raw_both(scenario, "GET", "/api/health")
    assert pb.json() == bastion.json() == {"code": 200, "message": "API is healthy.", "data": {}}
    assert pb.content == b'{"message":"API is healthy.","code":200,"data":{}}'
    assert bastion.headers["content-type"] == pb.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("headers", "proxy"), [
    ({}, ""),
    ({"CF-Connecting-IP": "1.2.3.4"}, "CF-Connecting-IP"),
    ({"Fly-Client-IP": "1.2.3.4", "X-Forwarded-For": "5.6.7.8"}, "Fly-Client-IP"),
    ({"X-Forwarded-For": "5.6.7.8"}, "X-Forwarded-For"),
    ({"CF-Connecting-IP": ""}, ""),
])
def test_health_for_superusers(scenario: Pair, headers: dict[str, str], proxy: str) -> None:
    pb, bastion = (Answer.of(res) for res in raw_both(scenario, "GET", "/api/health", "su", headers=headers))
    assert pb.status == bastion.status == 200
    # Bastion has no backups: canBackup is false (see test_known_differences).
    pb.body["data"].pop("canBackup")
    assert bastion.body["data"].pop("canBackup") is False
    assert bastion.body == pb.body
    assert pb.body["data"] == {"realIP": "127.0.0.1", "possibleProxyHeader": proxy}


def test_json_bodies_end_without_a_newline(scenario: Pair) -> None:
    pb, bastion = raw_both(scenario, "GET", POSTS, params={"fields": "id", "perPage": 1})
    assert bastion.json() == pb.json()  # (PocketBase's key order varies with ?fields=)
    assert bastion.content.endswith(b"}") and pb.content.endswith(b"}")
    assert bastion.headers["content-length"] == pb.headers["content-length"]
    pb, bastion = raw_both(scenario, "GET", "/api/nope")
    assert bastion.content == pb.content == b'{"data":{},"message":"File not found.","status":404}'


# -- request bodies ---------------------------------------------------------------------

CREATE = {"fields": "title,n"}


@pytest.mark.parametrize(("content", "ctype", "status", "body"), [
    (b"", "application/json", 200, {"title": "", "n": 0}),
    (b"", None, 200, {"title": "", "n": 0}),
    (b"", "text/plain", 200, {"title": "", "n": 0}),
    (b"null", "application/json", 200, {"title": "", "n": 0}),
    (b'{"title": "a", "n": 2}', "application/json; charset=utf-8", 200, {"title": "a", "n": 2}),
    (b'{"title": 5}', "application/json", 200, {"title": "5", "n": 0}),
    (b'{"title": "x"}', None, 400, {"data": {}, "message": "Unsupported Content-Type.", "status": 400}),
    (b'{"title": "x"}', "text/plain", 400, {"data": {}, "message": "Unsupported Content-Type.", "status": 400}),
    (b"title=x", "text/plain;charset=UTF-8", 400,
     {"data": {}, "message": "Unsupported Content-Type.", "status": 400}),
    (b"title=x&n=3", "application/x-www-form-urlencoded", 200, {"title": "x", "n": 3}),
])
def test_bodies(scenario: Pair, content: bytes, ctype: str | None, status: int, body: Any) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    pb = same(*scenario.both("POST", INBOX, content=content, headers=headers, params=CREATE))
    assert (pb.status, pb.body) == (status, body)


@pytest.mark.parametrize(("content", "ctype"), [
    (b'{"title": ', "application/json"),
    (b"[1]", "application/json"),
    (b'"s"', "application/json"),
    (b"   ", "application/json"),
    (b'{"title": "x"}', "application/xml"),
])
def test_unreadable_bodies_are_400(scenario: Pair, content: bytes, ctype: str) -> None:
    # Same status; the messages differ on purpose (see test_known_differences).
    pb, bastion = scenario.both("POST", INBOX, content=content, headers={"Content-Type": ctype}, params=CREATE)
    assert pb.status == bastion.status == 400
    assert pb.body["message"] == GENERIC_400
    assert set(bastion.body) == {"status", "message", "data"} and bastion.body["data"] == {}


# -- list parameters --------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"perPage": 100000}, {"perPage": 1000}, {"perPage": 501}, {"perPage": 0}, {"perPage": -1}, {"perPage": 2},
    {"perPage": "+2"}, {"perPage": "002"}, {"page": 0}, {"page": -1}, {"page": 2, "perPage": 3},
    {"page": 99999}, {"page": "-0"}, {"unknown": "1"}, {"skipTotal": "1"}, {"skipTotal": "t"},
    {"skipTotal": "TRUE"}, {"skipTotal": "True"}, {"skipTotal": "F"}, {"skipTotal": "0"}, {"skipTotal": ""},
    {"page": ""}, {"perPage": ""}, {"expand": "nope"}, {"fields": "nope"},
])
def test_list_parameters(scenario: Pair, params: dict[str, Any]) -> None:
    query = {"sort": "n", "fields": "id", **params}
    same(*scenario.both("GET", POSTS, params=query))


@pytest.mark.parametrize("params", [
    {"page": "x"}, {"page": "1.5"}, {"page": " 1"}, {"page": "1_0"}, {"page": "99999999999999999999"},
    {"perPage": "x"}, {"perPage": "1e3"}, {"perPage": "٣"}, {"skipTotal": "yes"}, {"skipTotal": "tRuE"},
    {"sort": "nope"}, {"filter": "nope = 1"},
])
def test_bad_list_parameters_are_400(scenario: Pair, params: dict[str, Any]) -> None:
    pb, bastion = scenario.both("GET", POSTS, params=params)
    assert pb.status == bastion.status == 400
    assert pb.body["message"] == GENERIC_400  # Bastion names the problem (docs/compatibility.md)


# -- what still differs -------------------------------------------------------------------

def test_known_differences(scenario: Pair) -> None:
    """Pinned so that a change on either side is noticed (see docs/compatibility.md)."""
    json_ = {"Content-Type": "application/json"}
    # PocketBase reads the first JSON value and ignores what follows; Bastion refuses the body.
    pb, bastion = scenario.both("POST", INBOX, content=b'{"title": "x"} junk', headers=json_, params=CREATE)
    assert (pb.status, pb.body) == (200, {"title": "x", "n": 0})
    assert bastion.status == 400 and bastion.body["message"].startswith("Invalid JSON body")
    # Unreadable bodies: PocketBase's generic message, Bastion's names the problem.
    pb, bastion = scenario.both("POST", INBOX, content=b'{"title": ', headers=json_)
    assert pb.body["message"] == GENERIC_400
    assert bastion.body["message"] == "Invalid JSON body: unexpected end of data at position 10."
    # Bastion has no backups API.
    pb, bastion = scenario.both("GET", "/api/health", "su")
    assert (pb.body["data"]["canBackup"], bastion.body["data"]["canBackup"]) == (True, False)
    # PocketBase matches routes on the encoded path, Bastion on the decoded one.
    pb, bastion = scenario.both("GET", "/api/collections/posts%2Frecords", params={"fields": "id"})
    assert pb.status == 401 and bastion.status == 200
    # Bastion bounds the page it reads at 1,000,000 (a bigger one reads as that).
    pb, bastion = scenario.both("GET", POSTS, params={"page": 2_000_000, "fields": "id"})
    assert (pb.body["page"], bastion.body["page"]) == (2_000_000, 1_000_000)
    assert pb.body["items"] == bastion.body["items"] == []
    # Every answer of Bastion carries a request id.
    pb_raw, bastion_raw = raw_both(scenario, "GET", "/api/health")
    assert "x-request-id" not in pb_raw.headers and bastion_raw.headers["x-request-id"]
