"""The in-process ``Store``: a bounded dict of counters and values with expiry times.

State is per process, so with several workers or nodes each one counts on its own (use
``store_redis`` to share). Memory is bounded: expired keys are swept when the store is
full (and at most once a minute otherwise), and when it is still full the keys closest
to expiry are evicted (as ``store_sqlite`` does), a tenth of the capacity at a time so the
sweep cost stays amortised.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

from bastion.core.store import Count

DEFAULT_MAX_KEYS = 100_000
SWEEP_INTERVAL = 60.0


@dataclass(slots=True)
class _Entry:
    value: int | str
    expires_at: float


class MemoryStore:
    """Implements ``core.store.Store`` in memory. All operations are atomic on one event loop."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic):
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._clock = clock
        # insertion order is creation order, which breaks eviction ties
        self._data: dict[str, _Entry] = {}
        self._next_sweep = clock() + SWEEP_INTERVAL

    def __len__(self) -> int:
        return len(self._data)

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._data[key]
            return None
        return entry

    def _make_room(self, now: float) -> None:
        if len(self._data) < self.max_keys and now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        for key in [k for k, entry in self._data.items() if entry.expires_at <= now]:
            del self._data[key]
        if len(self._data) >= self.max_keys:
            # The keys closest to expiry go first (ties: the oldest): they would be gone
            # soonest anyway, and a flood of short counters (made-up identities) cannot
            # push out a lock that still has minutes to run.
            target = self.max_keys - max(1, self.max_keys // 10)
            soonest = heapq.nsmallest(len(self._data) - target, self._data.items(), key=lambda kv: kv[1].expires_at)
            for key, _ in soonest:
                del self._data[key]

    def _put(self, key: str, value: int | str, ttl: float, now: float) -> None:
        self._data.pop(key, None)  # a re-created key moves to the end (newest)
        self._make_room(now)
        self._data[key] = _Entry(value, now + ttl)

    async def incr(self, key: str, ttl: float) -> Count:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None or not isinstance(entry.value, int):
            self._put(key, 1, ttl, now)
            return Count(1, ttl)
        entry.value += 1
        return Count(entry.value, entry.expires_at - now)

    async def get(self, key: str) -> str | None:
        entry = self._live(key, self._clock())
        return None if entry is None else str(entry.value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._put(key, value, ttl, self._clock())

    async def expire(self, key: str, ttl: float) -> None:
        now = self._clock()
        entry = self._live(key, now)
        if entry is not None:
            entry.expires_at = now + ttl

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def aclose(self) -> None:
        self._data.clear()
