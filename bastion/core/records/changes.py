"""The one place where a committed write becomes events.

Every write of the records service runs with a ``WriteJournal``: the files it stored or
dropped (``core/files/journal.py``) and the records it created, updated or deleted, in
order. When its transaction commits, the journal deletes the dropped files and hands the
changes to every listener (realtime, hooks, the outbox build on this); when it fails,
the new files go and the changes are forgotten: a rolled back write sends nothing. A
batch shares one journal across all its requests, so its changes arrive together, in
the order they were made, once the whole batch committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from bastion.core.files.journal import FileJournal
from bastion.core.ports import Connection
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection

log = logging.getLogger("bastion.records")

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One committed change: the record as stored after a create or an update, and as it
    was before a delete; an update also carries the record as it was before it
    (``previous``, None where the writer did not read it)."""

    action: Action
    collection: Collection
    record: Record
    previous: Record | None = None


# Called with the changes of one committed transaction, in the order they were made.
ChangeListener = Callable[[Sequence[RecordChange]], Awaitable[None]]
# Called inside the transaction, just before it commits, with its changes so far: what a
# sealer writes on the connection commits or rolls back with them (an outbox of events).
Sealer = Callable[[Connection, Sequence[RecordChange]], Awaitable[None]]


class WriteJournal:
    """What one transaction did to files and records, settled once it ends."""

    def __init__(self, files: FileJournal | None, listeners: Sequence[ChangeListener],
                 sealers: Sequence[Sealer] = ()):
        self.files = files
        self._listeners = listeners
        self._sealers = sealers
        self.changes: list[RecordChange] = []
        self._sealed = 0  # how many of the changes the sealers were given

    @property
    def wants_changes(self) -> bool:
        """Whether anyone listens (a delete reads its record first only then)."""
        return bool(self._listeners or self._sealers)

    def record(self, action: Action, col: Collection, record: Record, previous: Record | None = None) -> None:
        if self._listeners or self._sealers:
            self.changes.append(RecordChange(action, col, record, previous))

    async def seal(self, conn: Connection) -> None:
        """The transaction on ``conn`` is about to commit: hand the changes made since the
        last seal to the sealers, on it. Called by whoever owns the transaction, as the
        last statement inside it; a sealer's error rolls everything back."""
        fresh = self.changes[self._sealed:]
        self._sealed = len(self.changes)
        if fresh:
            for sealer in self._sealers:
                await sealer(conn, fresh)

    def amend(self, col: Collection, record: Record) -> None:
        """The record changed again in the same transaction (a raw write after a create):
        its latest change carries ``record`` instead."""
        for i in range(len(self.changes) - 1, -1, -1):
            change = self.changes[i]
            if change.collection.id == col.id and change.record.id == record.id:
                self.changes[i] = RecordChange(change.action, col, record, change.previous)
                return

    async def committed(self) -> None:
        """The transaction committed: drop its dropped files, then tell the listeners. A
        listener that fails is logged; the write stands."""
        if self.files is not None:
            await self.files.committed()
        changes, self.changes, self._sealed = self.changes, [], 0
        if not changes or not self._listeners:
            return
        for listener in self._listeners:
            try:
                await listener(changes)
            except Exception:  # noqa: BLE001 - one listener's bug must not undo a committed write
                log.exception("a change listener failed on %d committed changes", len(changes))

    async def failed(self) -> None:
        """The transaction rolled back: its new files go, its changes never happened."""
        self.changes.clear()
        self._sealed = 0
        if self.files is not None:
            await self.files.failed()
