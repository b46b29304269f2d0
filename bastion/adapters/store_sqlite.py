"""A ``Store`` in a SQLite file, shared by the worker processes of one machine.

``bastion serve --workers N`` without ``--redis-url`` keeps rate-limit counters, the
sign-in lockout and email cooldowns here, so that N workers count together: a client
is not allowed N times the limit because the kernel spread its connections over N
processes. Each operation is one statement, atomic under SQLite's write lock, run on a
thread of its own so the event loop never waits on the file. The file holds nothing
that must survive a restart (``synchronous=OFF``); expired keys are swept at most once
a minute, and past ``max_keys`` the keys closest to expiry go first.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bastion.core.errors import Unavailable
from bastion.core.store import Count

T = TypeVar("T")

DEFAULT_MAX_KEYS = 100_000
SWEEP_INTERVAL = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store (
    key TEXT PRIMARY KEY,
    value ANY NOT NULL,      -- an INTEGER for a counter, TEXT for a value
    expires REAL NOT NULL    -- unix time
) WITHOUT ROWID
"""
_INCR = """
INSERT INTO store (key, value, expires) VALUES (:key, 1, :now + :ttl)
ON CONFLICT (key) DO UPDATE SET
    value = CASE WHEN expires <= :now OR typeof(value) != 'integer' THEN 1 ELSE value + 1 END,
    expires = CASE WHEN expires <= :now OR typeof(value) != 'integer' THEN :now + :ttl ELSE expires END
RETURNING value, expires
"""


def _wal(conn: sqlite3.Connection, patience: float) -> None:
    """Switch a (new) file to WAL. Two workers opening it at the same moment may both try:
    the switch fails with "database is locked" at once, without waiting (SQLite does not
    use the busy handler for it), so it is tried again until it holds (the mode stays
    with the file, so the other's switch counts too)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class SqliteStore:
    """Implements ``core.store.Store`` in the SQLite file at ``path``."""

    def __init__(self, path: Path, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.time, busy_timeout: float = 5.0):
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.path = path
        self.max_keys = max_keys
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="bastion-store")
        self._conn: sqlite3.Connection | None = None
        self._next_sweep = 0.0

    # -- on the store's thread --------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            _wal(conn, self._busy_timeout)
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def _sweep(self, conn: sqlite3.Connection, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        conn.execute("DELETE FROM store WHERE expires <= ?", (now,))
        (count,) = conn.execute("SELECT count(*) FROM store").fetchone()
        if count > self.max_keys:
            keep = self.max_keys - max(1, self.max_keys // 10)
            conn.execute("DELETE FROM store WHERE key IN (SELECT key FROM store ORDER BY expires LIMIT ?)",
                         (count - keep,))

    def _incr(self, key: str, ttl: float) -> Count:
        conn, now = self._connection(), self._clock()
        self._sweep(conn, now)
        value, expires = conn.execute(_INCR, {"key": key, "now": now, "ttl": ttl}).fetchone()
        return Count(int(value), expires - now)

    def _get(self, key: str) -> str | None:
        row = self._connection().execute(
            "SELECT value FROM store WHERE key = ? AND expires > ?", (key, self._clock())).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str, ttl: float) -> None:
        conn, now = self._connection(), self._clock()
        self._sweep(conn, now)
        conn.execute("INSERT OR REPLACE INTO store (key, value, expires) VALUES (?, ?, ?)", (key, value, now + ttl))

    def _expire(self, key: str, ttl: float) -> None:
        now = self._clock()
        self._connection().execute(
            "UPDATE store SET expires = ? WHERE key = ? AND expires > ?", (now + ttl, key, now))

    def _delete(self, keys: tuple[str, ...]) -> None:
        conn = self._connection()
        for key in keys:
            conn.execute("DELETE FROM store WHERE key = ?", (key,))

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the Store port ---------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except sqlite3.Error as exc:  # locked past the busy timeout, disk full, unreadable file
            raise Unavailable(f"The shared store is unavailable: {exc}") from exc

    async def incr(self, key: str, ttl: float) -> Count:
        return await self._run(self._incr, key, ttl)

    async def get(self, key: str) -> str | None:
        return await self._run(self._get, key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._run(self._set, key, value, ttl)

    async def expire(self, key: str, ttl: float) -> None:
        await self._run(self._expire, key, ttl)

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._run(self._delete, keys)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)
