"""The key/counter store port: short-lived counters and values with a time to live.

Rate limits and the sign-in lockout keep their state here, so with a shared store (Redis)
every node sees the same counts. Keys are plain strings chosen by the caller; an adapter
may prefix them. Values are strings. Every key carries a time to live: nothing in a
store is kept forever.

An adapter that cannot reach its server raises ``errors.Unavailable``; the caller decides
whether to fail open (rate limits do) or to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Count:
    """A counter after an increment: its value and the seconds until it expires."""

    value: int
    expires_in: float


class Store(Protocol):
    async def incr(self, key: str, ttl: float) -> Count:
        """Add one to the counter at ``key`` and return it.

        A missing (or expired) counter starts at 1 and lives ``ttl`` seconds; later
        increments do not move its expiry, so a counter is a fixed window that opens at
        its first increment. Do not increment a key written with ``set``.
        """

    async def get(self, key: str) -> str | None:
        """The value at ``key``, or None when it is missing or expired."""

    async def set(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` at ``key`` for ``ttl`` seconds (replacing any counter)."""

    async def expire(self, key: str, ttl: float) -> None:
        """Make an existing key live ``ttl`` seconds from now; no-op when it is missing."""

    async def delete(self, *keys: str) -> None:
        """Remove keys; missing keys are ignored."""

    async def aclose(self) -> None:
        """Release connections."""
