"""What the benchmarks share: processes stopped by PID, /proc readings, PostgreSQL scratch
databases, starting Bastion or the raw ceiling, running wrk, and formatting.

Used by ``bench/crud.py``, ``bench/list.py``, ``bench/auth.py`` and ``bench/compare.py`` (each imports it as
``common``: a script's own folder is first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SUPERUSER = ("bench@example.com", "bench-password-123")
REQUEST_TIMEOUT_S = 5

# Appended to every wrk script: one machine-readable line with the summary.
WRK_DONE_LUA = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


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


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a Node server may fork helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_rss_mib(pid: int) -> float | None:
    """The summed VmRSS of ``pid`` and its descendants (None once ``pid`` is gone)."""
    values = [rss_mib(p) for p in process_tree(pid)]
    return sum(v for v in values if v is not None) if values[0] is not None else None


def tree_cpu_seconds(pid: int) -> float | None:
    values = [cpu_seconds(p) for p in process_tree(pid)]
    return sum(v for v in values if v is not None) if values[0] is not None else None


class PeakRss:
    """The highest tree RSS of a server, sampled every ``interval`` s in a thread."""

    def __init__(self, pid: int, interval: float = 0.5):
        import threading

        self.pid = pid
        self.interval = interval
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        rss = tree_rss_mib(self.pid)
        if rss is not None and (self.peak is None or rss > self.peak):
            self.peak = rss

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        return self.peak


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine_line() -> str:
    return (f"Machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
            f"load average before the run: {loadavg()}")


def warn_if_busy() -> None:
    if float(loadavg().split()[0]) > 0.5:
        print("  note: the machine is not idle; other processes skew req/s and latency "
              "(the server CPU µs/req column is less affected).", flush=True)


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


class PgBackendCpu:
    """CPU time of the PostgreSQL backend processes serving one database, over a run.

    Backends are found in /proc by their process title (``postgres: ... USER DBNAME
    HOST(PORT) state``), sampled every ``interval`` s in a thread, so a backend that lives
    shorter than that (a pool overflow connection) may be missed or cut short.
    """

    def __init__(self, dbname: str, interval: float = 0.2):
        import threading

        self.needle = f" {dbname} "
        self.interval = interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _backends(self) -> list[int]:
        pids = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    title = f.read(300).replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres: ") and self.needle in title:
                pids.append(int(entry.name))
        return pids

    def _sample(self, initial: bool) -> None:
        for pid in self._backends():
            cpu = cpu_seconds(pid)
            if cpu is None:
                continue
            if pid not in self.first:
                self.first[pid] = cpu if initial else 0.0  # a new backend: all its CPU is in the run
            self.last[pid] = cpu

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(initial=False)

    def start(self) -> PgBackendCpu:
        self._sample(initial=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Seconds of CPU the backends used since ``start``."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample(initial=False)
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


# --------------------------------------------------------------------------- servers
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


def superuser_token(base: str) -> str:
    import httpx

    r = httpx.post(f"{base}/api/collections/_superusers/auth-with-password",
                   json={"identity": SUPERUSER[0], "password": SUPERUSER[1]}, timeout=30)
    r.raise_for_status()
    return str(r.json()["token"])


def start_bastion(procs: Processes, root: Path, port: int, db_url: str, workers: int = 1) -> subprocess.Popen[bytes]:
    exe = str(VENV_BIN / "bastion")
    common = ["--dir", str(root / "data"), "--migrations-dir", str(root / "migrations")]
    if db_url:
        common += ["--database-url", db_url]
    setup = subprocess.run([exe, "superuser", "upsert", *SUPERUSER, *common],
                           capture_output=True, text=True, timeout=120)
    if setup.returncode != 0:
        raise RuntimeError(f"bastion superuser upsert failed:\n{setup.stdout}{setup.stderr}")
    return procs.start([exe, "serve", *common, "--http", f"{HOST}:{port}", "--workers", str(workers)],
                       log=root / "server.log")


def ceiling_url(root: Path, db_url: str) -> str:
    """The SQLAlchemy URL the ceiling uses: its own SQLite file, or the asyncpg URL."""
    if not db_url:
        return f"sqlite:///{root / 'data.db'}"
    if db_url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + db_url[len("postgresql://"):]
    return db_url


def start_ceiling(procs: Processes, root: Path, port: int, db_url: str, workers: int = 1) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    return procs.start([sys.executable, str(HERE / "raw_ceiling.py"), "--http", f"{HOST}:{port}",
                        "--database-url", ceiling_url(root, db_url), "--workers", str(workers)],
                       log=root / "server.log")


# --------------------------------------------------------------------------- load
@dataclass
class LoadResult:
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    rss_after_mib: float | None = None
    cpu_us_per_req: float | None = None
    db_cpu_us_per_req: float | None = None  # PostgreSQL backends' CPU (bench/list.py)
    error_detail: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(procs: Processes, script: Path, base: str, seconds: float, connections: int, threads: int,
            script_args: list[str]) -> LoadResult:
    """One bounded wrk run (killed if it overruns by 30 s); the script must end with WRK_DONE_LUA."""
    out = script.parent / f"wrk-{script_args[0] if script_args else 'run'}-{time.monotonic_ns()}.out"
    args = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections),
            "-d", f"{max(1, round(seconds))}s", "--timeout", f"{REQUEST_TIMEOUT_S}s",
            "-s", str(script), base, "--", *script_args]
    proc = procs.start(args, log=out)
    try:
        proc.wait(timeout=seconds + 30)
    finally:
        procs.stop(proc)
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


def run_python_loadgen(procs: Processes, workdir: Path, script: Path, loadgen_args: list[str],
                       seconds: float) -> LoadResult:
    """``python SCRIPT _loadgen ARGS...`` in its own process; it prints one BENCH_RESULT line."""
    out = workdir / f"py-{loadgen_args[1] if len(loadgen_args) > 1 else 'run'}-{time.monotonic_ns()}.out"
    proc = procs.start([sys.executable, str(script), "_loadgen", *loadgen_args], log=out)
    try:
        proc.wait(timeout=seconds + 30)
    finally:
        procs.stop(proc)
    text = out.read_text()
    line = next((x for x in text.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"load generator printed no result:\n{text[-2000:]}")
    d = json.loads(line.split(" ", 1)[1])
    return LoadResult(requests=d["requests"], seconds=d["seconds"], errors=d["errors"],
                      p50_ms=d["p50_ms"], p99_ms=d["p99_ms"], error_detail=d["error_detail"])


def print_loadgen_result(latencies: list[float], seconds: float, detail: dict[str, int]) -> None:
    """The Python load generators' BENCH_RESULT line."""
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    print("BENCH_RESULT " + json.dumps({
        "requests": len(latencies), "seconds": seconds, "errors": sum(detail.values()),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "error_detail": detail,
    }), flush=True)


def measure(pid: int, run: Any) -> LoadResult:
    """``run()`` → LoadResult, with the server's CPU µs/request and RSS after filled in."""
    cpu0 = cpu_seconds(pid)
    res: LoadResult = run()
    cpu1 = cpu_seconds(pid)
    res.rss_after_mib = rss_mib(pid)
    if cpu0 is not None and cpu1 is not None and res.requests:
        res.cpu_us_per_req = (cpu1 - cpu0) * 1e6 / res.requests
    return res


# --------------------------------------------------------------------------- options, format
def add_load_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds before each scenario (default 3)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--quick", action="store_true", help="2 s per scenario, 1 s warm-up")
    p.add_argument("--backends", default="sqlite,postgres", help="comma list of sqlite,postgres")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                   help="wrk if installed (auto), or force one")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")


def check_load_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
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


def sigterm_to_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def fmt_mib(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def fmt_us(v: float | None) -> str:
    return "?" if v is None else f"{v:,.0f}"


class WrkLoad:
    """wrk with the Lua script ``lua`` (written to ``workdir``); a run passes it the mode,
    its argument (a file) and ``path``."""

    name = "wrk"

    def __init__(self, procs: Processes, workdir: Path, threads: int, lua: str, lua_name: str, path: str):
        self.procs = procs
        self.threads = threads
        self.path = path
        self.script = workdir / lua_name
        self.script.write_text(lua)

    def run(self, base: str, mode: str, arg: Path, seconds: float, connections: int) -> LoadResult:
        return run_wrk(self.procs, self.script, base, seconds, connections, self.threads,
                       [mode, str(arg), self.path])


class PythonLoad:
    """The fallback without wrk: ``python SCRIPT _loadgen ...`` in its own process
    (asyncio + httpx), passed the base URL, the mode, its argument, the duration and the
    number of connections."""

    name = "python asyncio+httpx"

    def __init__(self, procs: Processes, workdir: Path, script: Path):
        self.procs = procs
        self.workdir = workdir
        self.script = script

    def run(self, base: str, mode: str, arg: Path, seconds: float, connections: int) -> LoadResult:
        return run_python_loadgen(self.procs, self.workdir, self.script,
                                  [base, mode, str(arg), str(seconds), str(connections)], seconds)
