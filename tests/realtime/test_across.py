"""Realtime across processes, with real servers: two ``bastion serve`` nodes on one
PostgreSQL database over each transport (PostgreSQL's LISTEN/NOTIFY, Redis, NATS), and
``--workers 2``; a change made through one process reaches a stream held by the other,
and a subscription posted to the process that does not hold the stream is handed over.
Also the stream's lifetime bounds and SIGTERM."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from bastion.testing import Server, run_cli
from tests.realtime.sse import Stream
from tests.services import require_or_skip

EMAIL, PASSWORD = "root@example.com", "realtime-pass-123"
BUSES = {"redis": os.environ.get("BASTION_TEST_REDIS", "redis://127.0.0.1:6379/0"),
         "nats": os.environ.get("BASTION_TEST_NATS", "nats://127.0.0.1:4222")}


def _reachable(url: str) -> bool:
    host, port = url.split("://")[1].split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def _prepare(url: str) -> dict[str, str]:
    token = httpx.post(f"{url}/api/collections/_superusers/auth-with-password",
                       json={"identity": EMAIL, "password": PASSWORD}, timeout=10).json()["token"]
    su = {"Authorization": token}
    r = httpx.post(f"{url}/api/collections", headers=su, timeout=10, json={
        "name": "notes", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [{"name": "title", "type": "text"}]})
    assert r.status_code == 200, r.text
    return su


def _subscribe(url: str, stream: Stream, *topics: str) -> None:
    r = httpx.post(f"{url}/api/realtime", json={"clientId": stream.client_id, "subscriptions": list(topics)},
                   timeout=10)
    assert r.status_code == 204, r.text


@pytest.mark.parametrize("transport", ["postgres", "redis", "nats"])
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_nodes_share_events(tmp_path: Path, database_url: str, transport: str) -> None:
    bus = [] if transport == "postgres" else ["--bus-url", BUSES[transport]]
    if bus and not _reachable(bus[1]):
        require_or_skip(f"{transport} is not reachable at {bus[1]}")
    where = ["--dir", "data", "--database-url", database_url]
    assert run_cli("superuser", "upsert", EMAIL, PASSWORD, *where, cwd=tmp_path).returncode == 0
    args = [*where, "--bus-channel", f"t_{os.getpid()}_{transport}", *bus]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = Server(tmp_path / "a", *args), Server(tmp_path / "b", *args)
    streams: list[Stream] = []
    try:
        _prepare(a.url)
        time.sleep(0.3)  # node b learns of the new collection
        streams = [Stream(a.url), Stream(b.url)]
        _subscribe(b.url, streams[0], "notes/*")  # posted to the node that does not hold it
        _subscribe(b.url, streams[1], "notes/*")
        r = httpx.post(f"{a.url}/api/realtime", json={"clientId": "x" * 40, "subscriptions": []}, timeout=10)
        assert r.status_code == 404  # no node holds it
        for i in range(5):
            sent = time.monotonic()
            r = httpx.post(f"{(b if i % 2 else a).url}/api/collections/notes/records", json={"title": str(i)},
                           timeout=10)
            assert r.status_code == 200, r.text
            for s in streams:
                got = s.wait_for(i + 1)
                assert len(got) == i + 1, f"{transport}: event {i} missing on a stream"
                assert got[i][1]["record"]["title"] == str(i)
                assert got[i][2] - sent < 1.0
    finally:
        for s in streams:
            s.close()
        a.stop()
        b.stop()


@pytest.mark.parametrize("transport", ["siblings", "redis", "nats"])
def test_workers_share_events_and_sigterm_closes_streams(tmp_path: Path, transport: str) -> None:
    bus = [] if transport == "siblings" else ["--bus-url", BUSES[transport]]
    if bus and not _reachable(bus[1]):
        require_or_skip(f"{transport} is not reachable at {bus[1]}")
    args = ["--dir", "data", "--workers", "2", "--realtime-idle-timeout", "30",
            "--bus-channel", f"w_{os.getpid()}_{transport}", *bus]
    assert run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", "data", cwd=tmp_path).returncode == 0
    server = Server(tmp_path, *args)
    streams: list[Stream] = []
    try:
        _prepare(server.url)
        time.sleep(0.3)
        streams = [Stream(server.url) for _ in range(6)]  # the kernel spreads them over both workers
        for s in streams:
            _subscribe(server.url, s, "notes/*")
        for i in range(4):
            r = httpx.post(f"{server.url}/api/collections/notes/records", json={"title": str(i)}, timeout=10)
            assert r.status_code == 200
        for s in streams:
            assert [e[1]["record"]["title"] for e in s.wait_for(4)] == ["0", "1", "2", "3"]
        stopping = time.monotonic()
        assert server.stop() == 0
        for s in streams:
            assert s.ended.wait(10)
        assert time.monotonic() - stopping < 10
    finally:
        for s in streams:
            s.close()
        server.stop()


def test_idle_streams_close(tmp_path: Path) -> None:
    server = Server(tmp_path, "--dir", "data", "--realtime-idle-timeout", "0.5", "--realtime-max-lifetime", "60")
    try:
        stream = Stream(server.url)
        started = time.monotonic()
        assert stream.ended.wait(10)
        assert 0.4 < time.monotonic() - started < 5
        stream.close()
    finally:
        server.stop()
