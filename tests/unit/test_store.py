"""Contract tests for the ``core.store.Store`` adapters (memory and SQLite always, Redis
when reachable)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from bastion.adapters.store_memory import MemoryStore
from bastion.adapters.store_redis import RedisStore
from bastion.adapters.store_sqlite import SqliteStore
from bastion.core.errors import Unavailable
from bastion.core.store import Store
from tests.services import _reachable, require_or_skip

REDIS_URL = os.environ.get("BASTION_TEST_REDIS", "redis://127.0.0.1:6379/0")


def redis_or_skip() -> None:
    if not _reachable("127.0.0.1", 6379):
        require_or_skip("Redis is not reachable on 127.0.0.1:6379")


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        lite = SqliteStore(tmp_path / "store.db")
        yield lite
        await lite.aclose()
        return
    redis_or_skip()
    prefix = f"bastion-test:{secrets.token_hex(6)}:"
    s = RedisStore(REDIS_URL, prefix=prefix)
    try:
        yield s
    finally:
        keys = [k async for k in s._redis.scan_iter(match=prefix + "*")]
        if keys:
            await s._redis.delete(*keys)
        await s.aclose()


async def test_incr_counts_in_a_fixed_window(store: Store) -> None:
    first = await store.incr("c", 5)
    assert first.value == 1 and 4.5 < first.expires_in <= 5
    await asyncio.sleep(0.05)
    second = await store.incr("c", 60)  # a later ttl does not move the expiry
    assert second.value == 2 and second.expires_in < first.expires_in
    assert (await store.incr("other", 5)).value == 1


async def test_counter_expires(store: Store) -> None:
    assert (await store.incr("c", 0.2)).value == 1
    assert (await store.incr("c", 0.2)).value == 2
    await asyncio.sleep(0.3)
    assert (await store.incr("c", 0.2)).value == 1


async def test_get_set_with_ttl(store: Store) -> None:
    assert await store.get("k") is None
    await store.set("k", "v1", 0.2)
    assert await store.get("k") == "v1"
    await store.set("k", "v2", 5)
    assert await store.get("k") == "v2"
    await store.set("short", "x", 0.2)
    await asyncio.sleep(0.3)
    assert await store.get("short") is None


async def test_expire_moves_the_expiry_of_existing_keys_only(store: Store) -> None:
    await store.incr("c", 0.2)
    await store.expire("c", 5)
    await asyncio.sleep(0.3)
    assert (await store.incr("c", 0.2)).value == 2
    await store.expire("missing", 5)
    assert await store.get("missing") is None
    await store.set("k", "v", 5)
    await store.expire("k", 0.1)
    await asyncio.sleep(0.2)
    assert await store.get("k") is None


async def test_delete(store: Store) -> None:
    await store.set("a", "1", 5)
    await store.incr("b", 5)
    await store.delete("a", "b", "missing")
    await store.delete()
    assert await store.get("a") is None
    assert (await store.incr("b", 5)).value == 1


async def test_concurrent_increments_are_atomic(store: Store) -> None:
    counts = await asyncio.gather(*(store.incr("c", 5) for _ in range(50)))
    assert sorted(c.value for c in counts) == list(range(1, 51))


# -- memory only ---------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_is_bounded_and_evicts_oldest_first() -> None:
    s = MemoryStore(max_keys=10)
    for i in range(25):
        await s.incr(f"k{i}", 60)
        assert len(s) <= 10
    assert (await s.incr("k24", 60)).value == 2  # the newest keys survive
    assert (await s.incr("k0", 60)).value == 1  # the oldest were evicted


async def test_memory_store_flood_of_short_keys_cannot_evict_a_lock() -> None:
    s = MemoryStore(max_keys=100)
    await s.set("lock:until:victim", "locked", 900)
    for i in range(1000):  # made-up identities, each a short counter
        await s.incr(f"idl:{i}", 60)
    assert await s.get("lock:until:victim") == "locked"


async def test_memory_store_sweeps_expired_keys_before_evicting() -> None:
    clock = FakeClock()
    s = MemoryStore(max_keys=10, clock=clock)
    await s.incr("keep", 600)
    for i in range(8):
        await s.set(f"old{i}", "x", 1)
    clock.now += 2
    for i in range(5):
        await s.set(f"new{i}", "x", 600)
    assert len(s) == 6  # the expired ones were swept, nothing live was evicted
    assert (await s.incr("keep", 600)).value == 2


async def test_memory_store_sweeps_periodically() -> None:
    clock = FakeClock()
    s = MemoryStore(max_keys=1000, clock=clock)
    for i in range(100):
        await s.set(f"k{i}", "x", 1)
    clock.now += 120
    await s.set("fresh", "x", 1)
    assert len(s) == 1


def test_memory_store_rejects_a_zero_capacity() -> None:
    with pytest.raises(ValueError):
        MemoryStore(max_keys=0)


# -- sqlite only ---------------------------------------------------------------------

async def test_sqlite_store_is_shared_between_processes(tmp_path) -> None:
    """Two stores on one file stand for two worker processes: they count together."""
    a, b = SqliteStore(tmp_path / "store.db"), SqliteStore(tmp_path / "store.db")
    try:
        counts = await asyncio.gather(*(s.incr("c", 60) for _ in range(20) for s in (a, b)))
        assert sorted(c.value for c in counts) == list(range(1, 41))
        await a.set("lock", "until", 60)
        assert await b.get("lock") == "until"
        await b.delete("lock")
        assert await a.get("lock") is None
    finally:
        await a.aclose()
        await b.aclose()


async def test_sqlite_store_sweeps_and_stays_bounded(tmp_path) -> None:
    clock = FakeClock()
    s = SqliteStore(tmp_path / "store.db", max_keys=10, clock=clock)
    try:
        for i in range(8):
            await s.set(f"old{i}", "x", 1)
        clock.now += 120  # the next write sweeps the expired keys
        await s.incr("keep", 600)
        for i in range(30):
            clock.now += 61  # and a sweep each time: past 10 keys, the soonest to expire go
            await s.set(f"new{i}", "x", 100_000 + i)
        assert await s.get("new29") == "x"
        assert await s.get("old0") is None
        conn = s._connection()
        assert conn.execute("SELECT count(*) FROM store").fetchone()[0] <= 11
    finally:
        await s.aclose()


async def test_sqlite_store_unreadable_file_raises_unavailable(tmp_path) -> None:
    (tmp_path / "store.db").write_bytes(b"not a database" * 100)
    s = SqliteStore(tmp_path / "store.db")
    try:
        with pytest.raises(Unavailable):
            await s.incr("c", 5)
    finally:
        await s.aclose()


# -- redis only ----------------------------------------------------------------------

async def test_redis_counter_always_has_an_expiry() -> None:
    redis_or_skip()
    prefix = f"bastion-test:{secrets.token_hex(6)}:"
    s = RedisStore(REDIS_URL, prefix=prefix)
    try:
        await s.incr("c", 5)
        assert 0 < await s._redis.pttl(prefix + "c") <= 5000
        await s._redis.persist(prefix + "c")  # a counter that lost its expiry gets one back
        assert (await s.incr("c", 5)).value == 2
        assert 0 < await s._redis.pttl(prefix + "c") <= 5000
    finally:
        await s._redis.delete(prefix + "c")
        await s.aclose()


async def test_redis_unreachable_raises_unavailable_fast() -> None:
    s = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    try:
        with pytest.raises(Unavailable):
            await s.incr("c", 5)
        started = time.monotonic()
        for call in (s.incr("c", 5), s.get("k"), s.set("k", "v", 5), s.expire("k", 5), s.delete("k")):
            with pytest.raises(Unavailable):
                await call
        assert time.monotonic() - started < 0.1  # backing off: no new connection attempts
    finally:
        await s.aclose()
