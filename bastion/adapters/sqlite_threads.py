"""SQLite connections that each live on their own thread, one thread hop per statement.

``sqlite3`` blocks, so every statement has to leave the event loop. Going through an
async driver costs several hops per statement (execute, fetch, close the cursor, and a
rollback when the connection goes back to its pool), each waking the event loop. Here a
statement runs start to finish on the connection's thread: SQLAlchemy executes it
(with its compiled-statement cache), the rows are fetched into a list, and the loop is
woken once with the result.

A :class:`Worker` owns one thread and one SQLAlchemy ``Connection``; work for it is
queued and runs in order, so giving a worker back right after queueing its rollback is
safe: whoever takes it next queues behind that rollback. :class:`WorkerPool` hands out
idle workers and bounds the wait for one.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from bastion.core.ports import Row

log = logging.getLogger("bastion.db")
T = TypeVar("T")
_STOP = object()


class Worker:
    """One thread holding one connection of ``engine``; runs submitted functions in order."""

    def __init__(self, engine: sa.Engine, name: str):
        self._engine = engine
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn: sa.Connection | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                break
            fn, loop, future = job
            try:
                if self._conn is None:
                    self._conn = self._engine.connect()
                result = fn(self._conn)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                if future is not None:
                    loop.call_soon_threadsafe(_settle, future, None, exc)
                else:
                    log.warning("background SQLite job failed: %s", exc)
                continue
            if future is not None:
                loop.call_soon_threadsafe(_settle, future, result, None)
        if self._conn is not None:
            self._conn.close()

    async def call(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn(connection)`` on the worker's thread and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, future))
        return await future

    def post(self, fn: Callable[[sa.Connection], Any]) -> None:
        """Queue ``fn(connection)`` without waiting for it (errors are logged)."""
        self._jobs.put((fn, None, None))

    def stop(self) -> None:
        self._jobs.put(_STOP)
        self._thread.join(timeout=10)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():  # the awaiting coroutine was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class WorkerPool:
    """``size`` workers on ``engine``; :meth:`acquire` waits at most ``timeout`` seconds."""

    def __init__(self, engine: sa.Engine, size: int, name: str, timeout: float):
        self.engine = engine
        self.timeout = timeout
        self._workers = [Worker(engine, f"{name}-{i}") for i in range(size)]
        self._idle: asyncio.Queue[Worker] | None = None

    def _queue(self) -> asyncio.Queue[Worker]:
        # Created on first use, inside the event loop that will use it.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
        return self._idle

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Worker]:
        idle = self._queue()
        try:
            worker = await asyncio.wait_for(idle.get(), self.timeout)
        except TimeoutError:
            raise sa_exc.TimeoutError(
                f"no SQLite connection became free within {self.timeout:g} s") from None
        try:
            yield worker
        finally:
            idle.put_nowait(worker)

    async def close(self) -> None:
        def stop_all() -> None:
            for worker in self._workers:
                worker.stop()

        await asyncio.to_thread(stop_all)
        self.engine.dispose()


class WorkerConnection:
    """``core.ports.Connection`` over a :class:`Worker`: one thread hop per statement."""

    def __init__(self, worker: Worker, translate: Callable[[Exception], Exception]):
        self._worker = worker
        self._translate = translate

    async def _call(self, fn: Callable[[sa.Connection], T]) -> T:
        try:
            return await self._worker.call(fn)
        except sa_exc.DBAPIError as exc:
            raise self._translate(exc) from exc

    async def execute(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> int:
        return await self._call(lambda c: max(c.execute(statement, params).rowcount or 0, 0))

    async def fetch_all(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Sequence[Row]:
        rows = await self._call(lambda c: c.execute(statement, params).mappings().all())
        return cast(Sequence[Row], rows)

    async def fetch_one(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Row | None:
        row = await self._call(lambda c: c.execute(statement, params).mappings().first())
        return cast(Row | None, row)

    async def scalar(self, statement: sa.Executable) -> Any:
        return await self._call(lambda c: c.execute(statement).scalar())

    async def ddl(self, statement: sa.Executable | str) -> None:
        def run(c: sa.Connection) -> None:
            if isinstance(statement, str):
                c.exec_driver_sql(statement)
            else:
                c.execute(statement)

        await self._call(run)

    async def column_names(self, table: str) -> list[str]:
        return await self._call(lambda c: [col["name"] for col in sa.inspect(c).get_columns(table)])


class AutocommitConnection(WorkerConnection):
    """A :class:`WorkerConnection` on which every statement is its own transaction,
    committed (or rolled back) in the same thread hop that ran it."""

    async def _call(self, fn: Callable[[sa.Connection], T]) -> T:
        def run(conn: sa.Connection) -> T:
            try:
                result = fn(conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            return result

        return await super()._call(run)


def rollback(conn: sa.Connection) -> None:
    conn.rollback()


def commit(conn: sa.Connection) -> None:
    conn.commit()
