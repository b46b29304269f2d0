"""Uploaded files in a local folder: ``core.ports.FileStorage`` on the file system.

Every blocking call runs in a worker thread (``asyncio.to_thread``), a chunk at a time,
so the event loop never waits on the disk. A ``put`` writes a temporary file beside its
target and renames it over the target (``os.replace``): a reader sees the old bytes or
the new ones, never half of them. A put that crashed leaves its temporary file
(``.{name}.{16 hex}.tmp``), which ``list`` never shows.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import stat as stat_mode
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from bastion.core.errors import NotFound
from bastion.core.ports import StoredFile

CHUNK = 256 * 1024  # bytes moved per read or write
SMALL = 256 * 1024  # a read of at most this many bytes takes one thread hop
INLINE = 64 * 1024  # ``fetch`` reads a file of at most this many bytes without a thread hop
MAX_KEY = 1024
TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")


def check_key(key: str) -> str:
    """``key`` when it is a safe relative ``/``-separated path, else ``ValueError``."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise ValueError("a file key must be 1 to 1024 characters long")
    if "\x00" in key or "\\" in key:
        raise ValueError("a file key may not hold NUL or a backslash")
    if key.startswith("/"):
        raise ValueError("a file key must be relative")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError("a file key may not hold an empty, '.' or '..' segment")
    if TEMP_RE.match(key.rsplit("/", 1)[-1]):
        raise ValueError("a file key may not look like a temporary file")
    return key


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is empty or a safe key, a folder when it ends with ``/``."""
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


class LocalStorage:
    """Files under ``root`` (created on the first write); keys are paths below it."""

    name = "local"

    def __init__(self, root: Path):
        self.root = Path(os.path.realpath(root))

    # -- paths -------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _inside(self, path: Path | str) -> Path | str:
        """``path`` when no part of it below the root is a link (defence in depth: keys
        are checked already, but a link placed inside the folder could point outside).
        The root itself was resolved once; this is one ``lstat`` per key part."""
        root = str(self.root)
        current = root
        for part in str(path)[len(root) + 1:].split(os.sep):
            current = f"{current}{os.sep}{part}"
            try:
                if stat_mode.S_ISLNK(os.lstat(current).st_mode):
                    raise ValueError("a file key must stay inside the storage folder (no links)")
            except (FileNotFoundError, NotADirectoryError):
                break
        return path

    def _stored(self, path: Path, st: os.stat_result) -> StoredFile:
        return _stored(self.root, path, st)

    # -- writing -----------------------------------------------------------------------

    async def put(self, key: str, source: BinaryIO, content_type: str) -> int:
        path = self._path(key)
        return await asyncio.to_thread(self._write, path, source)

    def _write(self, path: Path, source: BinaryIO) -> int:
        self._inside(path)
        temp, out = self._open_temp(path)
        size = 0
        try:
            with out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return size

    @staticmethod
    def _open_temp(path: Path) -> tuple[Path, BinaryIO]:
        # A delete of the folder's last file removes the folder: make it again if that
        # happens between mkdir and open.
        for attempt in range(3):
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name[:200]}.{secrets.token_hex(8)}.tmp")
            try:
                return temp, open(temp, "xb")  # noqa: SIM115 - closed by the caller
            except FileNotFoundError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._unlink, path)

    def _unlink(self, path: Path) -> None:
        self._inside(path)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            return
        self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        """Remove ``folder`` and its parents while they are empty, up to the root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): stop here
                return
            folder = folder.parent

    async def delete_prefix(self, prefix: str) -> None:
        if not check_prefix(prefix):
            raise ValueError("delete_prefix needs a prefix: it would remove every file")
        if prefix.endswith("/"):
            await asyncio.to_thread(self._remove_tree, self.root / prefix)
            return
        async for found in self.list(prefix):
            await self.delete(found.key)

    def _remove_tree(self, folder: Path) -> None:
        if not folder.is_dir() or folder.is_symlink():
            return
        self._inside(folder)
        shutil.rmtree(folder, ignore_errors=True)
        self._prune(folder.parent)

    # -- reading -----------------------------------------------------------------------

    async def stat(self, key: str) -> StoredFile | None:
        path = self._path(key)
        return await asyncio.to_thread(self._stat, path)

    def _stat(self, path: Path) -> StoredFile | None:
        try:
            st = os.stat(self._inside(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return self._stored(path, st) if stat_mode.S_ISREG(st.st_mode) else None

    async def read(self, key: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        if start < 0 or (length is not None and length < 0):
            raise ValueError("a read starts at 0 or later and has a length of 0 or more")
        path = self._path(key)
        handle, left, data = await asyncio.to_thread(self._open_read, path, start, length)
        if handle is None:
            if data:
                yield data
            return
        try:
            while left > 0:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    def _open_read(self, path: Path, start: int, length: int | None) -> tuple[BinaryIO | None, int, bytes]:
        """The open file at ``start`` and how many bytes to read from it, or (a small
        read) no file and the bytes themselves."""
        handle = self._open(path)
        try:
            size = os.fstat(handle.fileno()).st_size
            left = max(0, size - start) if length is None else max(0, min(length, size - start))
            handle.seek(start)
            if left <= SMALL:
                return None, 0, handle.read(left)
        except BaseException:
            handle.close()
            raise
        return handle, left, b""

    def _open(self, path: Path | str) -> BinaryIO:
        try:
            handle = open(self._inside(path), "rb")  # noqa: SIM115 - closed by the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound() from None
        if not stat_mode.S_ISREG(os.fstat(handle.fileno()).st_mode):
            handle.close()
            raise NotFound()
        return handle

    async def fetch(self, key: str, limit: int) -> tuple[StoredFile, bytes | None] | None:
        """As the port says. A file of at most ``INLINE`` bytes is read on the event loop:
        from the page cache that takes microseconds, where a hop to a thread and back
        costs a hundred or more (it is the download path of every kept thumb)."""
        path = f"{self.root}{os.sep}{check_key(key)}"  # (no pathlib here: a quarter of the cost)
        try:
            handle = self._open(path)
        except NotFound:
            return None
        with handle:  # writes replace the file whole: this handle reads one version of it
            st = os.fstat(handle.fileno())
            data = None
            if st.st_size <= min(limit, INLINE):
                data = handle.read(st.st_size)
            elif st.st_size <= limit:
                data = await asyncio.to_thread(handle.read, st.st_size)
        return StoredFile(key, st.st_size, st.st_mtime, "", f"{st.st_mtime_ns:x}-{st.st_size:x}"), data

    async def read_all(self, key: str, limit: int) -> bytes:
        path = self._path(key)
        return await asyncio.to_thread(self._read_all, path, limit)

    def _read_all(self, path: Path, limit: int) -> bytes:
        with self._open(path) as handle:
            if os.fstat(handle.fileno()).st_size > limit:
                raise ValueError(f"the file is larger than {limit} bytes")
            data = handle.read(limit + 1)
        if len(data) > limit:  # it grew since
            raise ValueError(f"the file is larger than {limit} bytes")
        return data

    async def list(self, prefix: str = "") -> AsyncIterator[StoredFile]:
        check_prefix(prefix)
        # The deepest folder the prefix names; keys below it are then matched as text.
        folder = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        pending = [folder]
        while pending:
            files, folders = await asyncio.to_thread(_scan, self.root, pending.pop())
            pending.extend(folders)
            for found in files:
                if found.key.startswith(prefix):
                    yield found

    async def close(self) -> None:
        return None


def _stored(root: Path, path: Path, st: os.stat_result) -> StoredFile:
    return StoredFile(path.relative_to(root).as_posix(), st.st_size, st.st_mtime, "",
                      f"{st.st_mtime_ns:x}-{st.st_size:x}")


def _scan(root: Path, folder: Path) -> tuple[list[StoredFile], list[Path]]:
    """The files of one folder and its subfolders; links and temporary files skipped."""
    files: list[StoredFile] = []
    folders: list[Path] = []
    if os.path.realpath(folder) != str(folder):  # a link on the way: maybe out of the root
        return files, folders
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return files, folders
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            folders.append(Path(entry.path))
        elif entry.is_file(follow_symlinks=False) and not TEMP_RE.match(entry.name):
            try:
                files.append(_stored(root, Path(entry.path), entry.stat(follow_symlinks=False)))
            except FileNotFoundError:  # deleted meanwhile
                continue
    return files, folders
