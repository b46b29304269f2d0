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


@pytest.fixture(params=["local", "s3"])
async def where(request: pytest.FixtureRequest, client: Any, backend: Any) -> str:
    """Where the app under test keeps its files: its local folder, or a bucket of moto's
    S3 server, turned on through the settings API as a user would (on SQLite only: the
    engine plays no part in it, see ``pytest_collection_modifyitems``)."""
    if request.param == "s3":
        options = request.getfixturevalue("s3").new_bucket()
        res = await client.patch("/api/settings", json={"s3": options}, headers=client.su())
        assert res.status_code == 200, res.text
    return str(request.param)


async def stored_keys(app: Any) -> set[str]:
    """Every key in the app's file storage now."""
    return {item.key async for item in app.file_service.storage().list()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the S3 runs of ``where`` tests on engines other than SQLite."""
    dropped = [item for item in items if _s3_elsewhere(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not _s3_elsewhere(item)]


def _s3_elsewhere(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("where") == "s3" and params.get("backend", "sqlite") != "sqlite"
