"""Faults under load against a real ``bastion serve`` process.

* PostgreSQL stopped and started again (a private cluster, never the shared one):
  requests fail fast with 503 + Retry-After, the server recovers by itself, and every
  acknowledged create is in the database.
* SIGTERM: in-flight requests finish, new connections are refused, the process exits
  within ``--shutdown-grace``; a second SIGTERM forces the exit.
* SQLite locked by another process: writes wait up to ``--sqlite-busy-timeout`` and then
  get 503 + Retry-After, never 500; reads go on.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bastion.adapters.database import open_database
from bastion.adapters.db_base import IDLE_PING_S
from bastion.core.errors import Unavailable
from bastion.testing import Server, run_cli
from tests.robustness import pg_cluster
from tests.services import require_or_skip

EMAIL, PASSWORD = "root@example.com", "root-password-1"
FAIL_FAST_S = 3.0  # no request may take longer than this while the database is down
NOTES = {"name": "notes", "listRule": "", "viewRule": "", "createRule": "",
         "fields": [{"name": "marker", "type": "text"}, {"name": "twin", "type": "text"},
                    {"name": "body", "type": "text"}]}


def start_server(root: Path, db_args: tuple[str, ...], *args: str) -> Server:
    res = run_cli("superuser", "upsert", EMAIL, PASSWORD, *db_args, cwd=root)
    assert res.returncode == 0, res.stderr
    srv = Server(root, *db_args, *args)
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        token = http.post("/api/collections/_superusers/auth-with-password",
                          json={"identity": EMAIL, "password": PASSWORD}).json()["token"]
        res = http.post("/api/collections", headers={"Authorization": token}, json=NOTES)
        assert res.status_code == 200, res.text
    return srv


# --------------------------------------------------------------------------- load
@dataclass
class Outcome:
    started: float
    seconds: float
    kind: str
    status: int  # 0: the client saw a transport error
    retry_after: str | None = None
    shape_ok: bool = True
    marker: str = ""
    record_id: str = ""
    error: str = ""


@dataclass
class Load:
    """Worker threads alternating a create (unique marker) and a read of what they created."""

    base: str
    workers: int = 6
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self._threads = [threading.Thread(target=self._run, args=(w,), daemon=True) for w in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        return self.outcomes

    def _run(self, worker: int) -> None:
        mine: list[str] = []
        with httpx.Client(base_url=self.base, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                i += 1
                marker = f"w{worker}-{i}"
                self._one(http, "create", "POST", "/api/collections/notes/records",
                          {"marker": marker, "twin": marker, "body": "x" * 200}, marker, mine)
                if mine:
                    self._one(http, "read", "GET", f"/api/collections/notes/records/{mine[-1]}", None, "", mine)
                time.sleep(0.01)

    def _one(self, http: httpx.Client, kind: str, method: str, path: str, body: dict | None,
             marker: str, mine: list[str]) -> None:
        started = time.monotonic()
        try:
            res = http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            self.outcomes.append(Outcome(started, time.monotonic() - started, kind, 0, error=repr(exc)))
            return
        out = Outcome(started, time.monotonic() - started, kind, res.status_code, res.headers.get("retry-after"))
        doc = res.json()
        if res.status_code >= 400:
            out.shape_ok = set(doc) - {"detail"} == {"status", "message", "data"} and doc["status"] == res.status_code
        elif kind == "create":
            out.marker, out.record_id = marker, doc["id"]
            mine.append(doc["id"])
        self.outcomes.append(out)


def assert_only_ok_or_503(outcomes: list[Outcome]) -> list[Outcome]:
    """Every answer is a 2xx or a well-formed 503 with Retry-After; the 503s are returned."""
    bad = [o for o in outcomes if not (200 <= o.status < 300 or o.status == 503)]
    assert not bad, bad[:5]
    unavailable = [o for o in outcomes if o.status == 503]
    assert all(o.shape_ok and o.retry_after and int(o.retry_after) >= 1 for o in unavailable), unavailable[:3]
    return unavailable


# --------------------------------------------------------------------------- PostgreSQL
@pytest.fixture
def cluster():
    reason = pg_cluster.unavailable_reason()
    if reason:
        require_or_skip(reason)
    pg = pg_cluster.PgCluster().create()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


async def _rows(url: str) -> list[dict]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"), timeout=5)
    try:
        return [dict(r) for r in await conn.fetch("SELECT id, marker, twin FROM notes")]
    finally:
        await conn.close()


def test_postgres_restart_under_load(cluster, tmp_path):
    srv = start_server(tmp_path, ("--database-url", cluster.url), "--query-timeout", "5")
    try:
        load = Load(srv.url).start()
        time.sleep(2)
        down_at = time.monotonic()
        cluster.stop("fast")
        time.sleep(3)
        cluster.start()
        up_at = time.monotonic()
        deadline = up_at + 15
        while time.monotonic() < deadline and not any(
                o.kind == "create" and o.status == 200 and o.started > up_at for o in list(load.outcomes)):
            time.sleep(0.1)
        time.sleep(2)
        outcomes = load.stop()
    finally:
        srv.stop()

    assert not [o for o in outcomes if o.status == 0], [o.error for o in outcomes if o.status == 0][:3]
    unavailable = assert_only_ok_or_503(outcomes)
    assert unavailable, "no request saw the outage: the test did not test anything"
    assert all(down_at - 1 <= o.started <= up_at + 5 for o in unavailable), "503 outside the outage"
    slowest = max(outcomes, key=lambda o: o.seconds)
    assert slowest.seconds < FAIL_FAST_S, slowest
    recovered_at = min(o.started for o in outcomes if o.kind == "create" and o.status == 200 and o.started > up_at)
    assert recovered_at - up_at < 5, "no create succeeded within 5 s of the restart"
    after = [o for o in outcomes if o.started > recovered_at + 0.5]
    assert len(after) > 20 and all(o.status == 200 for o in after), "failures went on after recovering"

    print(f"\nPostgreSQL restart: {len(outcomes)} requests, {len(unavailable)} answered 503, slowest "
          f"{slowest.seconds * 1000:.0f} ms, first create {recovered_at - up_at:.2f} s after the restart")
    rows = {r["id"]: r for r in asyncio.run(_rows(cluster.url))}
    acknowledged = [o for o in outcomes if o.kind == "create" and o.status == 200]
    lost = [o for o in acknowledged if rows.get(o.record_id, {}).get("marker") != o.marker]
    assert not lost, f"{len(lost)} acknowledged creates are not in the database: {lost[:3]}"
    assert all(r["marker"] == r["twin"] and r["marker"] for r in rows.values()), "a half-written record"


async def test_postgres_restart_while_idle_costs_no_request(cluster, tmp_path):
    db = open_database(cluster.url, tmp_path)
    try:
        async with db.read() as conn:
            assert await conn.scalar(sa.select(1)) == 1
        cluster.stop("fast")
        cluster.start()
        await asyncio.sleep(IDLE_PING_S + 0.2)
        async with db.read() as conn:  # the pooled connection is dead: pinged, replaced
            assert await conn.scalar(sa.select(1)) == 1
    finally:
        await db.close()


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:{port}/postgres",
    "mysql://root@127.0.0.1:{port}/test",
], ids=["postgres", "mariadb"])
async def test_unreachable_database_is_503_fast(url, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = open_database(url.format(port=port), tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            async with db.read() as conn:
                await conn.scalar(sa.select(1))
        with pytest.raises(Unavailable):
            async with db.transaction():
                pass
        assert time.monotonic() - started < FAIL_FAST_S
    finally:
        await db.close()


# --------------------------------------------------------------------------- SIGTERM
@dataclass
class Call:
    sent_at: float  # when the whole request had been written; 0 if connecting failed
    status: int  # 0: no complete response
    error: str = ""


def one_call(port: int, method: str, path: str, body: bytes | None) -> Call:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        try:
            conn.connect()
        except OSError as exc:
            return Call(0.0, 0, f"connect: {exc!r}")
        headers = {"Connection": "close", "Content-Type": "application/json"}
        try:
            conn.request(method, path, body=body, headers=headers)
        except OSError as exc:
            return Call(0.0, 0, f"send: {exc!r}")
        sent = time.monotonic()
        try:
            res = conn.getresponse()
            res.read()
            return Call(sent, res.status)
        except (OSError, http.client.HTTPException) as exc:
            return Call(sent, 0, f"read: {exc!r}")
    finally:
        conn.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_in_flight_requests(tmp_path, workers):
    srv = start_server(tmp_path, ("--dir", "data"), "--shutdown-grace", "10", "--workers", workers)
    calls: list[Call] = []
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        for i in range(300):
            http.post("/api/collections/notes/records", json={"marker": f"m{i}", "twin": f"m{i}", "body": "y" * 500})
    stop = threading.Event()

    def worker(n: int) -> None:
        while not stop.is_set():
            if n % 2:
                call = one_call(srv.port, "GET", "/api/collections/notes/records?perPage=300", None)
            else:
                call = one_call(srv.port, "POST", "/api/collections/notes/records", b'{"marker":"t","twin":"t"}')
            calls.append(call)
            if call.error.startswith("connect"):
                return

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    signalled = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGTERM)
    code = srv.proc.wait(timeout=10 + 5)
    exited = time.monotonic()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    assert code == 0
    assert exited - signalled < 10, "did not exit within the shutdown grace period"
    before = [c for c in calls if c.sent_at and c.sent_at < signalled]
    assert len(before) > 20
    assert all(c.status == 200 for c in before), [c for c in before if c.status != 200][:5]
    assert not [c for c in calls if c.status >= 500]
    refused = [c for c in calls if c.error.startswith("connect")]
    assert len(refused) == len(threads), "new connections were not refused after the signal"
    assert "Bastion stopped." in srv.log.read_text()


def hold_a_request_open(port: int) -> socket.socket:
    """A request whose body never finishes: in flight until the server gives up on it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /api/collections/notes/records HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"marker\":")
    time.sleep(0.3)
    return sock


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_grace_period_bounds_a_stuck_request_and_a_second_signal_forces_exit(tmp_path):
    srv = start_server(tmp_path, ("--dir", "data"), "--shutdown-grace", "3", "--read-timeout", "60")
    sock = hold_a_request_open(srv.port)
    signalled = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGTERM)
    time.sleep(1)
    assert srv.proc.poll() is None, "exited at once although a request was in flight"
    assert refused(srv.port)
    assert srv.proc.wait(timeout=3 + 4) == 0
    assert 2.5 < time.monotonic() - signalled < 3 + 4
    sock.close()

    srv = Server(tmp_path, "--dir", "data", "--shutdown-grace", "60", "--read-timeout", "60")
    sock = hold_a_request_open(srv.port)
    os.kill(srv.proc.pid, signal.SIGTERM)
    time.sleep(1)
    assert srv.proc.poll() is None
    forced = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGTERM)
    srv.proc.wait(timeout=5)
    assert time.monotonic() - forced < 3
    sock.close()


# --------------------------------------------------------------------------- SQLite locked
def hold_write_lock(db: Path, seconds: float) -> None:
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def test_sqlite_locked_by_another_process(tmp_path):
    busy = 1.5
    srv = start_server(tmp_path, ("--dir", "data"), "--sqlite-busy-timeout", str(busy))
    try:
        load = Load(srv.url, workers=4).start()
        time.sleep(1)
        short_from = time.monotonic()
        hold_write_lock(tmp_path / "data" / "data.db", busy / 3)  # shorter than the busy timeout
        short_to = time.monotonic()
        time.sleep(1)
        long_from = time.monotonic()
        hold_write_lock(tmp_path / "data" / "data.db", busy * 3)  # longer: writes must give up
        long_to = time.monotonic()
        time.sleep(1.5)
        outcomes = load.stop()
    finally:
        srv.stop()

    assert not [o for o in outcomes if o.status == 0]
    unavailable = assert_only_ok_or_503(outcomes)
    assert not [o for o in unavailable if short_from - 0.5 < o.started < short_to], "short lock gave 503"
    assert [o for o in unavailable if long_from <= o.started <= long_to], "long lock gave no 503"
    assert all(o.kind == "create" for o in unavailable), "a read failed: readers must not wait for writers"
    assert max(o.seconds for o in outcomes) < 2 * busy + 1.5
    reads_during_lock = [o for o in outcomes if o.kind == "read" and long_from < o.started < long_to - 0.5]
    assert reads_during_lock and max(o.seconds for o in reads_during_lock) < 1.0
    tail = [o for o in outcomes if o.started > long_to + 0.5]
    assert tail and all(o.status == 200 for o in tail)

    conn = sqlite3.connect(tmp_path / "data" / "data.db")
    try:
        rows = dict(conn.execute("SELECT id, marker FROM notes").fetchall())
    finally:
        conn.close()
    acknowledged = [o for o in outcomes if o.kind == "create" and o.status == 200]
    assert all(rows.get(o.record_id) == o.marker for o in acknowledged)
