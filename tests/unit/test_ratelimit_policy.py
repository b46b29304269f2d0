"""The rate-limit policy without HTTP: rule lookup order, route tags, client IPs, lock times."""

from __future__ import annotations

import asyncio

import pytest

from bastion.adapters.store_memory import MemoryStore
from bastion.api.endpoints import route_tags
from bastion.api.ratelimit import client_ip
from bastion.core.auth.ratelimit import (
    AUTH_AUDIENCES,
    GUEST_AUDIENCES,
    Lockout,
    LockoutPolicy,
    RateLimited,
    Target,
    find_rule,
    ip_listed,
)
from bastion.core.schema.collections import Collection

USERS = Collection(id="_pb_users_auth_", name="users", type="auth")


def rule(label: str, audience: str = "") -> dict[str, object]:
    return {"label": label, "audience": audience, "duration": 1, "maxRequests": 1}


def pick(rules: list[dict[str, object]], target: Target, audiences=GUEST_AUDIENCES) -> str | None:
    found = find_rule(rules, target.labels(), audiences)
    return None if found is None else f"{found['label']}{found['audience']}"


CREATE = Target("POST", "/api/collections/users/records", USERS, ("create",))


def test_labels_most_specific_first() -> None:
    login = Target("POST", "/api/collections/users/auth-with-password", USERS, ("authWithPassword", "auth"))
    assert login.labels() == [
        "users:authWithPassword", "users:auth", "*:authWithPassword", "*:auth",
        "POST /api/collections/users/auth-with-password", "/api/collections/users/auth-with-password"]
    assert Target("GET", "/api/health").labels() == ["GET /api/health", "/api/health"]


@pytest.mark.parametrize(("rules", "expected"), [
    ([rule("/api/"), rule("*:create"), rule("users:create")], "users:create"),
    ([rule("/api/"), rule("*:create")], "*:create"),
    ([rule("/api/"), rule("/api/collections/users/records")], "/api/collections/users/records"),
    ([rule("/api/collections/users/records"), rule("POST /api/collections/users/records")],
     "POST /api/collections/users/records"),
    # a prefix rule is tried right after the exact rules of the same label
    ([rule("/api/collections/users/records"), rule("POST /api/")], "POST /api/"),
    ([rule("/api/")], "/api/"),
    ([rule("/api/collections/users/records/")], "/api/collections/users/records/"),
    ([rule("/api/coll/"), rule("/other/")], None),
    ([rule("users:list"), rule("posts:create")], None),
])
def test_lookup_order(rules, expected) -> None:
    assert pick(rules, CREATE) == expected


def test_audience_filters_rules() -> None:
    rules = [rule("/api/", "@auth"), rule("/api/", "@guest"), rule("*:create", "@auth")]
    assert pick(rules, CREATE, GUEST_AUDIENCES) == "/api/@guest"
    assert pick(rules, CREATE, AUTH_AUDIENCES) == "*:create@auth"
    everyone = [rule("/api/"), rule("/api/", "@guest")]
    assert pick(everyone, CREATE, GUEST_AUDIENCES) == "/api/"  # the first fitting rule wins


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/collections/posts/records", ("posts", ("list",))),
    ("HEAD", "/api/collections/posts/records", ("posts", ("list",))),
    ("POST", "/api/collections/posts/records", ("posts", ("create",))),
    ("GET", "/api/collections/posts/records/abc", ("posts", ("view",))),
    ("PATCH", "/api/collections/posts/records/abc", ("posts", ("update",))),
    ("DELETE", "/api/collections/posts/records/abc", ("posts", ("delete",))),
    ("POST", "/api/collections/users/auth-with-password", ("users", ("authWithPassword", "auth"))),
    ("POST", "/api/collections/users/auth-with-otp", ("users", ("authWithOTP", "auth"))),
    ("POST", "/api/collections/users/auth-with-oauth2", ("users", ("authWithOAuth2", "auth"))),
    ("GET", "/api/collections/users/auth-methods", ("users", ("listAuthMethods",))),
    ("POST", "/api/collections/users/auth-refresh", ("users", ("authRefresh",))),
    ("POST", "/api/collections/users/request-otp", ("users", ("requestOTP",))),
    ("POST", "/api/collections/users/confirm-email-change", ("users", ("confirmEmailChange",))),
    ("GET", "/api/files/posts/abc/photo.png", ("posts", ("file",))),
    ("POST", "/api/collections/users/impersonate/abc", None),
    ("GET", "/api/collections/posts", None),
    ("PUT", "/api/collections/posts/records", None),
    ("GET", "/api/collections/posts/records/", None),
    ("GET", "/api/collections//records", None),
    ("POST", "/api/collections/users/auth-methods", None),
    ("GET", "/api/health", None),
])
def test_route_tags(method, path, expected) -> None:
    assert route_tags(method, path) == expected


def test_client_ip() -> None:
    scope = {"client": ("127.0.0.1", 5000), "headers": [(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2, bad")]}
    assert client_ip(scope, {}) == "127.0.0.1"
    xff = {"headers": ["X-Forwarded-For"], "useLeftmostIP": False}
    assert client_ip(scope, {"trustedProxy": xff}) == "2.2.2.2"
    assert client_ip(scope, {"trustedProxy": {**xff, "useLeftmostIP": True}}) == "1.1.1.1"
    assert client_ip(scope, {"trustedProxy": {"headers": ["X-Real-IP"]}}) == "127.0.0.1"
    assert client_ip({"headers": []}, {}) == ""


def test_ip_listed() -> None:
    entries = ["192.0.2.1", "10.0.0.0/8", "2001:db8::/32", "not-an-ip/99"]
    assert ip_listed("192.0.2.1", entries) and ip_listed("10.9.8.7", entries)
    assert ip_listed("2001:db8::1", entries)
    assert not ip_listed("192.0.2.2", entries) and not ip_listed("", entries) and not ip_listed("x", entries)


def test_lock_times_double_up_to_the_cap() -> None:
    policy = LockoutPolicy()
    assert [policy.lock_for(n) for n in range(5, 12)] == [30, 60, 120, 240, 480, 900, 900]
    assert policy.lock_for(10_000) == 900


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def fail(lockout: Lockout, who: str) -> None:
    await lockout.begin_attempt(USERS, who)
    await lockout.record_failure(USERS, who)


async def test_lockout_sequence() -> None:
    clock = Clock()
    lockout = Lockout(MemoryStore(), LockoutPolicy(max_failures=3, first_lock=10, max_lock=40), clock=clock)
    for _ in range(2):
        await fail(lockout, "A@x.io")
    await lockout.check_locked(USERS, "a@x.io")
    await fail(lockout, " a@x.io ")
    with pytest.raises(RateLimited) as exc:
        await lockout.check_locked(USERS, "a@x.io")
    assert exc.value.retry_after == 10 and exc.value.status == 429
    clock.now += 10.5
    await lockout.check_locked(USERS, "a@x.io")
    await lockout.check_locked(USERS, "b@x.io")
    await lockout.record_success(USERS, "a@x.io")
    await fail(lockout, "a@x.io")
    await lockout.check_locked(USERS, "a@x.io")  # the success cleared the count


async def test_parallel_attempts_are_held_to_the_limit() -> None:
    clock = Clock()
    lockout = Lockout(MemoryStore(), LockoutPolicy(max_failures=3, first_lock=10, max_lock=40), clock=clock)

    async def burst(n: int) -> list[object]:
        return await asyncio.gather(*(lockout.begin_attempt(USERS, "a@x.io") for _ in range(n)),
                                    return_exceptions=True)

    results = await burst(10)
    assert sum(r is None for r in results) == 3
    assert all(isinstance(r, RateLimited) for r in results if r is not None)
    with pytest.raises(RateLimited):
        await lockout.begin_attempt(USERS, "a@x.io")
    clock.now += 41  # the lock ran out: one more attempt, not another burst
    assert sum(r is None for r in await burst(5)) == 1


async def test_disabled_lockout_does_nothing() -> None:
    for lockout in (Lockout(None), Lockout(MemoryStore(), LockoutPolicy(max_failures=0))):
        for _ in range(10):
            await lockout.record_failure(USERS, "a@x.io")
        await lockout.check_locked(USERS, "a@x.io")
        assert not lockout.enabled
