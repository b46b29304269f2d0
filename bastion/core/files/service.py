"""The files of records: where they are stored, what a download serves, thumbs, sweeps.

Keys follow PocketBase's layout, so a storage folder moves between the two:
``{collectionId}/{recordId}/{name}`` for a file and
``{collectionId}/{recordId}/thumbs_{name}/{size}_{name}`` for its thumbs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bastion.core.access import Access, RequestInfo
from bastion.core.errors import BadRequest, BastionError, NotFound
from bastion.core.fields import FileField
from bastion.core.files.journal import FileJournal, thumbs_prefix
from bastion.core.ports import Database, FileStorage, StorageFactory, StoredFile
from bastion.core.schema import view_query
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.tools import sniff
from bastion.tools.thumbsize import IMAGE_TYPES

log = logging.getLogger("bastion.files")
DEFAULT_THUMBS = ("100x100",)  # made for every image field, as PocketBase does
MAX_THUMB_SOURCE = 64 * 1024 * 1024  # larger originals are served as they are
SMALL_FILE = 256 * 1024  # files up to this size are read with their metadata, in one call
SNIFF_BYTES = 3072
NO_STORAGE = "This server stores no files: it was started without a file storage."


@dataclass(frozen=True, slots=True)
class Served:
    """What a download answers with: the stored file and the name the client sees."""

    storage: FileStorage
    key: str
    name: str
    stored: StoredFile
    data: bytes | None  # the bytes of a small file (at most SMALL_FILE), read with its metadata


class ThumbMaker:
    """Makes each thumb once: one build per key at a time (others wait for it), at most
    ``workers`` builds at once (an original is only read once its build has a slot), each
    off the event loop. A thumb that could not be made is remembered (stored files never
    change: a new upload gets a new name), so it is not tried again on every request."""

    def __init__(self, workers: int, remembered: int = 10_000):
        self._slots = asyncio.Semaphore(workers)
        self._pending: dict[str, asyncio.Task[bool]] = {}
        self._failed: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered

    async def ensure(self, storage: FileStorage, original: str, thumb: str, spec: str) -> bool:
        """Whether the thumb at ``thumb`` exists after this call (False: not an image
        it could make one of). The build runs as a task of its own, so a client that
        goes away neither stops it nor fails the others waiting for the same thumb."""
        if thumb in self._failed:
            return False
        task = self._pending.get(thumb)
        if task is None:
            task = asyncio.create_task(self._make(storage, original, thumb, spec))
            self._pending[thumb] = task
            task.add_done_callback(lambda done: self._finished(thumb, done))
        return await asyncio.shield(task)

    def _finished(self, thumb: str, task: asyncio.Task[bool]) -> None:
        self._pending.pop(thumb, None)
        if task.cancelled():
            return
        if task.exception() is not None:
            if not isinstance(task.exception(), NotFound):
                log.warning("no thumb %s: %s", thumb, task.exception())
        elif not task.result():
            self._failed[thumb] = None
            if len(self._failed) > self._remembered:
                self._failed.popitem(last=False)

    async def _make(self, storage: FileStorage, original: str, thumb: str, spec: str) -> bool:
        async with self._slots:
            head = b"".join([chunk async for chunk in storage.read(original, 0, SNIFF_BYTES)])
            if sniff.content_type(head) not in IMAGE_TYPES:
                return False
            from bastion.tools import images  # Pillow is loaded on the first thumb, not at start
            try:
                data = await storage.read_all(original, MAX_THUMB_SOURCE)
                out, ctype = await asyncio.to_thread(images.make_thumb, data, spec)
            except ValueError as exc:  # too large, or refused (images.ImageRefused is one)
                log.warning("no thumb %s of %s: %s", spec, original, exc)
                return False
            await storage.put(thumb, io.BytesIO(out), ctype)
            return True


class SmallFiles:
    """The most recently served small files (thumbs, mostly) and what their storage said
    of them, up to ``budget`` bytes. Stored files never change (a new upload gets a new
    name), and every download checks that its record still holds the file before this is
    asked, so a kept copy is never stale; it spares a remote storage one request each."""

    def __init__(self, budget: int):
        self._budget = budget
        self._used = 0
        self._kept: OrderedDict[str, tuple[StoredFile, bytes]] = OrderedDict()

    def get(self, key: str) -> tuple[StoredFile, bytes] | None:
        hit = self._kept.get(key)
        if hit is not None:
            self._kept.move_to_end(key)
        return hit

    def keep(self, key: str, stored: StoredFile, data: bytes) -> None:
        if len(data) > self._budget // 16 or key in self._kept:
            return
        self._kept[key] = (stored, data)
        self._used += len(data)
        while self._used > self._budget:
            _, (_, old) = self._kept.popitem(last=False)
            self._used -= len(old)


class FileService:
    def __init__(
        self, db: Database, registry: Registry, access: Access, settings: Callable[[], Mapping[str, Any]],
        storage: StorageFactory | None, thumb_workers: int = min(4, os.cpu_count() or 1),
        cache_bytes: int = 32 * 1024 * 1024,
    ):
        self.db = db
        self.registry = registry
        self.access = access
        self._settings = settings
        self._factory = storage
        self.thumbs = ThumbMaker(thumb_workers)
        self.small = SmallFiles(cache_bytes)

    def storage(self) -> FileStorage:
        """The storage the settings choose now (``s3.enabled``: the bucket, else local)."""
        if self._factory is None:
            raise BadRequest(NO_STORAGE)
        return self._factory(self._settings()["s3"])

    def journal(self) -> FileJournal:
        return FileJournal(self.storage() if self._factory is not None else None)

    @staticmethod
    def key(col: Collection, record_id: str, name: str) -> str:
        return f"{col.id}/{record_id}/{name}"

    # -- writes --------------------------------------------------------------------
    async def store(self, journal: FileJournal, col: Collection, record_id: str, values: dict[str, Any]) -> None:
        """Store the uploads among ``values`` (then the values hold their names)."""
        for f in col.fields:
            if not isinstance(f, FileField) or f.name not in values:
                continue
            uploads = f.uploads_of(values[f.name])
            if not uploads:
                continue
            if journal.storage is None:
                raise BadRequest(NO_STORAGE)
            for upload in uploads:
                key = self.key(col, record_id, upload.name)
                upload.source.seek(0)
                await journal.storage.put(key, upload.source, upload.content_type)
                journal.stored.append(key)
            values[f.name] = f.convert(f.names_of(values[f.name]))

    def drop_removed(
        self, journal: FileJournal, col: Collection, record_id: str, old: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> None:
        """Remember for deletion after commit the files an update took off the record."""
        for f in col.fields:
            if isinstance(f, FileField) and f.name in values:
                kept = set(f.names_of(values[f.name]))
                for name in f.names_of(f.from_db(old.get(f.name))):
                    if name not in kept:
                        journal.drop(self.key(col, record_id, name))

    @staticmethod
    def has_files(col: Collection) -> bool:
        return any(isinstance(f, FileField) for f in col.fields)

    async def forget_collection(self, col: Collection) -> None:
        """Delete the files of a collection whose records all went (deleted or truncated;
        called once that committed)."""
        if self._factory is not None:
            journal = self.journal()
            journal.drop_folder(f"{col.id}/")
            await journal.committed()

    # -- downloads -----------------------------------------------------------------
    async def locate(
        self, caller: Callable[[], Awaitable[RequestInfo]], col_ref: str, record_id: str, filename: str,
        thumb: str,
    ) -> Served:
        """The file a download of ``filename`` serves (a thumb when asked for one that
        is allowed), checking a protected file's record against the view rule for the
        caller (read only then). Every refusal is a plain 404, as in PocketBase."""
        col = self.registry.find(col_ref)
        if col is None:  # as PocketBase's rate limiter answers, before the download runs
            raise NotFound("Missing or invalid collection context.")
        if not 0 < len(record_id) <= 255 or not 0 < len(filename) <= 255 or "\x00" in record_id + filename:
            raise NotFound()
        table = self.registry.table(col)
        async with self.db.read() as conn:
            row = await conn.fetch_one(self.registry.select_by_id(col), {"rid": record_id})
            field = _field_holding(col, row, filename) if row is not None else None
            if field is None:
                raise NotFound()
            if field.protected and not await self._may_view(conn, await caller(), col, table, record_id):
                raise NotFound()
            key = self.key(col, record_id, filename)
            if col.is_view:
                key = await self._view_file(conn, col, field, filename)
        storage = self.storage()
        if thumb and (thumb in DEFAULT_THUMBS or thumb in field.thumbs):
            kept = await self._thumb(storage, key, filename, thumb)
            if kept is not None:
                return kept
        found = await self._fetch(storage, key)
        if found is None:
            raise NotFound()
        return Served(storage, key, filename, found[0], found[1])

    async def _fetch(self, storage: FileStorage, key: str) -> tuple[StoredFile, bytes | None] | None:
        hit = self.small.get(f"{storage.name}:{key}")
        if hit is not None:
            return hit
        found = await storage.fetch(key, SMALL_FILE)
        if found is not None and found[1] is not None:
            self.small.keep(f"{storage.name}:{key}", found[0], found[1])
        return found

    async def _view_file(self, conn: Any, col: Collection, field: FileField, filename: str, depth: int = 0) -> str:
        """The key of a view's file: in the record of the collection the view's column
        reads it from (through views of views, a few deep), as PocketBase finds it."""
        by_name = {c.name.lower(): c for c in self.registry.all() if c.id != col.id}
        found = view_query.column_source(col.view_query, self.db.sql, [f.name for f in col.fields], field.name,
                                         by_name)
        if found is None or not isinstance(found[1], FileField) or depth > 4:
            raise NotFound()
        source, source_field = found[0], found[1]
        table = self.registry.table(source)
        column = table.c[source_field.name]
        match = self.db.sql.json_array_contains(column, filename) if source_field.multi else column == filename
        row = await conn.fetch_one(sa.select(table).where(match).limit(1))
        if row is None:
            raise NotFound()
        if source.is_view:
            return await self._view_file(conn, source, source_field, filename, depth + 1)
        return self.key(source, row["id"], filename)

    async def _may_view(
        self, conn: Any, info: RequestInfo, col: Collection, table: sa.Table, record_id: str,
    ) -> bool:
        try:
            cond = self.access.condition(dataclasses.replace(info, context="protectedFile"), col, "viewRule", table)
        except BastionError:
            return False
        if cond is None:
            return True
        return await conn.fetch_one(sa.select(table.c.id).where(table.c.id == record_id, cond)) is not None

    async def _thumb(self, storage: FileStorage, original: str, filename: str, spec: str) -> Served | None:
        """The thumb ``spec`` of the file at ``original``, made on first use (kept beside
        it: a view's file's thumbs are its source's); None when it cannot be made (not
        an image, or one refused), and the original is served instead."""
        name = f"{spec}_{filename}"
        key = thumbs_prefix(original) + name
        found = await self._fetch(storage, key)
        if found is None and await self.thumbs.ensure(storage, original, key, spec):
            found = await self._fetch(storage, key)
        return Served(storage, key, name, found[0], found[1]) if found is not None else None

    # -- the orphan sweep ----------------------------------------------------------
    async def sweep(self, grace: float, now: float | None = None) -> list[str]:
        """Delete stored files no record holds (and thumbs of no held file) older than
        ``grace`` seconds; return their keys. Younger ones may belong to a write still
        in flight."""
        storage = self.storage()
        cutoff = (time.time() if now is None else now) - grace
        held: dict[tuple[str, str], set[str] | None] = {}
        removed = []
        async for item in storage.list():
            if item.modified > cutoff:
                continue
            parts = item.key.split("/")
            if len(parts) not in (3, 4) or (len(parts) == 4 and not parts[2].startswith("thumbs_")):
                continue
            name = parts[2] if len(parts) == 3 else parts[2].removeprefix("thumbs_")
            names = held.get((parts[0], parts[1]), ...)
            if names is ...:
                names = held[(parts[0], parts[1])] = await self._held(parts[0], parts[1])
            if names is None or name not in names:
                await storage.delete(item.key)
                removed.append(item.key)
        return removed

    async def _held(self, col_id: str, record_id: str) -> set[str] | None:
        """The file names the record holds (None: no such record or collection)."""
        col = self.registry.find(col_id)
        if col is None or col.is_view or col.id != col_id:
            return None
        table = self.registry.table(col)
        async with self.db.read() as conn:
            row = await conn.fetch_one(sa.select(table).where(table.c.id == record_id))
        if row is None:
            return None
        return {name for f in col.fields if isinstance(f, FileField) for name in f.names_of(f.from_db(row[f.name]))}


def _field_holding(col: Collection, row: Mapping[str, Any], filename: str) -> FileField | None:
    for f in col.fields:
        if isinstance(f, FileField) and filename in f.names_of(f.from_db(row.get(f.name))):
            return f
    return None
