"""Run in a process of its own: stream a large file into a storage and back, and print
the Python memory that took (apart from a test's in-process S3 server).

Argument: JSON ``{"local": root}`` or ``{"s3": options}``, and the size in bytes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import tracemalloc
from pathlib import Path

from bastion.adapters.files_local import LocalStorage
from bastion.adapters.files_s3 import S3Storage
from bastion.core.ports import FileStorage
from tests.files.streams import PatternFile


async def stream(storage: FileStorage, size: int) -> dict[str, object]:
    await storage.stat("warm/up")  # connect first: the client's own memory is not the file's
    tracemalloc.start()
    try:
        stored = await storage.put("big/file.bin", PatternFile(size), "application/octet-stream")  # type: ignore[arg-type]
        digest, count = hashlib.sha256(), 0
        async for chunk in storage.read("big/file.bin"):
            digest.update(chunk)
            count += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await storage.close()
    return {"stored": stored, "read": count, "sha256": digest.hexdigest(), "peak": peak}


def main() -> None:
    where, size = json.loads(sys.argv[1]), int(sys.argv[2])
    storage: FileStorage = LocalStorage(Path(where["local"])) if "local" in where else S3Storage(where["s3"])
    print(json.dumps(asyncio.run(stream(storage, size))))


if __name__ == "__main__":
    main()
