"""Settings, auth and batch answers have PocketBase's shape and values.

What Bastion adds is named in ``ADDED`` (documented in docs/compatibility.md): its own
settings section and its own default app name.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import PASSWORD, Pair

U1 = "u1u1u1u1u1u1u1u"
ADDED = {("identityRateLimits",), ("realtime",), ("meta", "appName")}


def without(body: Any, paths: set[tuple[str, ...]]) -> Any:
    if not isinstance(body, dict):
        return body
    out = {}
    for key, value in body.items():
        inner = {p[1:] for p in paths if p[0] == key and len(p) > 1}
        if (key,) in paths:
            continue
        out[key] = without(value, inner) if inner else value
    return out


@pytest.fixture(scope="module")
def scenario(pair: Pair) -> Pair:
    pair.setup("POST", "/api/collections/users/records", json={
        "id": U1, "email": "u1@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD, "name": "zed"})
    return pair


REQUESTS = [
    ("GET", "/api/settings", "su", {}),
    ("POST", "/api/collections/users/auth-with-password", None,
     {"json": {"identity": "u1@example.com", "password": PASSWORD}}),
    ("POST", "/api/collections/users/auth-with-password", None,
     {"json": {"identity": "u1@example.com", "password": "wrong-password"}}),
    ("POST", "/api/collections/users/auth-with-password", None, {"json": {"identity": "", "password": ""}}),
    ("GET", "/api/collections/users/auth-methods", None, {}),
    ("POST", "/api/batch", "su", {"json": {"requests": []}}),
    ("POST", "/api/collections/users/request-password-reset", None, {"json": {"email": "u1@example.com"}}),
    ("POST", "/api/collections/users/request-password-reset", None, {"json": {"email": "nobody@example.com"}}),
    ("POST", "/api/collections/users/request-verification", None, {"json": {"email": "u1@example.com"}}),
    ("POST", "/api/collections/users/request-otp", None, {"json": {"email": "u1@example.com"}}),
    ("GET", "/api/collections/users", "su", {}),
    ("GET", "/api/collections/nope", "su", {}),
    ("DELETE", "/api/collections/nope", "su", {}),
    ("PATCH", "/api/collections/nope", "su", {"json": {"name": "x"}}),
    ("GET", "/api/collections/users/records", None, {}),
    ("GET", f"/api/collections/users/records/{U1}", None, {}),
]


@pytest.mark.parametrize(("method", "path", "who", "kw"), REQUESTS, ids=[f"{m} {p} {w}" for m, p, w, _ in REQUESTS])
def test_answers_as_pocketbase(scenario: Pair, method: str, path: str, who: str | None, kw: dict) -> None:
    pb, bastion = scenario.both(method, path, who, **kw)
    assert bastion.status == pb.status
    assert without(bastion.body, ADDED) == without(pb.body, ADDED)


LIMITED = [{"s": ["a", "b", "c"]}, {"t": "abcd"}, {"t": "a"}, {"n": 9}, {"n": -1}, {"r": [U1]},
           {"s": "zz"}, {"e": "<p>" + "x" * 20 + "</p>"}]


@pytest.fixture(scope="module")
def limited(scenario: Pair) -> Pair:
    scenario.setup("POST", "/api/collections", json={
        "name": "limited", "type": "base", "createRule": "",
        "fields": [{"name": "s", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2},
                   {"name": "t", "type": "text", "min": 2, "max": 3},
                   {"name": "n", "type": "number", "min": 0, "max": 5},
                   {"name": "r", "type": "relation", "collectionId": "_pb_users_auth_", "minSelect": 2, "maxSelect": 3},
                   {"name": "e", "type": "editor", "maxSize": 10}]})
    return scenario


@pytest.mark.parametrize("body", LIMITED, ids=[str(sorted(b)) + str(i) for i, b in enumerate(LIMITED)])
def test_validation_errors_answer_as_pocketbase(limited: Pair, body: dict) -> None:
    pb, bastion = limited.both("POST", "/api/collections/limited/records", json=body)
    assert (bastion.status, bastion.body) == (pb.status, pb.body)
