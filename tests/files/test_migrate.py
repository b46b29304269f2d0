"""Moving files between the local folder and S3: ``core.files.migrate`` and ``bastion files migrate``."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.files_local import LocalStorage
from bastion.adapters.files_s3 import S3Storage
from bastion.core.app import App
from bastion.core.files.migrate import migrate
from bastion.core.ports import FileStorage
from bastion.testing import TestClient, run_cli
from bastion.testing.s3 import MotoS3
from bastion.testing.servers import BASTION


def sample(count: int, size: int = 3000) -> dict[str, bytes]:
    """``count`` files of random bytes under keys as the files service makes them."""
    return {f"col{i % 3}/rec{i}/file_{i}.bin": os.urandom(size + i) for i in range(count)}


async def fill(storage: FileStorage, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        await storage.put(key, io.BytesIO(data), "application/octet-stream")


async def contents(storage: FileStorage) -> dict[str, str]:
    """Each key of ``storage`` -> the SHA-256 of its bytes."""
    out = {}
    async for found in storage.list():
        out[found.key] = hashlib.sha256(await storage.read_all(found.key, 1 << 30)).hexdigest()
    return out


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {key: hashlib.sha256(data).hexdigest() for key, data in files.items()}


@pytest.fixture
async def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
async def bucket(s3: MotoS3) -> AsyncIterator[S3Storage]:
    storage = S3Storage(s3.new_bucket())
    try:
        yield storage
    finally:
        await storage.close()


@pytest.mark.parametrize("direction", ["to-s3", "to-local"])
async def test_every_file_moves_intact(local: LocalStorage, bucket: S3Storage, direction: str) -> None:
    source, target = (local, bucket) if direction == "to-s3" else (bucket, local)
    files = sample(12) | {"big/one.bin": os.urandom(3 * 1024 * 1024)}
    await fill(source, files)
    seen: list[tuple[str, str]] = []
    report = await migrate(source, target, on_progress=lambda key, outcome: seen.append((key, outcome)))
    assert (report.copied, report.present, report.failed) == (13, 0, [])
    assert report.bytes_copied == sum(len(data) for data in files.values())
    assert sorted(seen) == sorted((key, "copied") for key in files)
    assert await contents(target) == digests(files)
    assert await contents(source) == {}


async def test_a_file_the_target_holds_already_is_not_copied_again(local: LocalStorage, bucket: S3Storage) -> None:
    files = sample(4)
    await fill(local, files)
    keys = sorted(files)
    await fill(bucket, {keys[0]: files[keys[0]]})  # moved by an interrupted run
    await fill(bucket, {keys[1]: b"x" * len(files[keys[1]])})  # same size, other bytes: a torn copy
    report = await migrate(local, bucket)
    assert (report.copied, report.present, report.failed) == (3, 1, [])
    assert await contents(bucket) == digests(files)
    assert await contents(local) == {}


class Corrupting:
    """A storage whose reads of one key return other bytes than it stored."""

    def __init__(self, inner: FileStorage, bad: str):
        self.inner, self.bad, self.name = inner, bad, inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, key: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self.inner.read(key, start, length):
            yield bytes(b ^ 1 for b in chunk) if key == self.bad else chunk


async def test_a_corrupted_copy_keeps_the_original(local: LocalStorage, bucket: S3Storage) -> None:
    files = sample(5)
    await fill(local, files)
    bad = sorted(files)[2]
    report = await migrate(local, Corrupting(bucket, bad))  # type: ignore[arg-type]
    assert report.copied == 4
    assert [key for key, _ in report.failed] == [bad]
    assert "differs" in report.failed[0][1]
    assert await contents(local) == digests({bad: files[bad]})  # the original stays


async def test_a_key_bastion_refuses_is_kept_and_reported(local: LocalStorage, bucket: S3Storage,
                                                          s3: MotoS3) -> None:
    await fill(bucket, {"ok/file": b"fine"})
    s3.client().put_object(Bucket=bucket.bucket, Key="odd//name", Body=b"kept")  # put there by another tool
    report = await migrate(bucket, local)
    assert report.copied == 1 and [key for key, _ in report.failed] == ["odd//name"]
    assert [found.key async for found in bucket.list()] == ["odd//name"]
    assert await contents(local) == digests({"ok/file": b"fine"})


# -- bastion files migrate ------------------------------------------------------------

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the CLI opens tmp_path/data


async def configure(client: TestClient, options: dict[str, Any], enabled: bool = False) -> None:
    res = await client.patch("/api/settings", headers=client.su(), json={"s3": {**options, "enabled": enabled}})
    assert res.status_code == 200, res.text


def cli_migrate(tmp_path: Path, to: str) -> subprocess.CompletedProcess[str]:
    return run_cli("files", "migrate", "--to", to, "--dir", str(tmp_path / "data"), cwd=tmp_path, timeout=120)


@SQLITE
async def test_the_cli_moves_files_both_ways_and_switches_the_settings(
        app: App, client: TestClient, tmp_path: Path, s3: MotoS3) -> None:
    options = s3.new_bucket()
    await configure(client, options)
    files = sample(8)
    local, bucket = LocalStorage(tmp_path / "data" / "storage"), S3Storage(options)
    await fill(local, files)

    done = cli_migrate(tmp_path, "s3")
    assert done.returncode == 0, done.stderr
    assert "Moved 8 files" in done.stdout and "s3.enabled is now true" in done.stdout
    assert await contents(bucket) == digests(files) and await contents(local) == {}
    await app.settings.reload_if_changed()
    assert app.settings.current["s3"]["enabled"] is True

    done = cli_migrate(tmp_path, "local")
    assert done.returncode == 0, done.stderr
    assert await contents(local) == digests(files) and await contents(bucket) == {}
    await app.settings.reload_if_changed()
    assert app.settings.current["s3"]["enabled"] is False
    await bucket.close()


@SQLITE
async def test_the_cli_refuses_incomplete_s3_settings(app: App, client: TestClient, tmp_path: Path) -> None:
    await configure(client, {"bucket": "files", "region": "", "endpoint": "", "accessKey": "", "secret": ""})
    done = cli_migrate(tmp_path, "s3")
    assert done.returncode == 2
    assert "region, endpoint, accessKey, secret" in done.stderr and len(done.stderr.strip().splitlines()) <= 3


@SQLITE
async def test_an_interrupted_migration_resumes(app: App, client: TestClient, tmp_path: Path, s3: MotoS3) -> None:
    options = s3.new_bucket()
    await configure(client, options)
    files = sample(60, size=40_000)
    local, bucket = LocalStorage(tmp_path / "data" / "storage"), S3Storage(options)
    await fill(local, files)

    proc = subprocess.Popen([*BASTION, "files", "migrate", "--to", "s3", "--dir", str(tmp_path / "data"), "-v"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for _ in range(5):  # five files moved: stop it dead
        assert proc.stdout.readline().startswith("copied")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    left = await contents(local)
    assert 0 < len(left) < len(files), "the migration was not interrupted half way"
    await app.settings.reload_if_changed()
    assert app.settings.current["s3"]["enabled"] is False  # not switched yet

    done = cli_migrate(tmp_path, "s3")
    assert done.returncode == 0, done.stderr
    assert await contents(bucket) == digests(files)
    assert await contents(local) == {}
    await app.settings.reload_if_changed()
    assert app.settings.current["s3"]["enabled"] is True
    await bucket.close()


@SQLITE
async def test_the_cli_sweeps_orphans(app: App, client: TestClient, tmp_path: Path) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "docs", "type": "base", "viewRule": "", "fields": [{"name": "doc", "type": "file"}]})
    assert res.status_code == 200, res.text
    rec = (await client.post("/api/collections/docs/records", headers=client.su(),
                             files={"doc": ("kept.txt", b"kept", "text/plain")})).json()
    local = LocalStorage(tmp_path / "data" / "storage")
    await fill(local, {f"{rec['collectionId']}/{rec['id']}/stray_0123456789.txt": b"x"})
    kept = run_cli("files", "sweep", "--dir", str(tmp_path / "data"), cwd=tmp_path, timeout=60)
    assert kept.returncode == 0 and "Deleted 0 orphaned files" in kept.stdout, kept.stderr
    swept = run_cli("files", "sweep", "--grace", "0", "-v", "--dir", str(tmp_path / "data"), cwd=tmp_path,
                    timeout=60)
    assert swept.returncode == 0 and "Deleted 1 orphaned files" in swept.stdout, swept.stderr
    assert "stray_0123456789.txt" in swept.stdout
    assert (await client.get(f"/api/files/docs/{rec['id']}/{rec['doc']}")).content == b"kept"
