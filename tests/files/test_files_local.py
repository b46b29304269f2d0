"""What only the local folder storage does: temporary files, empty folders, links."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from bastion.adapters.files_local import LocalStorage


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


async def keys(storage: LocalStorage, prefix: str = "") -> set[str]:
    return {found.key async for found in storage.list(prefix)}


async def test_the_root_is_made_on_the_first_write(local: LocalStorage) -> None:
    assert await keys(local) == set()
    assert not local.root.exists()
    await local.put("a/b.txt", io.BytesIO(b"x"), "")
    assert (local.root / "a" / "b.txt").read_bytes() == b"x"


async def test_a_crashed_put_leaves_nothing_listed(local: LocalStorage) -> None:
    class Failing(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            if self.tell() >= 4:
                raise OSError("disk went away")
            return super().read(2)

    await local.put("c/r/file", io.BytesIO(b"old"), "")
    with pytest.raises(OSError):
        await local.put("c/r/file", Failing(b"new bytes"), "")
    assert (local.root / "c/r/file").read_bytes() == b"old"
    assert os.listdir(local.root / "c/r") == ["file"]  # the temporary file is gone
    (local.root / "c/r/.file.0123456789abcdef.tmp").write_bytes(b"left by a crash")
    assert await keys(local) == {"c/r/file"}


async def test_deleting_the_last_file_removes_empty_folders(local: LocalStorage) -> None:
    await local.put("c/r1/a", io.BytesIO(b"a"), "")
    await local.put("c/r2/b", io.BytesIO(b"b"), "")
    await local.delete("c/r1/a")
    assert not (local.root / "c/r1").exists()
    assert (local.root / "c/r2").is_dir()
    await local.delete_prefix("c/r2/")
    assert not (local.root / "c").exists()
    assert local.root.is_dir()  # the root stays


async def test_a_link_out_of_the_root_is_not_followed(local: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    local.root.mkdir()
    (local.root / "c").symlink_to(outside)
    with pytest.raises(ValueError):
        await local.read_all("c/secret", 100)
    with pytest.raises(ValueError):
        await local.put("c/planted", io.BytesIO(b"x"), "")
    assert await keys(local) == set()
    assert await keys(local, "c/") == set()
    assert not (outside / "planted").exists()


async def test_readers_see_whole_files_while_one_is_replaced(local: LocalStorage) -> None:
    old, new = b"o" * 3_000_000, b"n" * 2_000_000
    await local.put("k/f", io.BytesIO(old), "")

    async def reader() -> set[bytes]:
        seen = set()
        for _ in range(20):
            seen.add(b"".join([chunk async for chunk in local.read("k/f")]))
        return seen

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    for _ in range(5):
        await local.put("k/f", io.BytesIO(new), "")
        await local.put("k/f", io.BytesIO(old), "")
    seen = set().union(*await asyncio.gather(*readers))
    assert seen <= {old, new}


async def test_stat_etag_follows_the_bytes(local: LocalStorage) -> None:
    await local.put("e/f", io.BytesIO(b"one"), "image/png")
    first = await local.stat("e/f")
    assert first is not None and first.content_type == ""  # the files service sniffs it
    await local.put("e/f", io.BytesIO(b"three"), "")
    second = await local.stat("e/f")
    assert second is not None and second.etag != first.etag
