"""Records CRUD throughput of Bastion against a raw Starlette+SQLAlchemy ceiling.

For each backend (SQLite, PostgreSQL) and each target (Bastion, ``bench/raw_ceiling.py``):
start the server as one process on a fresh data dir / fresh PostgreSQL database, seed the
``posts`` collection with ~2,000 records, then load it with

* ``create``: ``POST /api/collections/posts/records`` with a small JSON body;
* ``get``:    ``GET /api/collections/posts/records/{id}`` with a random seeded id;

and report requests/s, p50, p99, errors and the server's RSS (VmRSS from
/proc/PID/status: idle after seeding, and after each scenario). One table at the end puts
Bastion beside the ceiling and gives Bastion as a % of it.

Load generator: ``wrk`` when installed (a Lua script picks random ids and builds POST
bodies), else a bounded asyncio + httpx generator in a separate process.

    .venv/bin/python bench/crud.py                      # default: 10 s per scenario
    .venv/bin/python bench/crud.py --quick              # 2 s per scenario
    .venv/bin/python bench/crud.py --backends sqlite --duration 5 --connections 64

Only 127.0.0.1 is loaded; every run is bounded in time; every process started here is
stopped by its PID (also on Ctrl-C and errors) and every database created is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
RECORDS_PATH = "/api/collections/posts/records"
SUPERUSER = ("bench@example.com", "bench-password-123")
COLLECTION = {
    "name": "posts", "listRule": "", "viewRule": "", "createRule": "",
    "fields": [
        {"name": "title", "type": "text"}, {"name": "body", "type": "text"},
        {"name": "views", "type": "number"}, {"name": "published", "type": "bool"},
    ],
}
FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
REQUEST_TIMEOUT_S = 5

# wrk runs this in each thread's own Lua state. Args after "--": mode, ids file, thread count.
WRK_LUA = r"""
local mode, ids_file, path
local ids = {}
local counter = 0
local threads_made = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function init(args)
  mode = args[1]
  ids_file = args[2]
  path = args[3]
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  if mode == "get" then
    for line in io.lines(ids_file) do
      if #line > 0 then ids[#ids + 1] = line end
    end
  end
end

local json_headers = { ["Content-Type"] = "application/json" }

function request()
  if mode == "get" then
    return wrk.format("GET", path .. "/" .. ids[math.random(#ids)], {})
  end
  counter = counter + 1
  local body = string.format(
    '{"title":"bench %d-%d","body":"%s","views":%d,"published":%s}',
    tid or 0, counter, "FILLER", counter % 1000, (counter % 2 == 0) and "true" or "false")
  return wrk.format("POST", path, json_headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
""".replace("FILLER", FILLER)


# --------------------------------------------------------------------------- processes
class Processes:
    """Every child started here, stopped by PID (TERM, then KILL) on the way out."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], log: Path | None = None, **kw: Any) -> subprocess.Popen[bytes]:
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                start_new_session=True, **kw)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self._procs)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of the process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --------------------------------------------------------------------------- PostgreSQL
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    try:
        for stmt in statements:
            await conn.execute(stmt)
    finally:
        await conn.close()


def pg_unreachable_reason() -> str | None:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "skip"
        return f"{type(exc).__name__}: {exc}"
    return None


def pg_create(dbname: str) -> None:
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)', f'CREATE DATABASE "{dbname}"'))


def pg_drop(dbname: str) -> None:
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


# --------------------------------------------------------------------------- HTTP helpers
def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{log.read_text()[-2000:]}")


def post_body(n: int) -> dict[str, Any]:
    return {"title": f"seed {n}", "body": FILLER, "views": n % 1000, "published": n % 2 == 0}


async def seed(base: str, count: int, token: str | None) -> list[str]:
    """Create the collection (Bastion only) and ``count`` records; return their ids."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        if token is not None:
            r = await client.post("/api/collections", json=COLLECTION, headers={"Authorization": token})
            r.raise_for_status()
        ids: list[str] = []
        queue = iter(range(count))

        async def worker() -> None:
            for n in queue:
                r = await client.post(RECORDS_PATH, json=post_body(n))
                r.raise_for_status()
                ids.append(r.json()["id"])

        await asyncio.gather(*(worker() for _ in range(16)))
    return ids


def superuser_token(base: str) -> str:
    import httpx

    r = httpx.post(f"{base}/api/collections/_superusers/auth-with-password",
                   json={"identity": SUPERUSER[0], "password": SUPERUSER[1]}, timeout=30)
    r.raise_for_status()
    return str(r.json()["token"])


# --------------------------------------------------------------------------- load generators
@dataclass
class LoadResult:
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    rss_after_mib: float | None = None
    cpu_us_per_req: float | None = None
    error_detail: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Wrk:
    name = "wrk"

    def __init__(self, procs: Processes, workdir: Path, threads: int):
        self.procs = procs
        self.threads = threads
        self.script = workdir / "bench.lua"
        self.script.write_text(WRK_LUA)

    def run(self, base: str, mode: str, ids_file: Path, seconds: float, connections: int) -> LoadResult:
        out = self.script.parent / f"wrk-{mode}-{time.monotonic_ns()}.out"
        args = ["wrk", "-t", str(min(self.threads, connections)), "-c", str(connections),
                "-d", f"{max(1, round(seconds))}s", "--timeout", f"{REQUEST_TIMEOUT_S}s",
                "-s", str(self.script), base, "--", mode, str(ids_file), RECORDS_PATH]
        proc = self.procs.start(args, log=out)
        try:
            proc.wait(timeout=seconds + 30)
        finally:
            self.procs.stop(proc)
        text = out.read_text()
        line = next((x for x in text.splitlines() if x.startswith("BENCH_RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result:\n{text[-2000:]}")
        d = json.loads(line.split(" ", 1)[1])
        detail = {k[4:]: v for k, v in d.items() if k.startswith("err_") and v}
        return LoadResult(
            requests=d["requests"], seconds=d["duration_us"] / 1e6, errors=sum(detail.values()),
            p50_ms=d["p50_us"] / 1000, p99_ms=d["p99_us"] / 1000, error_detail=detail,
        )


class PyLoad:
    """Fallback: ``python bench/crud.py _loadgen ...`` in its own process, asyncio + httpx."""

    name = "python asyncio+httpx"

    def __init__(self, procs: Processes, workdir: Path):
        self.procs = procs
        self.workdir = workdir

    def run(self, base: str, mode: str, ids_file: Path, seconds: float, connections: int) -> LoadResult:
        out = self.workdir / f"py-{mode}-{time.monotonic_ns()}.out"
        args = [sys.executable, str(Path(__file__).resolve()), "_loadgen", base, mode, str(ids_file),
                str(seconds), str(connections)]
        proc = self.procs.start(args, log=out)
        try:
            proc.wait(timeout=seconds + 30)
        finally:
            self.procs.stop(proc)
        text = out.read_text()
        line = next((x for x in text.splitlines() if x.startswith("BENCH_RESULT ")), None)
        if line is None:
            raise RuntimeError(f"load generator printed no result:\n{text[-2000:]}")
        d = json.loads(line.split(" ", 1)[1])
        return LoadResult(requests=d["requests"], seconds=d["seconds"], errors=d["errors"],
                          p50_ms=d["p50_ms"], p99_ms=d["p99_ms"], error_detail=d["error_detail"])


async def _loadgen(base: str, mode: str, ids_file: str, seconds: float, connections: int) -> None:
    import httpx

    ids = [x for x in Path(ids_file).read_text().split() if x] if mode == "get" else []
    latencies: list[float] = []
    detail: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        start = time.monotonic()
        deadline = start + seconds

        async def worker(w: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                t0 = time.perf_counter()
                try:
                    if mode == "get":
                        r = await client.get(f"{RECORDS_PATH}/{random.choice(ids)}")
                    else:
                        r = await client.post(RECORDS_PATH, json=post_body(w * 1_000_000 + n))
                    if r.status_code >= 400:
                        detail["status"] = detail.get("status", 0) + 1
                except httpx.TimeoutException:
                    detail["timeout"] = detail.get("timeout", 0) + 1
                except httpx.HTTPError:
                    detail["connect"] = detail.get("connect", 0) + 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(w) for w in range(connections)))
        elapsed = time.monotonic() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    print("BENCH_RESULT " + json.dumps({
        "requests": len(latencies), "seconds": elapsed, "errors": sum(detail.values()),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "error_detail": detail,
    }), flush=True)


# --------------------------------------------------------------------------- one target
@dataclass
class TargetResult:
    rss_idle_mib: float | None = None
    scenarios: dict[str, LoadResult] = field(default_factory=dict)


def start_bastion(procs: Processes, root: Path, port: int, db_url: str) -> subprocess.Popen[bytes]:
    exe = str(VENV_BIN / "bastion")
    common = ["--dir", str(root / "data"), "--migrations-dir", str(root / "migrations")]
    if db_url:
        common += ["--database-url", db_url]
    setup = subprocess.run([exe, "superuser", "upsert", *SUPERUSER, *common],
                           capture_output=True, text=True, timeout=120)
    if setup.returncode != 0:
        raise RuntimeError(f"bastion superuser upsert failed:\n{setup.stdout}{setup.stderr}")
    return procs.start([exe, "serve", *common, "--http", f"{HOST}:{port}"], log=root / "server.log")


def start_ceiling(procs: Processes, root: Path, port: int, db_url: str) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    if not db_url:
        db_url = f"sqlite+aiosqlite:///{root / 'data.db'}"
    elif db_url.startswith("postgresql://"):
        db_url = "postgresql+asyncpg://" + db_url[len("postgresql://"):]
    return procs.start([sys.executable, str(HERE / "raw_ceiling.py"), "--http", f"{HOST}:{port}",
                        "--database-url", db_url], log=root / "server.log")


def bench_target(target: str, backend: str, args: argparse.Namespace, procs: Processes,
                 loadgen: Wrk | PyLoad, workdir: Path, pg_dbs: list[str]) -> TargetResult:
    root = workdir / f"{backend}-{target}"
    root.mkdir(parents=True, exist_ok=True)
    db_url = ""
    if backend == "postgres":
        dbname = f"bench_{os.getpid()}_{target}"
        pg_create(dbname)
        pg_dbs.append(dbname)
        db_url = pg_url(dbname)
    port = free_port()
    base = f"http://{HOST}:{port}"
    starter = start_bastion if target == "bastion" else start_ceiling
    server = starter(procs, root, port, db_url)
    try:
        wait_ready(base, server, root / "server.log")
        token = superuser_token(base) if target == "bastion" else None
        t0 = time.monotonic()
        ids = asyncio.run(seed(base, args.records, token))
        ids_file = root / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        print(f"  {backend:8} {target:8} pid {server.pid}: seeded {len(ids)} records "
              f"in {time.monotonic() - t0:.1f}s", flush=True)
        result = TargetResult(rss_idle_mib=rss_mib(server.pid))
        for mode in ("create", "get"):
            if args.warmup > 0:
                loadgen.run(base, mode, ids_file, args.warmup, args.connections)
            cpu0 = cpu_seconds(server.pid)
            res = loadgen.run(base, mode, ids_file, args.duration, args.connections)
            cpu1 = cpu_seconds(server.pid)
            res.rss_after_mib = rss_mib(server.pid)
            if cpu0 is not None and cpu1 is not None and res.requests:
                res.cpu_us_per_req = (cpu1 - cpu0) * 1e6 / res.requests
            result.scenarios[mode] = res
            detail = f" {res.error_detail}" if res.error_detail else ""
            print(f"  {backend:8} {target:8} {mode:6}: {res.rps:8.0f} req/s  p50 {res.p50_ms:6.2f} ms  "
                  f"p99 {res.p99_ms:6.2f} ms  errors {res.errors}{detail}  "
                  f"server CPU {res.cpu_us_per_req or 0:.0f} us/req  (loadavg {loadavg()})", flush=True)
        if server.poll() is not None:
            raise RuntimeError(f"{target} exited during the run:\n{(root / 'server.log').read_text()[-2000:]}")
        return result
    finally:
        procs.stop(server)


# --------------------------------------------------------------------------- report
def _mib(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def _us(v: float | None) -> str:
    return "?" if v is None else f"{v:,.0f}"


def render(results: dict[str, dict[str, TargetResult]]) -> str:
    head = ("| backend | scenario | Bastion req/s | ceiling req/s | Bastion % of ceiling "
            "| Bastion p50 / p99 ms | ceiling p50 / p99 ms | errors Bastion / ceiling "
            "| server CPU µs/req Bastion / ceiling "
            "| RSS MiB Bastion idle → after | RSS MiB ceiling idle → after |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for backend, targets in results.items():
        b, c = targets["bastion"], targets["ceiling"]
        for mode in ("create", "get"):
            rb, rc = b.scenarios[mode], c.scenarios[mode]
            pct = f"{100 * rb.rps / rc.rps:.0f} %" if rc.rps else "?"
            lines.append(
                f"| {backend} | {mode} | {rb.rps:,.0f} | {rc.rps:,.0f} | {pct} "
                f"| {rb.p50_ms:.2f} / {rb.p99_ms:.2f} | {rc.p50_ms:.2f} / {rc.p99_ms:.2f} "
                f"| {rb.errors} / {rc.errors} "
                f"| {_us(rb.cpu_us_per_req)} / {_us(rc.cpu_us_per_req)} "
                f"| {_mib(b.rss_idle_mib)} → {_mib(rb.rss_after_mib)} "
                f"| {_mib(c.rss_idle_mib)} → {_mib(rc.rss_after_mib)} |")
    return "\n".join(lines)


def as_json(results: dict[str, dict[str, TargetResult]]) -> dict[str, Any]:
    return {
        backend: {
            target: {
                "rss_idle_mib": t.rss_idle_mib,
                "scenarios": {m: {**r.__dict__, "rps": r.rps} for m, r in t.scenarios.items()},
            }
            for target, t in targets.items()
        }
        for backend, targets in results.items()
    }


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Bastion records create/get vs a raw Starlette ceiling.")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds before each scenario (default 3)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--records", type=int, default=2000, help="records seeded before the load (default 2000)")
    p.add_argument("--quick", action="store_true", help="2 s per scenario, 1 s warm-up")
    p.add_argument("--backends", default="sqlite,postgres", help="comma list of sqlite,postgres")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                   help="wrk if installed (auto), or force one")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 2.0
        args.warmup = 1.0 if args.warmup is None else args.warmup
    if args.warmup is None:
        args.warmup = 3.0
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgres"}
    if unknown:
        p.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if not 1 <= args.connections <= 1024 or not 0 < args.duration <= 300 or not 0 <= args.warmup <= 60:
        p.error("bounds: 1 <= --connections <= 1024, 0 < --duration <= 300, 0 <= --warmup <= 60")
    return args


def _sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, _sigterm)  # also when started with SIGINT ignored (e.g. `cmd &`)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    pg_dbs: list[str] = []
    results: dict[str, dict[str, TargetResult]] = {}
    started = time.monotonic()
    try:
        use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
        if args.loadgen == "wrk" and not shutil.which("wrk"):
            print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
            return 2
        loadgen: Wrk | PyLoad = Wrk(procs, workdir, args.threads) if use_wrk else PyLoad(procs, workdir)
        if use_wrk:
            lg_desc = f"wrk, {min(args.threads, args.connections)} threads"
        else:
            lg_desc = f"{loadgen.name} ({'forced by --loadgen' if args.loadgen == 'python' else 'wrk not found'})"
        print(f"Load generator: {lg_desc}; {args.connections} connections; {args.duration:g} s per scenario "
              f"after {args.warmup:g} s warm-up; {args.records} seeded records; 127.0.0.1 only.")
        print(f"Machine: {os.cpu_count()} CPUs, {_cpu_model()}, Python {sys.version.split()[0]}; "
              f"load average before the run: {loadavg()}", flush=True)
        if float(loadavg().split()[0]) > 0.5:
            print("  note: the machine is not idle; other processes skew req/s and latency "
                  "(the server CPU µs/req column is less affected).", flush=True)
        for backend in args.backends:
            if backend == "postgres":
                reason = pg_unreachable_reason()
                if reason:
                    print(f"Skipping PostgreSQL: {PG_ADMIN_URL} unreachable ({reason})", flush=True)
                    continue
            results[backend] = {}
            for target in ("bastion", "ceiling"):
                results[backend][target] = bench_target(target, backend, args, procs, loadgen, workdir, pg_dbs)
        if not results:
            print("Nothing was measured.")
            return 1
        print(f"\nResults (load generator: {lg_desc}; {args.connections} connections; "
              f"{args.duration:g} s per scenario; total run {time.monotonic() - started:.0f} s; "
              f"load average after: {loadavg()})\n")
        print(render(results))
        if args.json:
            args.json.write_text(json.dumps({"loadgen": lg_desc, "connections": args.connections,
                                             "duration": args.duration, "results": as_json(results)}, indent=2))
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; stopping servers.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        for dbname in pg_dbs:
            try:
                pg_drop(dbname)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                print(f"could not drop database {dbname}: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        base, mode, ids_file, seconds, conns = sys.argv[2:7]
        asyncio.run(_loadgen(base, mode, ids_file, float(seconds), int(conns)))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
