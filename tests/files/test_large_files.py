"""Large files stream through a real ``bastion serve`` both ways: the server's resident
memory does not grow with the size of the file (an 80 MB upload and its download)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.testing import Server, run_cli

MB = 1024 * 1024
SIZE = 80 * MB
EMAIL, PASSWORD = "big@example.com", "big-files-password-1"


def _rss_kib(pid: int) -> int:
    """The process's resident memory now (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc")


class Watch:
    """The highest resident memory of a process while the ``with`` block runs, sampled
    every 5 ms (its lifetime peak would hide growth below the start-up peak)."""

    def __init__(self, pid: int):
        self.pid, self.highest, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.highest = max(self.highest, _rss_kib(self.pid))

    def __enter__(self) -> Watch:
        self.highest = _rss_kib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _chunks() -> Iterator[bytes]:
    block = bytes(range(256)) * 4096  # 1 MiB
    for i in range(SIZE // MB):
        yield block[i % 256:] + block[:i % 256]


def _multipart(boundary: str) -> Iterator[bytes]:
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="blob"; filename="big.bin"\r\n'
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    yield from _chunks()
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("large")
    data = str(folder / "data")
    done = run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", data, cwd=folder)
    assert done.returncode == 0, done.stderr
    running = Server(folder, "--dir", data, "--body-limit", str(2 * SIZE))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_an_80_mb_file_streams_in_and_out(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        token = client.post("/api/collections/_superusers/auth-with-password",
                            json={"identity": EMAIL, "password": PASSWORD}).json()["token"]
        res = client.post("/api/collections", headers={"Authorization": token}, json={
            "name": "blobs", "listRule": "", "viewRule": "", "createRule": "",
            "fields": [{"name": "blob", "type": "file", "maxSize": 2 * SIZE}]})
        assert res.status_code == 200, res.text
        warm = client.post("/api/collections/blobs/records", files={"blob": ("w.bin", b"w" * MB)})
        assert warm.status_code == 200, warm.text
        before = _rss_kib(server.proc.pid)
        boundary = "bastionlargefile"
        with Watch(server.proc.pid) as upload:
            res = client.post("/api/collections/blobs/records", content=_multipart(boundary),
                              headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert res.status_code == 200, res.text
        record = res.json()
        want = hashlib.sha256()
        for chunk in _chunks():
            want.update(chunk)
        got, size = hashlib.sha256(), 0
        with Watch(server.proc.pid) as download, client.stream(
                "GET", f"/api/files/blobs/{record['id']}/{record['blob']}") as answer:
            assert answer.status_code == 200
            assert answer.headers["content-length"] == str(SIZE)
            for chunk in answer.iter_bytes():
                got.update(chunk)
                size += len(chunk)
        tail = client.get(f"/api/files/blobs/{record['id']}/{record['blob']}", headers={"Range": "bytes=-5"})
    assert size == SIZE and got.hexdigest() == want.hexdigest()
    assert tail.status_code == 206 and len(tail.content) == 5
    # 80 MB went in and out; the server's peak grew by a small fraction of that.
    grew = {"upload": upload.highest - before, "download": download.highest - before}
    print(f"resident memory grew by at most {grew} KiB")
    assert max(grew.values()) < 24 * 1024, f"the server grew by {grew} KiB while 80 MB went through"
