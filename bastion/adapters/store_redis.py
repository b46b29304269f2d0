"""The Redis ``Store``: counters shared by every node that uses the same Redis.

An increment is one Lua script (INCR, then PEXPIRE when the key is new), so concurrent
nodes never leave a counter without expiry or lose a count. Times are kept in
milliseconds. Redis errors become ``errors.Unavailable`` at this boundary; after a
failure the store answers ``Unavailable`` at once for ``BACKOFF`` seconds rather than
making every request wait for a connect timeout.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis import asyncio as aioredis
from redis import exceptions as redis_errors

from bastion.core.errors import Unavailable
from bastion.core.store import Count

log = logging.getLogger("bastion.store")

BACKOFF = 2.0
_INCR = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore:
    """Implements ``core.store.Store`` on Redis (redis-py's asyncio client)."""

    def __init__(self, url: str, prefix: str = "bastion:", timeout: float = 0.5):
        self.prefix = prefix
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=timeout, socket_timeout=timeout,
            health_check_interval=30,
        )
        self._incr = self._redis.register_script(_INCR)
        self._down_until = 0.0

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def _call(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._down_until:
            raise Unavailable("The key/value store is unavailable.")
        try:
            return await fn(*args, **kwargs)
        except (redis_errors.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + BACKOFF
            log.warning("redis %s failed: %s: %s", op, type(exc).__name__, exc)
            raise Unavailable("The key/value store is unavailable.") from exc

    async def incr(self, key: str, ttl: float) -> Count:
        value, ms = await self._call("incr", self._incr, keys=[self._key(key)], args=[_ms(ttl)])
        return Count(int(value), int(ms) / 1000)

    async def get(self, key: str) -> str | None:
        value = await self._call("get", self._redis.get, self._key(key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._call("set", self._redis.set, self._key(key), value, px=_ms(ttl))

    async def expire(self, key: str, ttl: float) -> None:
        await self._call("expire", self._redis.pexpire, self._key(key), _ms(ttl))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._call("delete", self._redis.delete, *(self._key(k) for k in keys))

    async def aclose(self) -> None:
        await self._redis.aclose()
