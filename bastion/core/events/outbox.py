"""The transactional outbox: one ``_outbox`` row per record change, written inside the
change's own transaction (a ``Sealer`` of ``core/records/changes.py``), so an event
exists exactly when its change committed.

Rows are numbered by the database (``seq``, autoincrement) in the order they were
written: two changes of one record are written in the order they committed (the second
waits for the first's row lock, or for SQLite's one writer), so publishing in ``seq``
order keeps each record's events in order. A row is ``published`` (a timestamp) once a
broker acknowledged it, and deleted after the retention.

The relays of every process and node take turns through a lease, one row of
``_params`` (``LEASE_KEY``) holding who has it and until when, read and written in one
transaction with the row locked (PostgreSQL, MariaDB; SQLite has one writer).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa

from bastion.core.errors import BastionError
from bastion.core.events.envelope import Shape, envelope
from bastion.core.ports import Connection, Database
from bastion.core.records.changes import RecordChange
from bastion.core.schema.tables import system_tables
from bastion.core.settings.params import get_param, put_param
from bastion.tools.timeutil import format_datetime

LEASE_KEY = "outboxRelayLease"


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An outbox row not yet published."""

    seq: int
    event_id: str
    collection: str
    record_id: str
    envelope: str


class Outbox:
    """Writes, reads and settles the ``_outbox`` table of ``db``."""

    def __init__(self, db: Database, shape: Shape):
        self.db = db
        self._shape = shape
        tables = system_tables(db.sql)
        self.table = tables["_outbox"]
        self._params = tables["_params"]

    async def seal(self, conn: Connection, changes: Sequence[RecordChange]) -> None:
        """The ``Sealer``: one row per change, in change order, on the transaction's ``conn``."""
        now = datetime.now(UTC)
        created = format_datetime(now)
        rows = []
        for change in changes:
            event_id = str(uuid.uuid4())
            rows.append({
                "eventId": event_id, "collectionId": change.collection.id, "collectionName": change.collection.name,
                "recordId": change.record.id, "action": change.action, "created": created, "published": None,
                "envelope": orjson.dumps(envelope(change, event_id, self._shape, now)).decode(),
            })
        if rows:  # one statement: the engines number a multi-row VALUES in its order
            await conn.execute(sa.insert(self.table).values(rows))

    async def pending(self, limit: int) -> list[PendingEvent]:
        """The oldest ``limit`` unpublished events, in sequence order."""
        t = self.table
        query = (sa.select(t.c.seq, t.c.eventId, t.c.collectionName, t.c.recordId, t.c.envelope)
                 .where(t.c.published.is_(None)).order_by(t.c.seq).limit(limit))
        async with self.db.read() as conn:
            rows = await conn.fetch_all(query)
        return [PendingEvent(int(r["seq"]), r["eventId"], r["collectionName"], r["recordId"], r["envelope"])
                for r in rows]

    async def mark_published(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        t = self.table
        async with self.db.transaction() as conn:
            await conn.execute(sa.update(t).where(t.c.seq.in_(list(seqs))).values(
                published=format_datetime(datetime.now(UTC))))

    async def prune(self, retention: timedelta) -> int:
        """Delete events published longer than ``retention`` ago; how many went."""
        t = self.table
        before = format_datetime(datetime.now(UTC) - retention)
        async with self.db.transaction() as conn:
            return await conn.execute(sa.delete(t).where(t.c.published.is_not(None), t.c.published < before))

    async def count(self, published: bool | None = None) -> int:
        """How many events the table holds (only the published or unpublished ones when asked)."""
        t = self.table
        query = sa.select(sa.func.count()).select_from(t)
        if published is not None:
            query = query.where(t.c.published.is_not(None) if published else t.c.published.is_(None))
        async with self.db.read() as conn:
            return int(await conn.scalar(query) or 0)

    async def take_lease(self, holder: str, seconds: float) -> bool:
        """Hold the relay lease for ``seconds`` from now if it is free, expired or
        ``holder``'s already; whether ``holder`` has it."""
        now = datetime.now(UTC).timestamp()
        try:
            async with self.db.transaction() as conn:
                stored = await get_param(conn, self._params, LEASE_KEY, for_update=True)
                lease = orjson.loads(stored) if stored else {}
                if lease and lease.get("holder") != holder and float(lease.get("until", 0)) > now:
                    return False
                await put_param(conn, self._params, LEASE_KEY,
                                orjson.dumps({"holder": holder, "until": now + seconds}).decode())
        except BastionError:  # two relays inserted the first lease at once: the other one won
            return False
        return True

    async def drop_lease(self, holder: str) -> None:
        """Let go of the lease if ``holder`` has it (on stop: another relay takes over at once)."""
        async with self.db.transaction() as conn:
            stored = await get_param(conn, self._params, LEASE_KEY, for_update=True)
            if stored and orjson.loads(stored).get("holder") == holder:
                await put_param(conn, self._params, LEASE_KEY, orjson.dumps({"holder": "", "until": 0}).decode())
