"""Cron jobs of the app: ``@app.cron("cleanup", "*/5 * * * *")``.

Expressions are PocketBase's (``core/settings/cron.py``): five fields, all of which must
match (day of month and day of week too, as PocketBase evaluates them), in UTC, at
minute precision; or a macro (``@hourly``, ``@daily`` ...).

Every process runs the scheduler, and a job runs once per due minute across all of
them: before running, a process claims the minute by inserting ``cron:<id>:<minute>``
into ``_params``, whose key is unique; a process that finds it taken leaves the run to
the one that took it. So ``--workers N`` and many nodes on one database run each job
once. Claims older than a day are removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bastion.core.errors import Conflict
from bastion.core.ports import Database
from bastion.core.settings.cron import FIELDS, cron_problem
from bastion.tools.timeutil import format_datetime

log = logging.getLogger("bastion.cron")

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
CLAIM_PREFIX = "cron:"
CronHandler = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        problem = cron_problem(expression)
        if problem:
            raise ValueError(f"invalid cron expression {expression!r}: {problem}")
        text = MACROS.get(expression.strip(), expression)
        sets = [_values(part, lo, hi) for part, (_, lo, hi) in zip(text.split(), FIELDS, strict=True)]
        return cls(sets[0], sets[1], sets[2], sets[3], sets[4])

    def is_due(self, at: datetime) -> bool:
        return (at.minute in self.minutes and at.hour in self.hours and at.day in self.days
                and at.month in self.months and (at.weekday() + 1) % 7 in self.weekdays)


def _values(part: str, lo: int, hi: int) -> frozenset[int]:
    out: set[int] = set()
    for item in part.split(","):
        span, _, step = item.partition("/")
        start, dash, end = span.partition("-")
        first, last = (lo, hi) if span == "*" else (int(start), int(end) if dash else int(start))
        if step and span != "*" and not dash:
            last = hi  # "5/15": from 5 to the end, every 15
        out.update(range(first, last + 1, int(step) if step else 1))
    return frozenset(out)


@dataclass(frozen=True)
class CronJob:
    id: str
    expression: str
    handler: CronHandler
    schedule: Schedule

    def to_api(self) -> dict[str, str]:
        return {"id": self.id, "expression": self.expression}


def cron_job(job_id: str, expression: str, handler: CronHandler) -> CronJob:
    if not job_id or len(job_id) > 100 or not all(c.isalnum() or c in "_-." for c in job_id):
        raise ValueError(f"cron job id {job_id!r}: 1 to 100 letters, digits, _ - or .")
    return CronJob(job_id, expression, handler, Schedule.parse(expression))


class CronRunner:
    """Runs the due jobs of ``jobs()`` every minute, each once across processes."""

    def __init__(self, db: Database, params: sa.Table, jobs: Callable[[], list[CronJob]],
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.params = params
        self.jobs = jobs
        self.clock = clock
        self._running: set[asyncio.Task[None]] = set()

    async def run_forever(self) -> None:
        while True:
            now = self.clock()
            await asyncio.sleep(60 - now % 60 + 0.05)  # just past the next minute
            await self.tick(datetime.fromtimestamp(self.clock(), UTC).replace(second=0, microsecond=0))

    async def tick(self, minute: datetime) -> list[str]:
        """Start the jobs due at ``minute`` this process claims; their ids."""
        started = []
        for job in self.jobs():
            if job.schedule.is_due(minute) and await self._claim(job, minute):
                self.start(job)
                started.append(job.id)
        if minute.minute == 0:
            await self._forget_claims(minute - timedelta(days=1))
        return started

    def start(self, job: CronJob) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run(job), name=f"cron-{job.id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def _run(self, job: CronJob) -> None:
        try:
            await job.handler()
        except Exception:  # noqa: BLE001 - a job's failure is logged; the schedule goes on
            log.exception("cron job %s failed", job.id)

    async def _claim(self, job: CronJob, minute: datetime) -> bool:
        stamp = format_datetime(minute)
        try:
            async with self.db.transaction() as conn:
                await conn.execute(sa.insert(self.params).values(
                    id=f"{CLAIM_PREFIX}{job.id}:{minute:%Y%m%d%H%M}", value=None, created=stamp, updated=stamp))
        except Conflict:
            return False  # another process runs it
        except Exception as exc:  # noqa: BLE001 - the database is down: skip this minute
            log.warning("cron job %s not run at %s: %s", job.id, stamp, exc)
            return False
        return True

    async def _forget_claims(self, before: datetime) -> None:
        try:
            async with self.db.transaction() as conn:
                await conn.execute(sa.delete(self.params).where(
                    self.params.c.id.like(f"{CLAIM_PREFIX}%"), self.params.c.created < format_datetime(before)))
        except Exception as exc:  # noqa: BLE001 - tried again in an hour
            log.warning("old cron claims not removed: %s", exc)
