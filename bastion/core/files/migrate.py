"""Moving every stored file from one storage to another (local folder <-> S3 bucket).

Each file is copied, read back from the target and compared (size and SHA-256) before
it is deleted from the source, so a file is never lost: a run that stops half way is
run again, and a file already at the target with the same bytes is not copied twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from bastion.core.errors import NotFound
from bastion.core.ports import FileStorage

SPOOL = 1024 * 1024  # a file larger than this is staged on disk while it is copied

# Told of each file as it is done: its key, and "copied", "present" or "failed".
Progress = Callable[[str, str], None]


@dataclass
class MigrationReport:
    """What a migration did: files copied, files the target held already (both deleted
    from the source), and files kept in the source because their copy failed."""

    copied: int = 0
    present: int = 0
    bytes_copied: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, why)

    @property
    def moved(self) -> int:
        return self.copied + self.present


@dataclass(frozen=True)
class _Digest:
    size: int
    sha256: str


async def migrate(source: FileStorage, target: FileStorage, *, on_progress: Progress | None = None) -> MigrationReport:
    """Move every file of ``source`` to ``target`` (see the module's docstring).

    A file that cannot be stored in the target (a key it refuses) or whose copy reads
    back different is kept in the source and reported; a storage that fails
    (``Unavailable``) stops the migration, which may be run again."""
    report = MigrationReport()
    async for found in source.list():
        outcome = await _move(source, target, found.key, report)
        if outcome and on_progress is not None:
            on_progress(found.key, outcome)
    return report


async def _move(source: FileStorage, target: FileStorage, key: str, report: MigrationReport) -> str:
    """Move one file: "copied", "present", "failed", or "" when it vanished meanwhile."""
    try:
        outcome = await _transfer(source, target, key, report)
    except NotFound:
        return ""
    except ValueError as exc:  # a key the target refuses
        report.failed.append((key, str(exc)))
        return "failed"
    if outcome != "failed":
        await source.delete(key)
    return outcome


async def _transfer(source: FileStorage, target: FileStorage, key: str, report: MigrationReport) -> str:
    """Make the target hold the source's bytes of ``key``, and prove it."""
    found = await source.stat(key)
    if found is None:
        raise NotFound()
    present = await target.stat(key)
    with tempfile.SpooledTemporaryFile(SPOOL) as staged:
        original = await _digest(source, key, staged)
        if present is not None and present.size == original.size and await _digest(target, key) == original:
            report.present += 1
            return "present"
        await asyncio.to_thread(staged.seek, 0)
        await target.put(key, staged, found.content_type)  # type: ignore[arg-type]  # a binary file
    if await _digest(target, key) != original:
        report.failed.append((key, "the copy read back from the target differs from the original"))
        return "failed"
    report.copied += 1
    report.bytes_copied += original.size
    return "copied"


async def _digest(storage: FileStorage, key: str, copy: IO[bytes] | None = None) -> _Digest:
    """The size and SHA-256 of ``key``, streamed (and written to ``copy`` when given)."""
    digest, size = hashlib.sha256(), 0
    async for chunk in storage.read(key):
        digest.update(chunk)
        size += len(chunk)
        if copy is not None:
            await asyncio.to_thread(copy.write, chunk)
    return _Digest(size, digest.hexdigest())
