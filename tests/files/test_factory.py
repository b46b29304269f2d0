"""The storage factory: the local folder or a bucket, as the ``s3`` settings say."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bastion.adapters.files import storage_factory
from bastion.adapters.files_local import LocalStorage
from bastion.adapters.files_s3 import S3Storage
from bastion.testing.s3 import MotoS3


async def test_the_local_folder_while_s3_is_off(tmp_path: Path) -> None:
    storages = storage_factory(tmp_path / "storage")
    first = storages({"enabled": False, "bucket": "ignored"})
    assert isinstance(first, LocalStorage) and first.name == "local"
    assert storages({"enabled": False}) is first
    await storages.close()


async def test_one_bucket_storage_per_options(tmp_path: Path, s3: MotoS3) -> None:
    storages = storage_factory(tmp_path / "storage")
    options = s3.new_bucket()
    first = storages(options)
    assert isinstance(first, S3Storage) and first.name == "s3"
    assert storages(dict(options)) is first
    await first.put("a/b", io.BytesIO(b"x"), "")
    assert first._client is not None

    changed = storages({**options, "bucket": s3.new_bucket()["bucket"]})
    assert changed is not first and isinstance(changed, S3Storage)
    await asyncio.sleep(0.2)  # the old one closes in the background
    assert first._client is None
    assert await first.stat("a/b") is not None  # a caller still holding it may go on
    assert storages({**options, "enabled": False}) is storages.local
    await storages.close()
    assert changed._client is None
