"""The relay: publishes the outbox's events to the broker, at least once, in order.

One relay runs in each serving process; the one holding the lease (``Outbox.take_lease``)
publishes, the others wait for it to expire. A batch goes out in sequence order and
stops at the first event the broker does not acknowledge: the rest wait, with backoff,
for the broker to come back, so a record's events never overtake one another and an
outage delays delivery and loses nothing. An event published but not yet marked (the
process died in between) is published again: consumers dedupe by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bastion.core.errors import BastionError
from bastion.core.events.envelope import with_sequence
from bastion.core.events.outbox import Outbox
from bastion.core.ports import EventPublisher, OutboundEvent, PublishFailed
from bastion.core.records.changes import RecordChange

log = logging.getLogger("bastion.events")
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RelayPolicy:
    """How the relay paces itself."""

    batch: int = 200  # events read and published per round
    poll: float = 0.5  # seconds between looks at the outbox when nothing woke the relay
    lease: float = 15.0  # seconds a relay holds the lease for without renewing it
    backoff_max: float = 10.0  # the longest wait after failures (doubling from 0.1 s, with jitter)
    retention: timedelta = timedelta(days=1)  # published events are deleted after this
    prune_every: float = 60.0


class Relay:
    """Moves events from ``outbox`` to ``publisher`` in the background (``start``/``close``)."""

    def __init__(self, outbox: Outbox, publisher: EventPublisher, policy: RelayPolicy | None = None):
        self.outbox = outbox
        self.publisher = publisher
        self.policy = policy or RelayPolicy()
        self.holder = uuid.uuid4().hex  # this relay, in the lease
        self.published = 0  # events this relay published (for tests and figures)
        self.failures = 0  # rounds that failed since the last one that worked
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._leased_at = 0.0
        self._failing = False
        self._pruned_at = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox relay")

    async def committed(self, changes: Sequence[RecordChange]) -> None:
        """A ``ChangeListener``: this process committed events; publish them now rather
        than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop publishing and let go of the lease (another relay takes over at once)."""
        if self._task is not None:
            # Stopped between two events rather than cancelled inside a transaction
            # (whose cleanup would wait for the database); cancelled only if it hangs.
            self._stopping = True
            self._wake.set()
            done, _ = await asyncio.wait([self._task], timeout=STOP_TIMEOUT_S)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            with contextlib.suppress(BastionError):  # the database is gone: the lease expires by itself
                await self.outbox.drop_lease(self.holder)
        await self.publisher.close()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                done, full = await self.round()
                self._recovered()
            except (PublishFailed, BastionError) as exc:
                self._failed(exc)
                backoff = min(self.policy.backoff_max, 0.1 * 2 ** min(self.failures, 10))
                await self._sleep(backoff * random.uniform(0.5, 1))
                continue
            except Exception:  # noqa: BLE001 - a bug: keep the relay alive, slowly
                log.exception("the outbox relay failed")
                await self._sleep(self.policy.backoff_max)
                continue
            if not full:
                await self._sleep(self.policy.poll if done >= 0 else self.policy.lease / 3)

    async def round(self) -> tuple[int, bool]:
        """One round: take or renew the lease, publish a batch, prune now and then.
        How many events went out (-1: another relay holds the lease), and whether the
        batch was full (more may wait)."""
        if not await self._renew():
            return -1, False
        pending = await self.outbox.pending(self.policy.batch)
        done: list[int] = []
        try:
            for event in pending:
                if self._stopping:
                    break
                if time.monotonic() - self._leased_at > self.policy.lease / 2 and not await self._renew():
                    break  # the lease went to another relay (this one stalled): it goes on from here
                await self.publisher.publish(OutboundEvent(
                    event.event_id, event.seq, event.collection, event.record_id,
                    with_sequence(event.envelope, event.seq)))
                done.append(event.seq)
        finally:
            await self.outbox.mark_published(done)
            self.published += len(done)
        await self._prune()
        return len(done), len(done) == self.policy.batch

    async def _renew(self) -> bool:
        if await self.outbox.take_lease(self.holder, self.policy.lease):
            self._leased_at = time.monotonic()
            return True
        return False

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned_at >= self.policy.prune_every:
            self._pruned_at = time.monotonic()
            gone = await self.outbox.prune(self.policy.retention)
            if gone:
                log.debug("pruned %d published events", gone)

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if not self._failing:
            log.warning("publishing outbox events failed (%s); retrying with backoff", exc)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("publishing outbox events works again")
        self._failing = False
        self.failures = 0
