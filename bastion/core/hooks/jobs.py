"""Background jobs: work queued from a hook or a route and run by a worker later, with
retries, backoff and a timeout; their state is in the database (``_jobs``), so a job
survives a restart and every process of the app can run it.

``@app.job("welcome", retries=3, timeout=30)`` declares a handler (``async def
welcome(job)``, ``job.payload`` the JSON it was queued with); ``await
app.jobs.enqueue("welcome", {...})`` queues one, on a connection of the caller's when
given (a hook's ``e.conn``: the job is queued only if the write commits).

Every process runs a worker that polls for due jobs and claims each with a conditional
update (``queued`` → ``running``), so one process runs it. A job that fails is queued
again after ``backoff ** attempt`` seconds (with jitter) until its attempts run out,
then marked ``failed`` with its last error; one that outlives its timeout is cancelled
and counts as failed. A process that dies while running one leaves it ``running`` until
its lease expires; then any worker queues it again. Done jobs are kept a week.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from bastion.core.ports import Connection, Database
from bastion.tools.ids import random_string
from bastion.tools.timeutil import format_datetime

log = logging.getLogger("bastion.jobs")

POLL_EVERY = 0.5
CONCURRENCY = 4
KEEP_DONE = timedelta(days=7)
LEASE_MARGIN = 30.0  # seconds past its timeout before a running job is taken back
MAX_PAYLOAD = 1024 * 1024
STATES = ("queued", "running", "done", "failed")


@dataclass
class Job:
    """One job as its handler sees it."""

    id: str
    name: str
    payload: Any
    attempt: int  # 1 on the first run


JobHandler = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: JobHandler
    retries: int = 3  # runs after the first before it counts as failed
    timeout: float = 60.0
    backoff: float = 2.0


def job_kind(name: str, handler: JobHandler, retries: int, timeout: float, backoff: float) -> JobKind:
    if not name or len(name) > 100:
        raise ValueError(f"job name {name!r}: 1 to 100 characters")
    if not 0 <= retries <= 100 or not 0 < timeout <= 86_400 or not 1.0 <= backoff <= 60:
        raise ValueError(f"job {name!r}: retries 0-100, timeout up to a day, backoff 1-60")
    return JobKind(name, handler, retries, timeout, backoff)


def _at(seconds_from_now: float, clock: Callable[[], float]) -> str:
    return format_datetime(datetime.fromtimestamp(clock() + seconds_from_now, UTC))


class Jobs:
    """Queues jobs and runs them (``run_forever``) for the kinds ``kinds()`` declares."""

    def __init__(self, db: Database, table: sa.Table, kinds: Callable[[], dict[str, JobKind]],
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.table = table
        self.kinds = kinds
        self.clock = clock
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    async def enqueue(self, name: str, payload: Any = None, delay: float = 0.0,
                      conn: Connection | None = None) -> str:
        """Queue a job of kind ``name``; its id. With ``conn`` it is queued in that transaction."""
        kind = self.kinds().get(name)
        if kind is None:
            raise ValueError(f"no job kind {name!r} is declared (@app.job)")
        data = orjson.dumps(payload).decode()
        if len(data) > MAX_PAYLOAD:
            raise ValueError(f"a job's payload is at most {MAX_PAYLOAD} bytes of JSON")
        job_id, now = random_string(15), _at(0, self.clock)
        row = {"id": job_id, "name": name, "payload": data, "state": "queued", "attempts": 0,
               "maxAttempts": kind.retries + 1, "runAt": _at(max(0.0, delay), self.clock), "lockedUntil": None,
               "lastError": None, "created": now, "updated": now}
        if conn is not None:
            await conn.execute(sa.insert(self.table).values(row))
        else:
            async with self.db.transaction() as own:
                await own.execute(sa.insert(self.table).values(row))
        self._wake.set()
        return job_id

    async def get(self, job_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one(sa.select(self.table).where(self.table.c.id == job_id))
        return _api(row) if row is not None else None

    async def list(self, state: str = "", limit: int = 200) -> list[dict[str, Any]]:
        stmt = sa.select(self.table).order_by(self.table.c.created.desc(), self.table.c.id).limit(limit)
        if state:
            stmt = stmt.where(self.table.c.state == state)
        async with self.db.read() as conn:
            return [_api(r) for r in await conn.fetch_all(stmt)]

    # -- the worker -------------------------------------------------------------------
    async def run_forever(self, concurrency: int = CONCURRENCY) -> None:
        last_sweep = 0.0
        while True:
            try:
                if self.clock() - last_sweep > 60:
                    await self._sweep()
                    last_sweep = self.clock()
                while len(self._running) < concurrency and await self.run_one():
                    pass
            except Exception as exc:  # noqa: BLE001 - the database is down: wait and poll again
                log.warning("jobs: could not poll for due jobs (%s)", exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_EVERY)

    async def run_one(self) -> bool:
        """Claim one due job this process can run and start it; whether one was."""
        t, now = self.table, _at(0, self.clock)
        kinds = self.kinds()
        if not kinds:
            return False
        async with self.db.read() as conn:
            due = await conn.fetch_all(sa.select(t.c.id, t.c.name).where(
                t.c.state == "queued", t.c.runAt <= now, t.c.name.in_(list(kinds))).order_by(t.c.runAt).limit(5))
        for row in due:
            kind = kinds[row["name"]]
            async with self.db.transaction() as conn:
                claimed = await conn.execute(sa.update(t).where(t.c.id == row["id"], t.c.state == "queued").values(
                    state="running", attempts=t.c.attempts + 1, updated=now,
                    lockedUntil=_at(kind.timeout + LEASE_MARGIN, self.clock)))
            if claimed == 1:
                task = asyncio.create_task(self._run(kind, row["id"]), name=f"job-{kind.name}")
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                return True
        return False

    async def _run(self, kind: JobKind, job_id: str) -> None:
        t = self.table
        async with self.db.read() as conn:
            row = await conn.fetch_one(sa.select(t).where(t.c.id == job_id))
        if row is None:
            return
        job = Job(job_id, kind.name, orjson.loads(row["payload"]), int(row["attempts"]))
        try:
            await asyncio.wait_for(kind.handler(job), kind.timeout)
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded and retried
            timed_out = isinstance(exc, TimeoutError)
            error = f"timed out after {kind.timeout:g} s" if timed_out else f"{type(exc).__name__}: {exc}"
            await self._failed(row, error, kind)
            return
        async with self.db.transaction() as conn:
            await conn.execute(sa.update(t).where(t.c.id == job_id).values(
                state="done", lockedUntil=None, lastError=None, updated=_at(0, self.clock)))

    async def _failed(self, row: Any, error: str, kind: JobKind) -> None:
        attempts, t = int(row["attempts"]), self.table
        last = attempts >= int(row["maxAttempts"])
        wait = kind.backoff ** attempts * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
        log.warning("job %s (%s) attempt %d failed: %s%s", row["id"], kind.name, attempts, error,
                    "; giving up" if last else f"; again in {wait:.1f} s")
        async with self.db.transaction() as conn:
            await conn.execute(sa.update(t).where(t.c.id == row["id"]).values(
                state="failed" if last else "queued", lastError=error[:2000], lockedUntil=None,
                runAt=row["runAt"] if last else _at(wait, self.clock), updated=_at(0, self.clock)))

    async def _sweep(self) -> None:
        """Queue again the running jobs whose lease expired; forget old done ones."""
        t, now = self.table, _at(0, self.clock)
        async with self.db.transaction() as conn:
            await conn.execute(sa.update(t).where(t.c.state == "running", t.c.lockedUntil < now).values(
                state="queued", lockedUntil=None, updated=now))
            old = format_datetime(datetime.fromtimestamp(self.clock(), UTC) - KEEP_DONE)
            await conn.execute(sa.delete(t).where(t.c.state == "done", t.c.updated < old))

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


def _api(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "payload": orjson.loads(row["payload"]), "state": row["state"],
            "attempts": row["attempts"], "maxAttempts": row["maxAttempts"], "runAt": row["runAt"],
            "lastError": row["lastError"] or "", "created": row["created"], "updated": row["updated"]}
