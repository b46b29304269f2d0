"""Realtime against an attacker, on a real ``bastion serve`` (SQLite), with a bystander.

The attacker opens streams from one address until refused, subscribes each to 1000
long topics with filters (what the protocol allows), then writes records that every
one of its streams must be checked for, and never reads what it is sent. Meanwhile a
bystander checks ``/api/health`` every 50 ms and reads a record. The server must refuse
the streams and subscriptions past its bounds (429), keep serving the bystander, and not
grow without bound.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from bastion.testing import Server, run_cli

EMAIL, PASSWORD = "root@example.com", "realtime-attack-1"
PER_IP = 150


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bystander(threading.Thread):
    def __init__(self, url: str, record: str):
        super().__init__(daemon=True)
        self.url, self.record = url, record
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    ok = (http.get("/api/health").status_code == 200
                          and http.get(f"/api/collections/notes/records/{self.record}").status_code == 200)
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.monotonic() - started)
                self.failures += not ok
                time.sleep(0.05)


async def _open_stream(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str] | int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status = int((await reader.readline()).split()[1])
    if status != 200:
        writer.close()
        return status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    while True:  # the first chunk holds PB_CONNECT
        line = await reader.readline()
        if line.startswith(b"id:"):
            return reader, writer, line[3:].strip().decode()


async def _attack(url: str, port: int) -> tuple[int, int]:
    """Open streams until refused; subscribe each to as much as allowed. Returns the
    statuses seen: how many streams were refused, how many subscriptions were refused."""
    opened, refused_streams = [], 0
    for _ in range(PER_IP + 20):
        got = await _open_stream(port)
        if isinstance(got, int):
            assert got == 429
            refused_streams += 1
        else:
            opened.append(got)
    topics = [f"notes/*?options={json.dumps({'query': {'filter': f'title ~ {i!r} || id != {i!r}'}})}" + "x" * 80
              for i in range(1000)]
    refused_subscriptions = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _, _, client_id in opened:
            res = await http.post("/api/realtime", json={"clientId": client_id, "subscriptions": topics})
            assert res.status_code in (204, 429), res.text
            refused_subscriptions += res.status_code == 429
        for i in range(40):  # every write is checked for every subscription still held
            assert (await http.post("/api/collections/notes/records", json={"title": f"w{i}"})).status_code == 200
    await asyncio.sleep(2)  # the streams never read
    for _, writer, _ in opened:
        writer.close()
    return refused_streams, refused_subscriptions


def test_realtime_flood_is_bounded_and_the_bystander_served(tmp_path: Path) -> None:
    assert run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", "data", cwd=tmp_path).returncode == 0
    server = Server(tmp_path, "--dir", "data", "--realtime-max-per-ip", str(PER_IP))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            token = http.post("/api/collections/_superusers/auth-with-password",
                              json={"identity": EMAIL, "password": PASSWORD}).json()["token"]
            res = http.post("/api/collections", headers={"Authorization": token}, json={
                "name": "notes", "listRule": "", "viewRule": "", "createRule": "",
                "fields": [{"name": "title", "type": "text"}]})
            assert res.status_code == 200, res.text
            record = http.post("/api/collections/notes/records", json={"title": "kept"}).json()["id"]
        idle_rss = _rss_mib(server.proc.pid)
        bystander = Bystander(server.url, record)
        bystander.start()
        time.sleep(0.5)
        baseline = list(bystander.latencies)
        refused_streams, refused_subscriptions = asyncio.run(_attack(server.url, server.port))
        peak_rss = _rss_mib(server.proc.pid)
        bystander.stop.set()
        bystander.join()
        during = bystander.latencies[len(baseline):]
        print(f"\nbystander: before p50 {statistics.median(baseline) * 1000:.1f} ms; during the attack "
              f"p50 {statistics.median(during) * 1000:.1f} ms, max {max(during) * 1000:.0f} ms over "
              f"{len(during)} probes; RSS {idle_rss:.0f} -> {peak_rss:.0f} MiB; refused {refused_streams} "
              f"streams and {refused_subscriptions} subscriptions")
        assert refused_streams == 20  # past the per-address bound
        assert refused_subscriptions > 0  # the address's subscription budget ran out
        assert bystander.failures == 0
        assert statistics.median(during) < 0.5 and max(during) < 5.0
        assert peak_rss - idle_rss < 300
        with httpx.Client(base_url=server.url, timeout=10) as http:  # everything is released
            assert http.get("/api/health").status_code == 200
    finally:
        server.stop()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
