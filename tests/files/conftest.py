"""Fixtures of the file storage tests: each storage adapter, on a place of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bastion.adapters.files_local import LocalStorage
from bastion.core.ports import FileStorage

STORAGES = ["local"]


@pytest.fixture(params=STORAGES)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStorage]:
    """Each storage adapter, empty: a local folder."""
    made: FileStorage = LocalStorage(tmp_path / "storage")
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
def memory_bound(storage: FileStorage) -> int:
    """The most Python memory moving a 20 MB file in and out may take on ``storage``."""
    return 4 * 1024 * 1024
