"""The file storage the ``s3`` settings choose: ``core.ports.StorageFactory``.

``storage_factory(root)`` is what ``cli/`` gives the App. The App asks it on each use
with the current ``s3`` settings section, so a settings change takes effect at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bastion.adapters.files_local import LocalStorage
from bastion.adapters.files_s3 import S3Storage
from bastion.core.ports import FileStorage

S3_KEYS = ("bucket", "region", "endpoint", "accessKey", "secret", "forcePathStyle")


class Storages:
    """A ``StorageFactory``: called with an ``s3`` settings section, the local folder
    (one shared ``LocalStorage``) while ``enabled`` is false, else an ``S3Storage``.

    One ``S3Storage`` is kept for the options last asked for; when they change it is
    replaced and the old one closed in the background (a caller still holding it may
    go on using it: it connects again). ``await close()`` once at the end closes them all.
    """

    def __init__(self, root: Path):
        self.local = LocalStorage(root)
        self._s3: tuple[tuple[str, ...], S3Storage] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def __call__(self, options: Mapping[str, Any]) -> FileStorage:
        if not options.get("enabled"):
            return self.local
        key = tuple(str(options.get(name, "")) for name in S3_KEYS)
        if self._s3 is not None and self._s3[0] == key:
            return self._s3[1]
        old, self._s3 = self._s3, (key, S3Storage(options))
        if old is not None:
            self._retire(old[1])
        return self._s3[1]

    def _retire(self, storage: S3Storage) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop running: nothing was connected from here
            return
        closing = loop.create_task(storage.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every storage made (call when the App stops)."""
        current, self._s3 = self._s3, None
        if current is not None:
            await current[1].close()
        await self.local.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def storage_factory(root: Path) -> Storages:
    """The ``StorageFactory`` keeping local files under ``root`` (see :class:`Storages`)."""
    return Storages(root)
