"""Rate limits (``settings.rateLimits``) and the password sign-in lockout over HTTP.

Rate limiting does not depend on the database, so these run on SQLite only. Each test
gets a fresh app (a node, built with its store) and a fresh in-memory store; the Redis
tests share one store between two nodes on the same database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.adapters.database import open_database
from bastion.adapters.store_memory import MemoryStore
from bastion.adapters.store_redis import RedisStore
from bastion.api.app import HttpOptions, create_asgi
from bastion.core.app import App
from bastion.core.auth.ratelimit import LockoutPolicy
from bastion.core.store import Store
from bastion.testing import SUPERUSER_EMAIL, SUPERUSER_PASSWORD
from bastion.testing import TestClient as Client
from tests.services import BACKENDS, Backend, _reachable, require_or_skip

TOO_MANY = {"status": 429, "message": "Too Many Requests.", "data": {}}
REDIS_URL = os.environ.get("BASTION_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def backend() -> Backend:
    return BACKENDS["sqlite"]


Node = tuple[App, Client]


@pytest.fixture
def open_node(app: App, database_url: str, tmp_path: Path):
    """Opens a node: an App over the test's database built with a store (so rate limits
    and the lockout are on) and a client of it holding a superuser token, like
    conftest's ``client``. The node closes its store when it stops."""

    @asynccontextmanager
    async def opened(store: Store, lockout: LockoutPolicy | None = None) -> AsyncIterator[Node]:
        node = App(open_database(database_url, tmp_path / "data"), tmp_path / "migrations",
                   store=store, lockout=lockout)
        await node.start()
        asgi = create_asgi(node, HttpOptions(manage_lifespan=False, body_limit=1024 * 1024))
        try:
            async with Client(transport=httpx.ASGITransport(app=asgi), base_url="http://bastion.test") as c:
                res = await c.post("/api/collections/_superusers/auth-with-password",
                                   json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD})
                assert res.status_code == 200, res.text
                c.superuser_token = res.json()["token"]
                yield node, c
        finally:
            await node.close()

    return opened


@pytest.fixture
async def client(open_node) -> AsyncIterator[Client]:
    async with open_node(MemoryStore()) as (_, c):
        yield c


async def set_limits(client: Client, rules: list[dict[str, Any]], **extra: Any) -> None:
    rules = [{"audience": "", **r} for r in rules]
    body: dict[str, Any] = {"rateLimits": {"enabled": True, "excludedIPs": [], "rules": rules}}
    body["rateLimits"].update(extra.pop("rate_limits", {}))
    body.update(extra)
    res = await client.patch("/api/settings", json=body, headers=client.su())
    assert res.status_code == 200, res.text


def ip(addr: str) -> dict[str, str]:
    return {"X-Forwarded-For": addr}


TRUST_XFF = {"trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": False}}


async def statuses(client: Client, method: str, url: str, n: int, **kwargs: Any) -> list[int]:
    return [(await client.request(method, url, **kwargs)).status_code for _ in range(n)]


async def make_collection(client: Client, name: str) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": name, "type": "base", "fields": [{"name": "title", "type": "text"}],
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""})
    assert res.status_code == 200, res.text


async def make_user(client: Client, email: str = "u@example.com", password: str = "password-1") -> None:
    res = await client.post("/api/collections/users/records", json={
        "email": email, "password": password, "passwordConfirm": password})
    assert res.status_code == 200, res.text


async def sign_in(client: Client, password: str = "password-1", email: str = "u@example.com",
                  collection: str = "users") -> httpx.Response:
    return await client.post(f"/api/collections/{collection}/auth-with-password",
                             json={"identity": email, "password": password})


# -- rule lookup -----------------------------------------------------------------------

async def test_off_by_default(client: Client) -> None:
    assert set(await statuses(client, "GET", "/api/health", 30)) == {200}


async def test_exact_path_limit_per_ip(client: Client) -> None:
    await set_limits(client, [{"label": "/api/health", "duration": 10, "maxRequests": 2}], **TRUST_XFF)
    assert await statuses(client, "GET", "/api/health", 3, headers=ip("192.0.2.1")) == [200, 200, 429]
    res = await client.get("/api/health", headers=ip("192.0.2.1"))
    assert res.status_code == 429 and res.json() == TOO_MANY
    assert res.headers["content-type"] == "application/json"
    assert 1 <= int(res.headers["retry-after"]) <= 10
    assert res.headers["x-request-id"] and res.headers["x-content-type-options"] == "nosniff"
    assert await statuses(client, "GET", "/api/health", 2, headers=ip("192.0.2.2")) == [200, 200]
    other = await client.get("/api/collections/users/auth-methods", headers=ip("192.0.2.1"))
    assert other.status_code == 200  # no rule for that path


async def test_method_label_comes_before_path_label(client: Client) -> None:
    await set_limits(client, [
        {"label": "/api/health", "duration": 10, "maxRequests": 3},
        {"label": "GET /api/health", "duration": 10, "maxRequests": 1},
    ])
    assert await statuses(client, "GET", "/api/health", 2) == [200, 429]
    assert await statuses(client, "HEAD", "/api/health", 4) == [200, 200, 200, 429]


async def test_prefix_labels(client: Client) -> None:
    await set_limits(client, [
        {"label": "/api/coll/", "duration": 10, "maxRequests": 1},  # not a prefix of /api/collections
        {"label": "/api/health/", "duration": 10, "maxRequests": 1},  # also matches /api/health itself
        {"label": "/api/", "duration": 10, "maxRequests": 3},
    ])
    assert await statuses(client, "GET", "/api/health", 2) == [200, 429]
    urls = ["/api/openapi.json", "/api/collections", "/api/unknown-route", "/api/openapi.json"]
    assert [(await client.get(u)).status_code for u in urls] == [200, 401, 404, 429]
    # As in PocketBase, each collection route counts apart, even under a path rule
    auth_methods = "/api/collections/users/auth-methods"
    assert await statuses(client, "GET", auth_methods, 4) == [200, 200, 200, 429]
    assert (await client.get("/api/collections/users/records")).status_code == 200


async def test_wildcard_tag_counts_each_collection(client: Client) -> None:
    await make_collection(client, "posts")
    await make_collection(client, "notes")
    await set_limits(client, [{"label": "*:create", "duration": 10, "maxRequests": 2}])
    post = {"json": {"title": "x"}}
    assert await statuses(client, "POST", "/api/collections/posts/records", 3, **post) == [200, 200, 429]
    assert await statuses(client, "POST", "/api/collections/notes/records", 2, **post) == [200, 200]
    assert (await client.get("/api/collections/posts/records")).status_code == 200  # list is not create
    # A collection addressed by id shares the counter of its name
    col_id = (await client.get("/api/collections/notes", headers=client.su())).json()["id"]
    assert (await client.post(f"/api/collections/{col_id}/records", **post)).status_code == 429


async def test_collection_tag_comes_before_wildcard_and_path(client: Client) -> None:
    await make_collection(client, "posts")
    await make_collection(client, "notes")
    await set_limits(client, [
        {"label": "/api/", "duration": 10, "maxRequests": 100},
        {"label": "*:list", "duration": 10, "maxRequests": 3},
        {"label": "posts:list", "duration": 10, "maxRequests": 1},
    ])
    assert await statuses(client, "GET", "/api/collections/posts/records", 2) == [200, 429]
    assert await statuses(client, "GET", "/api/collections/notes/records", 4) == [200, 200, 200, 429]
    rec = (await client.post("/api/collections/posts/records", json={"title": "x"})).json()
    assert set(await statuses(client, "GET", f"/api/collections/posts/records/{rec['id']}", 3)) == {200}


async def test_auth_tags(client: Client) -> None:
    await make_user(client)
    await set_limits(client, [
        {"label": "users:auth", "duration": 10, "maxRequests": 2},
        {"label": "*:authRefresh", "duration": 10, "maxRequests": 1},
    ])
    assert [(await sign_in(client, "wrong-password")).status_code for _ in range(3)] == [400, 400, 429]
    token = (await sign_in(client, email=SUPERUSER_EMAIL, password=SUPERUSER_PASSWORD,
                           collection="_superusers")).json()["token"]
    assert token  # _superusers:auth has no rule
    auth = {"headers": {"Authorization": token}}
    assert await statuses(client, "POST", "/api/collections/_superusers/auth-refresh", 2, **auth) == [200, 200]


async def test_audience(client: Client) -> None:
    await make_user(client)
    token = (await sign_in(client)).json()["token"]
    user = {"headers": {"Authorization": token}}
    await set_limits(client, [
        {"label": "/api/health", "audience": "@guest", "duration": 10, "maxRequests": 1},
        {"label": "/api/health", "audience": "@auth", "duration": 10, "maxRequests": 3},
        {"label": "/api/collections/users/auth-methods", "audience": "@auth", "duration": 10, "maxRequests": 1},
    ])
    assert await statuses(client, "GET", "/api/health", 2) == [200, 429]
    assert await statuses(client, "GET", "/api/health", 4, **user) == [200, 200, 200, 429]
    bad_token = {"headers": {"Authorization": "not-a-token"}}
    assert await statuses(client, "GET", "/api/health", 1, **bad_token) == [429]  # a guest
    assert set(await statuses(client, "GET", "/api/collections/users/auth-methods", 5)) == {200}
    assert await statuses(client, "GET", "/api/collections/users/auth-methods", 2, **user) == [200, 429]


async def test_superusers_and_excluded_ips_are_exempt(client: Client) -> None:
    rules = [{"label": "/api/health", "duration": 10, "maxRequests": 1}]
    await set_limits(client, rules, **TRUST_XFF)
    assert set(await statuses(client, "GET", "/api/health", 5, headers=client.su())) == {200}
    await set_limits(client, rules, rate_limits={"excludedIPs": ["198.51.100.7", "10.0.0.0/8"]}, **TRUST_XFF)
    assert set(await statuses(client, "GET", "/api/health", 3, headers=ip("198.51.100.7"))) == {200}
    assert set(await statuses(client, "GET", "/api/health", 3, headers=ip("10.20.30.40"))) == {200}
    assert await statuses(client, "GET", "/api/health", 2, headers=ip("198.51.100.8")) == [200, 429]
    # Without trusted proxy headers the connection's address counts, not the header
    await set_limits(client, rules, rate_limits={"excludedIPs": ["127.0.0.1"]}, trustedProxy={"headers": []})
    assert set(await statuses(client, "GET", "/api/health", 3, headers=ip("192.0.2.9"))) == {200}


async def test_proxy_header_picks_the_rightmost_valid_address(client: Client) -> None:
    await set_limits(client, [{"label": "/api/health", "duration": 10, "maxRequests": 1}], **TRUST_XFF)
    assert await statuses(client, "GET", "/api/health", 2, headers=ip("203.0.113.5, 192.0.2.1, junk")) == [200, 429]
    assert (await client.get("/api/health", headers=ip("203.0.113.6, 192.0.2.1"))).status_code == 429
    assert (await client.get("/api/health", headers=ip("192.0.2.1, 203.0.113.6"))).status_code == 200


async def test_window_resets_and_retry_after(client: Client) -> None:
    await set_limits(client, [{"label": "/api/health", "duration": 1, "maxRequests": 2}])
    assert await statuses(client, "GET", "/api/health", 3) == [200, 200, 429]
    assert (await client.get("/api/health")).headers["retry-after"] == "1"
    await asyncio.sleep(1.1)
    assert await statuses(client, "GET", "/api/health", 3) == [200, 200, 429]


async def test_rule_change_starts_a_new_window(client: Client) -> None:
    await set_limits(client, [{"label": "/api/health", "duration": 10, "maxRequests": 1}])
    assert await statuses(client, "GET", "/api/health", 2) == [200, 429]
    await set_limits(client, [{"label": "/api/health", "duration": 10, "maxRequests": 2}])
    assert await statuses(client, "GET", "/api/health", 3) == [200, 200, 429]
    await set_limits(client, [], rate_limits={"enabled": False})
    assert set(await statuses(client, "GET", "/api/health", 3)) == {200}


# -- lockout -----------------------------------------------------------------------------

async def test_lockout_refuses_the_right_password(client: Client) -> None:
    await make_user(client)
    assert {(await sign_in(client, "wrong-password")).status_code for _ in range(5)} == {400}
    locked = await sign_in(client)
    assert locked.status_code == 429 and locked.json() == TOO_MANY
    assert 25 <= int(locked.headers["retry-after"]) <= 30
    assert (await sign_in(client, email="U@Example.com")).status_code == 429  # case-insensitive
    other = await client.post("/api/collections/users/auth-with-password",
                              json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD})
    assert other.status_code == 400  # same identity, other collection: not locked, just wrong


async def test_success_resets_the_failures(client: Client) -> None:
    await make_user(client)
    for _ in range(2):
        assert {(await sign_in(client, "wrong-password")).status_code for _ in range(4)} == {400}
        assert (await sign_in(client)).status_code == 200
    missing = await client.post("/api/collections/users/auth-with-password", json={"identity": "u@example.com"})
    assert missing.status_code == 400  # a validation error is not a failed attempt
    assert {(await sign_in(client, "wrong-password")).status_code for _ in range(4)} == {400}
    assert (await sign_in(client)).status_code == 200


async def test_unknown_identities_lock_too(client: Client) -> None:
    assert {(await sign_in(client, "x", email="ghost@example.com")).status_code for _ in range(5)} == {400}
    assert (await sign_in(client, "x", email="ghost@example.com")).status_code == 429


async def test_superusers_lock_too_and_lockout_ignores_rate_limit_settings(client: Client) -> None:
    for _ in range(5):
        await sign_in(client, "wrong-password", email=SUPERUSER_EMAIL, collection="_superusers")
    res = await sign_in(client, SUPERUSER_PASSWORD, email=SUPERUSER_EMAIL, collection="_superusers")
    assert res.status_code == 429


async def test_lock_expires_and_grows(open_node) -> None:
    policy = LockoutPolicy(max_failures=2, window=60, first_lock=1, max_lock=4)
    async with open_node(MemoryStore(), policy) as (_, client):
        await make_user(client)
        assert [(await sign_in(client, "wrong-password")).status_code for _ in range(3)] == [400, 400, 429]
        await asyncio.sleep(1.1)
        assert (await sign_in(client, "wrong-password")).status_code == 400  # third failure: 2 s
        res = await sign_in(client)
        assert res.status_code == 429 and res.headers["retry-after"] == "2"
        await asyncio.sleep(2.1)
        assert (await sign_in(client)).status_code == 200
        assert [(await sign_in(client, "wrong-password")).status_code for _ in range(3)] == [400, 400, 429]


# -- shared store --------------------------------------------------------------------------

async def drop_keys(prefix: str) -> None:
    """Delete the test's keys (all under ``prefix``)."""
    store = RedisStore(REDIS_URL)
    try:
        keys = [k async for k in store._redis.scan_iter(match=prefix + "*")]
        if keys:
            await store._redis.delete(*keys)
    finally:
        await store.aclose()


async def test_redis_store_is_shared_by_two_app_instances(open_node) -> None:
    if not _reachable("127.0.0.1", 6379):
        require_or_skip("Redis is not reachable on 127.0.0.1:6379")
    prefix = f"bastion-test:{secrets.token_hex(6)}:"
    try:
        async with (open_node(RedisStore(REDIS_URL, prefix=prefix)) as (_, a),
                    open_node(RedisStore(REDIS_URL, prefix=prefix)) as (other, b)):
            await set_limits(a, [{"label": "/api/health", "duration": 10, "maxRequests": 3}])
            assert await other.settings.reload_if_changed()  # what watch_schema does every 2 s
            assert [(await c.get("/api/health")).status_code for c in (a, b, a, b, a)] == [200, 200, 200, 429, 429]
            await make_user(a)
            for c in (a, b, a, b, a):
                assert (await sign_in(c, "wrong-password")).status_code == 400
            assert (await sign_in(b)).status_code == 429
    finally:
        await drop_keys(prefix)


async def test_unreachable_redis_fails_open(open_node) -> None:
    async with open_node(RedisStore("redis://127.0.0.1:1/0", timeout=0.2)) as (_, client):
        await set_limits(client, [{"label": "/api/", "duration": 10, "maxRequests": 1}])
        assert set(await statuses(client, "GET", "/api/health", 3)) == {200}
        await make_user(client)
        assert {(await sign_in(client, "wrong-password")).status_code for _ in range(6)} == {400}
        assert (await sign_in(client)).status_code == 200


# -- per identity ----------------------------------------------------------------------------

async def test_identity_limits_in_settings(client: Client) -> None:
    shown = (await client.get("/api/settings", headers=client.su())).json()["identityRateLimits"]
    assert shown["enabled"] is True
    assert {r["label"]: (r["duration"], r["maxRequests"]) for r in shown["rules"]}["*:authWithOTP"] == (180, 5)
    bad = await client.patch("/api/settings", headers=client.su(), json={"identityRateLimits": {"rules": [
        {"label": "*:list", "duration": 10, "maxRequests": 1},
        {"label": "users:authWithPassword", "duration": 0, "maxRequests": 1}]}})
    assert bad.status_code == 400
    errors = bad.json()["data"]["identityRateLimits"]["rules"]
    assert errors["0"]["label"]["code"] == "validation_invalid_value" and "duration" in errors["1"]
    rules = [{"label": "users:authWithPassword", "duration": 60, "maxRequests": 2},
             {"label": "*:authWithPassword", "duration": 60, "maxRequests": 50}]
    res = await client.patch("/api/settings", headers=client.su(), json={"identityRateLimits": {"rules": rules}})
    assert res.status_code == 200 and res.json()["identityRateLimits"] == {"enabled": True, "rules": rules}


async def test_identity_limit_holds_across_addresses(client: Client) -> None:
    await make_user(client)
    rules = [{"label": "users:authWithPassword", "duration": 60, "maxRequests": 2}]
    await set_limits(client, [{"label": "*:auth", "duration": 60, "maxRequests": 100}],
                     identityRateLimits={"rules": rules}, **TRUST_XFF)
    answers = [(await client.post("/api/collections/users/auth-with-password", headers=ip(f"192.0.2.{n}"),
                                  json={"identity": who, "password": "password-1"}))
               for n, who in enumerate(("u@example.com", " U@EXAMPLE.COM", "u@example.com"))]
    assert [a.status_code for a in answers] == [200, 400, 429]  # the padded identity is unknown, yet counted
    assert answers[2].json() == TOO_MANY and 1 <= int(answers[2].headers["retry-after"]) <= 60
    assert (await sign_in(client, SUPERUSER_PASSWORD, SUPERUSER_EMAIL, "_superusers")).status_code == 200
    res = await client.patch("/api/settings", headers=client.su(), json={"identityRateLimits": {"enabled": False}})
    assert res.status_code == 200
    assert (await sign_in(client)).status_code == 200


async def test_identity_limits_on_every_email_flow(client: Client) -> None:
    await make_user(client)
    limited = [{"label": f"*:{tag}", "duration": 60, "maxRequests": 1} for tag in (
        "requestVerification", "requestPasswordReset", "confirmVerification", "confirmPasswordReset",
        "confirmEmailChange", "requestEmailChange")]
    await set_limits(client, [], identityRateLimits={"rules": limited})
    token = (await sign_in(client)).json()["token"]
    calls = [
        ("request-verification", {"email": "u@example.com"}, {}, 204),
        ("request-password-reset", {"email": "U@example.com"}, {}, 204),
        ("confirm-verification", {"token": token}, {}, 400),  # an auth token: wrong purpose
        ("confirm-password-reset", {"token": token, "password": "x", "passwordConfirm": "x"}, {}, 400),
        ("confirm-email-change", {"token": token, "password": "x"}, {}, 400),
        ("request-email-change", {"newEmail": "new@example.com"}, {"Authorization": token}, 204),
    ]
    for path, body, headers, first in calls:
        url = f"/api/collections/users/{path}"
        assert (await client.post(url, json=body, headers=headers)).status_code == first, path
        again = await client.post(url, json=body, headers=headers)
        assert again.status_code == 429 and again.json() == TOO_MANY, path


async def test_redis_shares_identity_limits_between_nodes(open_node) -> None:
    if not _reachable("127.0.0.1", 6379):
        require_or_skip("Redis is not reachable on 127.0.0.1:6379")
    prefix = f"bastion-test:{secrets.token_hex(6)}:"
    try:
        async with (open_node(RedisStore(REDIS_URL, prefix=prefix)) as (_, a),
                    open_node(RedisStore(REDIS_URL, prefix=prefix)) as (_, b)):
            url = "/api/collections/users/request-password-reset"
            answers = [(await c.post(url, json={"email": "ghost@example.com"})).status_code for c in (a, b) * 3]
            assert answers == [204] * 5 + [429]
    finally:
        await drop_keys(prefix)


async def test_email_cooldowns_are_shared_through_the_store(app: App, open_node) -> None:
    # Two nodes (two AuthFlows) on one Redis: a verification email sent by one starts the
    # two-minute cooldown for both; a store that cannot be reached falls back to the
    # count of the process.
    if not _reachable("127.0.0.1", 6379):
        require_or_skip("Redis is not reachable on 127.0.0.1:6379")
    from bastion.core.auth.flows import AuthFlows

    prefix = f"bastion-test:{secrets.token_hex(6)}:"
    stores = [RedisStore(REDIS_URL, prefix=prefix), RedisStore(REDIS_URL, prefix=prefix)]
    nodes = [AuthFlows(app.db, app.registry, lambda: app.settings.current, lambda: app.mailer, cooldowns=store)
             for store in stores]
    users = app.registry.get("users")
    given = RedisStore(REDIS_URL, prefix=prefix)
    try:
        async with open_node(given) as (node, _):
            assert node.flows.cooldowns is given  # what serve wires: the app's own store
        assert not await nodes[0]._cooling(users, "record1", "verification")
        assert await nodes[1]._cooling(users, "record1", "verification")
        assert await nodes[0]._cooling(users, "record1", "verification")
        assert not await nodes[1]._cooling(users, "record1", "passwordReset")
        assert not await nodes[1]._cooling(users, "record2", "verification")
    finally:
        await drop_keys(prefix)
        for store in stores:
            await store.aclose()
    down = AuthFlows(app.db, app.registry, lambda: app.settings.current, lambda: app.mailer,
                     cooldowns=RedisStore("redis://127.0.0.1:1/0", timeout=0.2))
    try:
        assert not await down._cooling(users, "record1", "verification")
        assert await down._cooling(users, "record1", "verification")
    finally:
        assert down.cooldowns is not None
        await down.cooldowns.aclose()
