"""What a write did to stored files, settled once its transaction ends.

New uploads are stored before the database write (so a rule or a failure after them
can still refuse the record); the journal remembers them, and deletes them again when
the transaction fails. Files a write dropped (a removed name, a deleted record, a
deleted collection) are only deleted after the transaction commits, so a rolled back
write never loses a file. A deletion that fails is logged; the orphan sweep finds
what is left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bastion.core.errors import BastionError
from bastion.core.ports import FileStorage

log = logging.getLogger("bastion.files")


def thumbs_prefix(key: str) -> str:
    """Where the thumbs of the file at ``key`` are kept: ``folder/thumbs_{name}/``."""
    folder, _, name = key.rpartition("/")
    return f"{folder}/thumbs_{name}/"


class FileJournal:
    """The file changes of one transaction (a single write or a whole batch)."""

    def __init__(self, storage: FileStorage | None):
        self.storage = storage
        self.stored: list[str] = []
        self.dropped: list[str] = []  # keys
        self.dropped_folders: list[str] = []  # prefixes ending in "/"

    def drop(self, key: str) -> None:
        self.dropped.append(key)

    def drop_folder(self, prefix: str) -> None:
        self.dropped_folders.append(prefix)

    async def committed(self) -> None:
        """The transaction committed: delete what it dropped (and the thumbs of it)."""
        if self.storage is None:
            return
        for key in self.dropped:
            await self._quietly(self.storage.delete, key)
            await self._quietly(self.storage.delete_prefix, thumbs_prefix(key))
        for prefix in self.dropped_folders:
            await self._quietly(self.storage.delete_prefix, prefix)
        self.stored.clear()

    async def failed(self) -> None:
        """The transaction rolled back: delete what it stored."""
        if self.storage is None:
            return
        for key in self.stored:
            await self._quietly(self.storage.delete, key)
        self.stored.clear()

    async def _quietly(self, action: Callable[[str], Awaitable[None]], key: str) -> None:
        try:
            await action(key)
        except (BastionError, OSError, ValueError) as exc:
            log.warning("could not delete %s from the file storage (the orphan sweep will): %s", key, exc)
