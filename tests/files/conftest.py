"""Fixtures of the file storage tests: each storage adapter, on a place of its own.

``storage`` runs a test on a local folder and on a bucket of moto's S3 server (one
server per test process, a new bucket per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.files_local import LocalStorage
from bastion.adapters.files_s3 import PART, S3Storage
from bastion.core.ports import FileStorage
from bastion.testing.s3 import MotoS3

MiB = 1024 * 1024


@pytest.fixture(scope="session")
def s3() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1 (``s3.options``: its first bucket's settings)."""
    with MotoS3() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Where ``storage`` keeps its files: ``{"local": folder}`` or ``{"s3": options}``."""
    if request.param == "s3":
        return {"s3": request.getfixturevalue("s3").new_bucket()}
    return {"local": str(tmp_path / "storage")}


def open_storage(place: dict[str, Any]) -> FileStorage:
    """The storage of a ``place``."""
    return S3Storage(place["s3"]) if "s3" in place else LocalStorage(Path(place["local"]))


@pytest.fixture
async def storage(place: dict[str, Any]) -> AsyncIterator[FileStorage]:
    """Each storage adapter, empty: a local folder, an S3 bucket."""
    made = open_storage(place)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
def memory_bound(place: dict[str, Any]) -> int:
    """The most Python memory moving a 20 MB file in and out may take: a few chunks
    locally; on S3 the multipart part being sent (5 MiB) and its copy."""
    return 2 * PART + MiB if "s3" in place else 4 * MiB
