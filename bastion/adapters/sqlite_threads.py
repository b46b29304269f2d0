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

A statement never outlives its use: it is interrupted (``sqlite3_interrupt``, which is
safe from any thread) when it passes the pool's time limit, when the coroutine waiting
for it is cancelled (the client disconnected, the server is stopping), and when the
pool closes. SQLite then fails it with "interrupted" and rolls back a write it was
part of; the worker is free for the next job at once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from bastion.core import errors
from bastion.core.ports import Row

log = logging.getLogger("bastion.db")
T = TypeVar("T")
_STOP = object()
STOP_WAIT_S = 5.0  # closing waits this long at most for the threads to end


class _Job:
    """One function queued for a worker. A *statement* job is bounded: it is interrupted
    when it outlasts the pool's time limit or its caller stops waiting for it."""

    __slots__ = ("fn", "loop", "future", "statement", "started", "dropped", "closing")

    def __init__(self, fn: Callable[[sa.Connection], Any], loop: asyncio.AbstractEventLoop | None,
                 future: asyncio.Future[Any] | None, statement: bool):
        self.fn = fn
        self.loop = loop
        self.future = future
        self.statement = statement
        self.started = 0.0
        self.dropped = False  # nobody waits for it any more: not started, or interrupted
        self.closing = False  # interrupted because the database is closing


class Worker:
    """One thread holding one connection of ``engine``; runs submitted functions in order."""

    def __init__(self, engine: sa.Engine, name: str):
        self._engine = engine
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn: sa.Connection | None = None
        self._raw: Any = None  # the sqlite3 connection under _conn, for interrupt()
        # Guards _running and _stopping, so that an interrupt meant for one statement can
        # never reach the next one: sqlite3_interrupt() stops whatever runs right now.
        self._lock = threading.Lock()
        self._running: _Job | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not _STOP:
            if not self._start(job):
                continue
            try:
                if self._conn is None:
                    self._conn = self._engine.connect()
                    self._raw = self._conn.connection.dbapi_connection
                result, error = job.fn(self._conn), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                result, error = None, exc
            finally:
                with self._lock:
                    self._running = None
            if job.future is not None and job.loop is not None:
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            elif error is not None:
                log.warning("background SQLite job failed: %s", error)
        if self._conn is not None:
            self._conn.close()

    def _start(self, job: _Job) -> bool:
        with self._lock:
            if job.statement and (job.dropped or self._stopping):
                if job.future is not None and job.loop is not None and not job.dropped:
                    job.loop.call_soon_threadsafe(_settle, job.future, None, _closing())
                return False
            job.started = time.monotonic()
            self._running = job
            return True

    async def call(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn(connection)`` on the worker's thread and wait for its result. It runs
        to its end even when the caller stops waiting (a commit, a rollback)."""
        return await self._submit(fn, statement=False)

    async def statement(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run one statement ``fn(connection)``: it is interrupted when it outlasts the
        pool's time limit (see :meth:`WorkerPool.sweep`) and when the awaiting coroutine
        is cancelled (the client went away, the server stops), so no statement keeps a
        connection busy for nobody."""
        return await self._submit(fn, statement=True)

    async def _submit(self, fn: Callable[[sa.Connection], T], statement: bool) -> T:
        if self._stopping:
            raise _closing()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(fn, loop, future, statement)
        self._jobs.put(job)
        try:
            return await future
        except asyncio.CancelledError:
            if statement:
                self._abandon(job)
            raise
        except sa_exc.DBAPIError as exc:
            if job.closing:
                raise _closing() from exc
            raise

    def post(self, fn: Callable[[sa.Connection], Any]) -> None:
        """Queue ``fn(connection)`` without waiting for it (errors are logged)."""
        self._jobs.put(_Job(fn, None, None, statement=False))

    def interrupt_overdue(self, started_before: float) -> None:
        """Interrupt the running statement if it started before ``started_before``."""
        with self._lock:
            running = self._running
            if running is not None and running.statement and running.started < started_before:
                self._interrupt_running()

    def _abandon(self, job: _Job) -> None:
        with self._lock:
            job.dropped = True
            if self._running is job:
                self._interrupt_running()

    def _interrupt_running(self) -> None:
        if self._raw is not None:  # None only while the thread opens its connection
            self._raw.interrupt()

    def stop(self) -> None:
        """Start no more statements, interrupt the running one, and let the thread end
        once the jobs queued so far (rollbacks, commits) have run."""
        with self._lock:
            self._stopping = True
            running = self._running
            if running is not None and running.statement:
                running.closing = True
                self._interrupt_running()
        self._jobs.put(_STOP)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _closing() -> errors.Unavailable:
    return errors.Unavailable("The database is closing.")


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():  # the awaiting coroutine was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class WorkerPool:
    """``size`` workers on ``engine``; :meth:`acquire` waits at most ``timeout`` seconds.

    ``statement_limit`` seconds (None or 0: no limit) bound every statement: a sweep on
    the event loop interrupts the ones running longer, every tenth of the limit (at least
    10 ms apart, at most 1 s), so a statement stops within 10 % (at most 1 s) past it.
    A sweep costs nothing per statement, where a timer per statement would cost ~2 us.
    """

    def __init__(self, engine: sa.Engine, size: int, name: str, timeout: float,
                 statement_limit: float | None = None):
        self.engine = engine
        self.timeout = timeout
        self.statement_limit = statement_limit if statement_limit and statement_limit > 0 else None
        self._workers = [Worker(engine, f"{name}-{i}") for i in range(size)]
        self._idle: asyncio.Queue[Worker] | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def _queue(self) -> asyncio.Queue[Worker]:
        # Created on first use, inside the event loop that will use it.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
            self.sweep()
        return self._idle

    def sweep(self) -> None:
        """Interrupt every statement past the time limit, and come back in a while."""
        if self.statement_limit is None:
            return
        cutoff = time.monotonic() - self.statement_limit
        for worker in self._workers:
            worker.interrupt_overdue(cutoff)
        period = min(1.0, max(0.01, self.statement_limit / 10))
        self._sweeper = asyncio.get_running_loop().call_later(period, self.sweep)

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
        """Interrupt every running statement, then wait (at most ``STOP_WAIT_S``) for the
        threads to end, so closing never waits for a long query."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for worker in self._workers:
            worker.stop()

        def join_all() -> None:
            deadline = time.monotonic() + STOP_WAIT_S
            for worker in self._workers:
                worker.join(max(0.0, deadline - time.monotonic()))

        await asyncio.to_thread(join_all)
        self.engine.dispose()


class WorkerConnection:
    """``core.ports.Connection`` over a :class:`Worker`: one thread hop per statement."""

    def __init__(self, worker: Worker, translate: Callable[[Exception], Exception]):
        self._worker = worker
        self._translate = translate

    async def _call(self, fn: Callable[[sa.Connection], T]) -> T:
        try:
            return await self._worker.statement(fn)
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
