"""What every file storage adapter does the same: the ``FileStorage`` port's contract."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.files_s3 import S3Storage
from bastion.core.errors import BadRequest, NotFound, Unavailable
from bastion.core.ports import FileStorage
from bastion.testing import free_port
from bastion.testing.s3 import MotoS3
from tests.files.streams import expected_sha256

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = ["../x", "a/../../x", "/abs", "a//b", "a/", "", "a\x00b", "a\\b", "./a", "x" * 1025]


async def put(storage: FileStorage, key: str, data: bytes, content_type: str = "text/plain") -> int:
    return await storage.put(key, io.BytesIO(data), content_type)


async def read(storage: FileStorage, key: str, start: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, length)])


async def keys(storage: FileStorage, prefix: str = "") -> set[str]:
    return {found.key async for found in storage.list(prefix)}


async def test_put_stat_read(storage: FileStorage) -> None:
    assert await put(storage, "c1/r1/hello.txt", b"hello world") == 11
    found = await storage.stat("c1/r1/hello.txt")
    assert found is not None
    assert (found.key, found.size) == ("c1/r1/hello.txt", 11)
    assert found.modified > 0 and found.etag
    assert await read(storage, "c1/r1/hello.txt") == b"hello world"
    assert await storage.read_all("c1/r1/hello.txt", 11) == b"hello world"


async def test_put_reads_the_source_from_its_position(storage: FileStorage) -> None:
    source = io.BytesIO(b"skip:kept")
    source.seek(5)
    assert await storage.put("a/b", source, "") == 4
    assert await read(storage, "a/b") == b"kept"


async def test_read_ranges(storage: FileStorage) -> None:
    await put(storage, "r/digits", b"0123456789")
    assert await read(storage, "r/digits", 2) == b"23456789"
    assert await read(storage, "r/digits", 2, 3) == b"234"
    assert await read(storage, "r/digits", 0, 10) == b"0123456789"
    assert await read(storage, "r/digits", 8, 100) == b"89"
    assert await read(storage, "r/digits", 3, 0) == b""
    assert await read(storage, "r/digits", 10) == b""


async def test_read_ranges_of_a_large_file(storage: FileStorage) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: read in several chunks
    await put(storage, "r/large", data)
    assert await read(storage, "r/large") == data
    assert await read(storage, "r/large", 300_000, 500_000) == data[300_000:800_000]
    assert await read(storage, "r/large", len(data) - 5) == data[-5:]


async def test_read_all_is_bounded(storage: FileStorage) -> None:
    await put(storage, "b/ten", b"0123456789")
    assert await storage.read_all("b/ten", 10) == b"0123456789"
    with pytest.raises(ValueError):
        await storage.read_all("b/ten", 9)


async def test_replacing_a_key(storage: FileStorage) -> None:
    await put(storage, "k/file", b"first version")
    before = await storage.stat("k/file")
    await put(storage, "k/file", b"second")
    after = await storage.stat("k/file")
    assert before is not None and after is not None
    assert after.size == 6 and after.etag != before.etag
    assert await read(storage, "k/file") == b"second"
    assert await keys(storage) == {"k/file"}


async def test_missing_keys(storage: FileStorage) -> None:
    await put(storage, "m/there", b"x")
    assert await storage.stat("m/missing") is None
    assert await storage.stat("m/there/below") is None
    assert await storage.stat("m") is None  # a folder is no file
    with pytest.raises(NotFound):
        await read(storage, "m/missing")
    with pytest.raises(NotFound):
        await storage.read_all("m/missing", 100)
    await storage.delete("m/missing")  # no error


async def test_delete(storage: FileStorage) -> None:
    await put(storage, "d/r1/a", b"a")
    await put(storage, "d/r1/b", b"b")
    await storage.delete("d/r1/a")
    assert await storage.stat("d/r1/a") is None
    assert await keys(storage) == {"d/r1/b"}


async def test_delete_prefix(storage: FileStorage) -> None:
    for key in ("c1/r1/a", "c1/r1/sub/b", "c1/r2/c", "c10/r1/d", "c2/e"):
        await put(storage, key, key.encode())
    await storage.delete_prefix("c1/r1/")
    assert await keys(storage) == {"c1/r2/c", "c10/r1/d", "c2/e"}
    await storage.delete_prefix("c1/")
    assert await keys(storage) == {"c10/r1/d", "c2/e"}  # c10 is not below c1/
    await storage.delete_prefix("nothing/")  # no error
    with pytest.raises(ValueError):
        await storage.delete_prefix("")  # never everything


async def test_list(storage: FileStorage) -> None:
    assert await keys(storage) == set()
    for key in ("c1/r1/a.txt", "c1/r1/thumbs_a.txt/100x100_a.txt", "c1/r2/b.txt", "c2/r3/c.txt"):
        await put(storage, key, b"12345")
    assert await keys(storage) == {"c1/r1/a.txt", "c1/r1/thumbs_a.txt/100x100_a.txt", "c1/r2/b.txt",
                                   "c2/r3/c.txt"}
    assert await keys(storage, "c1/") == {"c1/r1/a.txt", "c1/r1/thumbs_a.txt/100x100_a.txt", "c1/r2/b.txt"}
    assert await keys(storage, "c1/r1/") == {"c1/r1/a.txt", "c1/r1/thumbs_a.txt/100x100_a.txt"}
    assert await keys(storage, "c1/r1/a") == {"c1/r1/a.txt"}
    assert await keys(storage, "c9/") == set()
    sizes = {found.size async for found in storage.list()}
    assert sizes == {5}


@pytest.mark.parametrize("key", HOSTILE, ids=repr)
async def test_hostile_keys_are_refused(storage: FileStorage, key: str) -> None:
    with pytest.raises(ValueError):
        await put(storage, key, b"x")
    with pytest.raises(ValueError):
        await storage.stat(key)
    with pytest.raises(ValueError):
        await read(storage, key)
    with pytest.raises(ValueError):
        await storage.read_all(key, 10)
    with pytest.raises(ValueError):
        await storage.delete(key)


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a//", "a\x00/", "a\\b/"], ids=repr)
async def test_hostile_prefixes_are_refused(storage: FileStorage, prefix: str) -> None:
    with pytest.raises(ValueError):
        await storage.delete_prefix(prefix)
    with pytest.raises(ValueError):
        await keys(storage, prefix)


async def test_a_large_file_is_streamed_both_ways(place: dict[str, Any], memory_bound: int) -> None:
    # In a process of its own: moto's server, in this one, holds the file in memory too.
    size = 20 * 1024 * 1024
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "tests.files.stream_child", json.dumps(place),
                                   str(size)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stored"] == result["read"] == size
    assert result["sha256"] == expected_sha256(size)
    assert result["peak"] < memory_bound, f"peak {result['peak'] / 1e6:.1f} MB"


async def test_an_s3_endpoint_that_is_down_is_unavailable() -> None:
    secret = "very-secret-value-123"
    down = S3Storage({"bucket": "files", "region": "us-east-1", "endpoint": f"http://127.0.0.1:{free_port()}",
                      "accessKey": "key", "secret": secret, "forcePathStyle": True},
                     connect_timeout=1, read_timeout=1, attempts=1)
    calls = [lambda: put(down, "a/b", b"x"), lambda: down.stat("a/b"), lambda: read(down, "a/b"),
             lambda: down.read_all("a/b", 10), lambda: down.delete("a/b"), lambda: down.delete_prefix("a/"),
             lambda: keys(down), down.check]
    for call in calls:
        with pytest.raises(Unavailable) as caught:
            await call()
        message = caught.value.message
        assert down.endpoint in message and "'files'" in message, message
        assert secret not in message and secret not in repr(caught.value.__cause__) + repr(down)
    await down.close()


async def test_an_s3_check_proves_the_bucket_takes_files(s3: MotoS3) -> None:
    options = s3.new_bucket()
    storage = S3Storage(options)
    await storage.check()
    assert [f async for f in storage.list()] == []  # the probe is gone
    await storage.close()


@pytest.mark.parametrize("change", [{"bucket": "no-such-bucket"}, {"secret": ""}, {"region": " "}], ids=str)
async def test_an_s3_check_says_what_to_fix(s3: MotoS3, change: dict[str, str]) -> None:
    storage = S3Storage({**s3.options, **change})
    with pytest.raises(BadRequest) as caught:
        await storage.check()
    name = next(iter(change))
    assert (change[name] if name == "bucket" else name) in caught.value.message
    await storage.close()
