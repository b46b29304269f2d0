"""``bastion serve --workers N`` end to end: real processes sharing one address.

Each request below goes on a fresh connection (``Connection: close``), so the kernel
hands it to whichever worker accepts first: what one worker changed must hold on the
next request whichever worker takes it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from bastion.cli.config import Config
from bastion.cli.workers import Supervisor
from bastion.testing import Server, run_cli

EMAIL, PASSWORD = "root@example.com", "workers-pass-123"
FRESH = {"Connection": "close"}


def children(pid: int) -> list[int]:
    """The worker processes of a supervisor (its children but the multiprocessing tracker)."""
    out = []
    for line in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{line}/cmdline").read_bytes()
        if b"bastion.cli.worker" in cmdline and b"--prepare" not in cmdline:
            out.append(int(line))
    return out


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def start(tmp_path: Path, args: list[str], workers: int = 2) -> tuple[Server, str]:
    setup = run_cli("superuser", "upsert", EMAIL, PASSWORD, *args, cwd=tmp_path)
    assert setup.returncode == 0, setup.stderr
    server = Server(tmp_path, *args, "--workers", str(workers), "--shutdown-grace", "3")
    r = httpx.post(f"{server.url}/api/collections/_superusers/auth-with-password",
                   json={"identity": EMAIL, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return server, r.json()["token"]


@pytest.fixture
def served(database_url: str, tmp_path: Path):
    args = ["--dir", "data"] + (["--database-url", database_url] if database_url else [])
    server, token = start(tmp_path, args)
    try:
        yield server, token
    finally:
        server.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_change_made_on_one_worker_holds_on_the_next_request_on_any(served) -> None:
    server, token = served
    su = {"Authorization": token, **FRESH}
    workers = children(server.proc.pid)
    assert len(workers) == 2
    before = {pid: cpu_ticks(pid) for pid in workers}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.post("/api/collections", headers=su, json={
            "name": "notes", "listRule": None, "fields": [{"name": "text", "type": "text"}]})
        assert r.status_code == 200, r.text
        for round_ in range(12):
            public = round_ % 2 == 0
            r = await http.patch("/api/collections/notes", headers=su,
                                 json={"listRule": "" if public else None})
            assert r.status_code == 200, r.text
            # eight guests at once, each on a new connection, right after the change
            answers = await asyncio.gather(*(
                http.get("/api/collections/notes/records", headers=FRESH) for _ in range(8)))
            assert [a.status_code for a in answers] == [200 if public else 403] * 8, round_
        # a new collection is there for the very next request too
        r = await http.post("/api/collections", headers=su, json={"name": "late", "listRule": "", "fields": []})
        assert r.status_code == 200, r.text
        answers = await asyncio.gather(*(
            http.get("/api/collections/late/records", headers=FRESH) for _ in range(8)))
        assert {a.status_code for a in answers} == {200}
        r = await http.patch("/api/settings", headers=su, json={"meta": {"appName": "Renamed"}})
        assert r.status_code == 200, r.text
        answers = await asyncio.gather(*(http.get("/api/settings", headers=su) for _ in range(8)))
        assert {a.json()["meta"]["appName"] for a in answers} == {"Renamed"}
    # both workers took part (each burned CPU answering)
    assert all(cpu_ticks(pid) > before[pid] for pid in workers), "one worker served nothing"


async def test_workers_count_rate_limits_together(tmp_path: Path) -> None:
    server, token = start(tmp_path, ["--dir", "data"])
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            r = await http.patch("/api/settings", headers={"Authorization": token}, json={"rateLimits": {
                "enabled": True, "rules": [{"label": "/api/health", "audience": "", "duration": 60,
                                            "maxRequests": 10}]}})
            assert r.status_code == 200, r.text
            codes = []
            for _ in range(4):
                answers = await asyncio.gather(*(http.get("/api/health", headers=FRESH) for _ in range(8)))
                codes += [a.status_code for a in answers]
        # per-process counters would let each of the two workers allow ten
        assert codes.count(200) == 10 and codes.count(429) == 22
    finally:
        server.stop()


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    server, _ = start(tmp_path, ["--dir", "data"])
    try:
        first = children(server.proc.pid)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = children(server.proc.pid)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no new worker: {children(server.proc.pid)}")
        for _ in range(20):
            assert httpx.get(f"{server.url}/api/health", headers=FRESH, timeout=10).status_code == 200
        assert "exited with code -9; starting another" in server.log.read_text()
    finally:
        assert server.stop() == 0


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    server, _ = start(tmp_path, ["--dir", "data"], workers=3)
    workers = children(server.proc.pid)
    assert len(workers) == 3
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 3 + 5
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    out = server.log.read_text()
    assert "2 workers" not in out and "3 workers" in out and out.rstrip().endswith("Bastion stopped.")


def test_a_worker_that_keeps_dying_stops_the_supervisor(tmp_path: Path, capsys) -> None:
    # a worker that cannot start, as with a database refusing every connection
    exits_at_once = [sys.executable, "-c", "raise SystemExit(3)"]  # the index is appended
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        supervisor = Supervisor(Config(data_dir=tmp_path, workers=2, shutdown_grace=1), sock, exits_at_once)
        started = time.monotonic()
        assert supervisor.run() == 1
        assert time.monotonic() - started < 30
    finally:
        sock.close()
    err = capsys.readouterr().err
    assert "exited 5 times within a minute (last exit code 3); stopping" in err
    assert all(p.poll() is not None for p in supervisor.procs.values())


def test_secrets_stay_off_the_workers_command_lines(tmp_path: Path) -> None:
    """Every user of a machine can read command lines (``ps``); a worker's configuration,
    which may hold the database password or the encryption key, goes by its environment
    (``/proc/PID/environ`` is readable by its owner only)."""
    key = "k" * 40
    server = Server(tmp_path, "--dir", "data", "--workers", "2", "--encryption-key", key)
    try:
        workers = children(server.proc.pid)
        assert len(workers) == 2
        for pid in workers:
            assert key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        assert server.stop() == 0


def test_zero_workers_means_one_per_core(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    server = Server(tmp_path, "--dir", "data", "--workers", "0")
    try:
        # one core: a single process serving by itself, no supervisor
        assert len(children(server.proc.pid)) == (cores if cores > 1 else 0)
        assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
    finally:
        assert server.stop() == 0
