"""Password sign-in and token refresh of Bastion against a raw Starlette+SQLAlchemy baseline.

For each backend (SQLite, PostgreSQL) and each target (Bastion, ``bench/raw_ceiling.py``):
start the server as one process on a fresh data dir / fresh PostgreSQL database with 50
users in ``users`` — created on Bastion through its records API (``POST
/api/collections/users/records``, argon2id-hashed by Bastion), copied row by row (same ids,
hashes and ``tokenKey`` values) into the baseline's ``users`` table by SQL — sign every user in
once for a token, then load:

* ``password``: ``POST /api/collections/users/auth-with-password`` as a random user, with
  the right password (a wrong one would count towards Bastion's lockout: 5 failures per
  identity);
* ``refresh``:  ``POST /api/collections/users/auth-refresh`` with a random one of the 50
  users' valid tokens.

The baseline does the same work without framework logic: password sign-in = the user by
email (Bastion's SQL, same driver and engine settings) + ``argon2 verify`` in a worker
thread + an HS256 JWT signed with PyJWT; refresh = the token's claims read without
verification, the user by id, the signature checked, a new JWT signed.

Before the servers start, the raw cost of one argon2id hash and one verify with Bastion's
parameters (``bastion/core/auth/passwords.py``: t=2, m=19 MiB, p=1) is measured in this process,
single-threaded, median of 20: the floor under every password sign-in; then verifies in
parallel on as many threads as there are cores, and as ``asyncio.to_thread``'s default
executor runs (CPUs + 4), for the throughput and CPU per verify when they compete.

Reported per row: requests/s, p50, p99, errors, the server's CPU µs per request (utime +
stime of all its threads, the argon2 worker threads included), RSS, and Bastion as a % of
the baseline.

    .venv/bin/python bench/auth.py                      # default: 10 s per scenario, ~2.5 min
    .venv/bin/python bench/auth.py --quick              # 2 s per scenario
    .venv/bin/python bench/auth.py --backends sqlite --connections 8

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
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    HOST,
    PG_ADMIN_URL,
    REQUEST_TIMEOUT_S,
    WRK_DONE_LUA,
    LoadResult,
    Processes,
    add_load_args,
    check_load_args,
    fmt_mib,
    fmt_us,
    free_port,
    loadavg,
    machine_line,
    measure,
    pg_create,
    pg_drop,
    pg_unreachable_reason,
    pg_url,
    print_loadgen_result,
    rss_mib,
    run_python_loadgen,
    run_wrk,
    sigterm_to_interrupt,
    start_bastion,
    start_ceiling,
    superuser_token,
    wait_ready,
    warn_if_busy,
)

USERS_PATH = "/api/collections/users"
PASSWORD_PATH = f"{USERS_PATH}/auth-with-password"
REFRESH_PATH = f"{USERS_PATH}/auth-refresh"
SCENARIOS = (("password", PASSWORD_PATH), ("refresh", REFRESH_PATH))
USER_PASSWORD = "bench-user-password-1"
USER_COLUMNS = ("id", "password", "tokenKey", "email", "emailVisibility", "verified", "name", "avatar",
                "created", "updated")
HASH_SAMPLES = 20

# wrk: every thread builds one request per line of the file once, then sends a random one.
# Args after "--": scenario, path, file (emails for "password", tokens for "refresh"), password.
WRK_LUA = r"""
local reqs = {}
local threads_made = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function init(args)
  local scenario, path, lines_file, password = args[1], args[2], args[3], args[4]
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  for line in io.lines(lines_file) do
    if #line > 0 then
      if scenario == "password" then
        local body = string.format('{"identity":"%s","password":"%s"}', line, password)
        reqs[#reqs + 1] = wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
      else
        reqs[#reqs + 1] = wrk.format("POST", path, { ["Authorization"] = line }, "")
      end
    end
  end
end

function request()
  return reqs[math.random(#reqs)]
end
""" + WRK_DONE_LUA


# --------------------------------------------------------------------------- argon2 floor
@dataclass
class HashCost:
    params: str = ""
    hash_ms: float = 0.0  # medians, wall clock
    verify_ms: float = 0.0
    hash_cpu_ms: float = 0.0  # medians, CPU time of the measuring thread
    verify_cpu_ms: float = 0.0
    # verifies in parallel, as a server runs them: {threads: (verifies/s, CPU ms per verify)}
    parallel: dict[int, tuple[float, float]] = field(default_factory=dict)
    stored_params: dict[str, str] = field(default_factory=dict)  # backend -> params of Bastion's hashes

    def line(self) -> str:
        cores = os.cpu_count() or 1
        text = (f"argon2id with Bastion's parameters ({self.params}), one thread, median of {HASH_SAMPLES}: "
                f"hash {self.hash_ms:.1f} ms, verify {self.verify_ms:.1f} ms wall "
                f"({self.hash_cpu_ms:.1f} / {self.verify_cpu_ms:.1f} ms CPU) -> at most "
                f"{cores * 1000 / self.verify_cpu_ms:.0f} password sign-ins/s on {cores} cores "
                f"if verifying were all they did")
        for threads, (rate, cpu_ms) in self.parallel.items():
            text += f"; {threads} threads in parallel: {rate:.0f} verifies/s, {cpu_ms:.1f} ms CPU each"
        return text


def argon2_cost() -> HashCost:
    """Bastion's own hasher, timed in this process: single-threaded, median of 20."""
    from bastion.core.auth.passwords import HASHER

    params = f"argon2id t={HASHER.time_cost}, m={HASHER.memory_cost} KiB, p={HASHER.parallelism}"
    HASHER.verify(HASHER.hash("warm-up"), "warm-up")
    hw, hc, vw, vc = [], [], [], []
    for i in range(HASH_SAMPLES):
        secret = f"{USER_PASSWORD}-{i}"
        t0, c0 = time.perf_counter(), time.thread_time()
        stored = HASHER.hash(secret)
        t1, c1 = time.perf_counter(), time.thread_time()
        HASHER.verify(stored, secret)
        t2, c2 = time.perf_counter(), time.thread_time()
        hw.append(t1 - t0)
        hc.append(c1 - c0)
        vw.append(t2 - t1)
        vc.append(c2 - c1)
    med = statistics.median
    cost = HashCost(params=params, hash_ms=med(hw) * 1e3, verify_ms=med(vw) * 1e3,
                    hash_cpu_ms=med(hc) * 1e3, verify_cpu_ms=med(vc) * 1e3)
    # As under load: one verify per core, and as many as asyncio.to_thread's default
    # executor runs at once (min(32, CPUs + 4) threads), 10 verifies per thread.
    cores = os.cpu_count() or 1
    for threads in sorted({cores, min(32, cores + 4)}):
        n = 10 * threads
        t0, c0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: HASHER.verify(stored, secret), range(n)))
        t1, c1 = time.perf_counter(), time.process_time()
        cost.parallel[threads] = (n / (t1 - t0), (c1 - c0) * 1e3 / n)
    return cost


def stored_hash_params(stored: str) -> str:
    from argon2 import extract_parameters

    p = extract_parameters(stored)
    return f"argon2{p.type.name.lower()} t={p.time_cost}, m={p.memory_cost} KiB, p={p.parallelism}"


# --------------------------------------------------------------------------- data
def user_email(i: int) -> str:
    return f"user{i}@example.com"


def limits_off(base: str) -> None:
    """Per-identity sign-in limits off: each of the users signs in several times a second,
    far past the default 20 a minute; the benchmark measures sign-in, not the 429."""
    import httpx

    r = httpx.patch(f"{base}/api/settings", headers={"Authorization": superuser_token(base)},
                    json={"identityRateLimits": {"enabled": False}}, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"turning identity limits off -> {r.status_code}: {r.text[:1000]}")


async def create_users(base: str, users: int) -> None:
    """``users`` users through Bastion's records API (``users`` has ``createRule = ""``)."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        sem = asyncio.Semaphore(4)

        async def create(i: int) -> None:
            async with sem:
                r = await client.post(f"{USERS_PATH}/records", json={
                    "email": user_email(i), "password": USER_PASSWORD, "passwordConfirm": USER_PASSWORD})
                if r.status_code >= 400:
                    raise RuntimeError(f"creating user {i} -> {r.status_code}: {r.text[:1000]}")

        await asyncio.gather(*(create(i) for i in range(users)))


async def sign_in_all(base: str, users: int) -> list[str]:
    """One password sign-in per user (the right password: the lockout never counts); the tokens."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        sem = asyncio.Semaphore(4)

        async def login(i: int) -> str:
            async with sem:
                r = await client.post(PASSWORD_PATH, json={"identity": user_email(i), "password": USER_PASSWORD})
                if r.status_code != 200:
                    raise RuntimeError(f"sign-in of {user_email(i)} -> {r.status_code}: {r.text[:1000]}")
                return str(r.json()["token"])

        return list(await asyncio.gather(*(login(i) for i in range(users))))


def sqlite_path(root: Path, target: str) -> Path:
    return root / "data" / "data.db" if target == "bastion" else root / "data.db"


def read_users(backend: str, where: Path | str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in USER_COLUMNS)
    if backend == "sqlite":
        with sqlite3.connect(where) as conn:
            return [tuple(r) for r in conn.execute(f"SELECT {cols} FROM users ORDER BY email")]

    async def pg() -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(where, timeout=5)
        try:
            return [tuple(r) for r in await conn.fetch(f"SELECT {cols} FROM users ORDER BY email")]
        finally:
            await conn.close()

    return asyncio.run(pg())


def copy_users(backend: str, where: Path | str, rows: list[tuple[Any, ...]]) -> None:
    """Bastion's user rows into the baseline's ``users`` table (created by its startup)."""
    if backend == "sqlite":
        conn = sqlite3.connect(where, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            marks = ", ".join("?" for _ in USER_COLUMNS)
            cols = ", ".join(f'"{c}"' for c in USER_COLUMNS)
            conn.executemany(f"INSERT INTO users ({cols}) VALUES ({marks})", rows)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return

    async def pg() -> None:
        import asyncpg

        conn = await asyncpg.connect(where, timeout=5)
        try:
            await conn.copy_records_to_table("users", records=rows, columns=list(USER_COLUMNS))
            await conn.execute("ANALYZE users")
        finally:
            await conn.close()

    asyncio.run(pg())


def check_auth(base: str, scenario: str, path: str, line: str, expect_email: str, what: str) -> None:
    """One request before the load: 200 with a token and the user's record (email included)."""
    import httpx

    if scenario == "password":
        r = httpx.post(base + path, json={"identity": line, "password": USER_PASSWORD}, timeout=30)
    else:
        r = httpx.post(base + path, headers={"Authorization": line}, timeout=30)
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    record = body.get("record") or {}
    ok = (r.status_code == 200 and isinstance(body.get("token"), str) and body["token"].count(".") == 2
          and record.get("email") == expect_email and "password" not in record and "tokenKey" not in record)
    if not ok:
        raise RuntimeError(f"{what}: unexpected answer {r.status_code}: {r.text[:500]}")


# --------------------------------------------------------------------------- load generators
class Wrk:
    name = "wrk"

    def __init__(self, procs: Processes, workdir: Path, threads: int):
        self.procs = procs
        self.threads = threads
        self.script = workdir / "auth.lua"
        self.script.write_text(WRK_LUA)

    def run(self, base: str, scenario: str, path: str, lines_file: Path, seconds: float,
            connections: int) -> LoadResult:
        return run_wrk(self.procs, self.script, base, seconds, connections, self.threads,
                       [scenario, path, str(lines_file), USER_PASSWORD])


class PyLoad:
    """Fallback: ``python bench/auth.py _loadgen ...`` in its own process, asyncio + httpx."""

    name = "python asyncio+httpx"

    def __init__(self, procs: Processes, workdir: Path):
        self.procs = procs
        self.workdir = workdir

    def run(self, base: str, scenario: str, path: str, lines_file: Path, seconds: float,
            connections: int) -> LoadResult:
        return run_python_loadgen(self.procs, self.workdir, Path(__file__).resolve(),
                                  [base, scenario, path, str(lines_file), str(seconds), str(connections)],
                                  seconds)


async def _loadgen(base: str, scenario: str, path: str, lines_file: str, seconds: float, connections: int) -> None:
    import httpx

    lines = [x for x in Path(lines_file).read_text().split() if x]
    latencies: list[float] = []
    detail: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        start = time.monotonic()
        deadline = start + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                line = random.choice(lines)
                t0 = time.perf_counter()
                try:
                    if scenario == "password":
                        r = await client.post(path, json={"identity": line, "password": USER_PASSWORD})
                    else:
                        r = await client.post(path, headers={"Authorization": line})
                    if r.status_code >= 400:
                        detail["status"] = detail.get("status", 0) + 1
                except httpx.TimeoutException:
                    detail["timeout"] = detail.get("timeout", 0) + 1
                except httpx.HTTPError:
                    detail["connect"] = detail.get("connect", 0) + 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - start
    print_loadgen_result(latencies, elapsed, detail)


# --------------------------------------------------------------------------- one target
@dataclass
class TargetResult:
    rss_idle_mib: float | None = None
    seed_s: float = 0.0
    scenarios: dict[str, LoadResult] = field(default_factory=dict)


def bench_target(target: str, backend: str, args: argparse.Namespace, procs: Processes,
                 loadgen: Wrk | PyLoad, workdir: Path, pg_dbs: list[str], seeded: list[tuple[Any, ...]],
                 cost: HashCost) -> TargetResult:
    """``seeded``: filled with Bastion's user rows by the Bastion run, copied by the baseline's."""
    root = workdir / f"{backend}-{target}"
    root.mkdir(parents=True, exist_ok=True)
    db_url = ""
    if backend == "postgres":
        dbname = f"bench_{os.getpid()}_auth_{target}"
        pg_create(dbname)
        pg_dbs.append(dbname)
        db_url = pg_url(dbname)
    db_where: Path | str = db_url if backend == "postgres" else sqlite_path(root, target)
    port = free_port()
    base = f"http://{HOST}:{port}"
    starter = start_bastion if target == "bastion" else start_ceiling
    server = starter(procs, root, port, db_url)
    result = TargetResult()
    label = f"  {backend:8} {target:8}"
    try:
        wait_ready(base, server, root / "server.log")
        t0 = time.monotonic()
        if target == "bastion":
            limits_off(base)
            asyncio.run(create_users(base, args.users))
            seeded[:] = read_users(backend, db_where)
            how = "through the records API"
        else:
            copy_users(backend, db_where, seeded)
            how = "copied from Bastion's table by SQL"
        if len(seeded) != args.users:
            raise RuntimeError(f"expected {args.users} users, found {len(seeded)}")
        tokens = asyncio.run(sign_in_all(base, args.users))
        result.seed_s = time.monotonic() - t0
        if target == "bastion":
            cost.stored_params[backend] = stored_hash_params(seeded[0][1])
        emails_file, tokens_file = root / "emails.txt", root / "tokens.txt"
        emails_file.write_text("\n".join(user_email(i) for i in range(args.users)) + "\n")
        tokens_file.write_text("\n".join(tokens) + "\n")
        print(f"{label} pid {server.pid}: {args.users} users {how}, each signed in once, "
              f"in {result.seed_s:.1f}s", flush=True)
        result.rss_idle_mib = rss_mib(server.pid)
        for scenario, path in SCENARIOS:
            lines_file = emails_file if scenario == "password" else tokens_file
            check_auth(base, scenario, path, user_email(0) if scenario == "password" else tokens[0],
                       user_email(0), f"{target} {scenario}")
            if args.warmup > 0:
                loadgen.run(base, scenario, path, lines_file, args.warmup, args.connections)
            res = measure(server.pid, lambda s=scenario, p=path, f=lines_file: loadgen.run(
                base, s, p, f, args.duration, args.connections))
            result.scenarios[scenario] = res
            detail = f" {res.error_detail}" if res.error_detail else ""
            print(f"{label} {scenario:8}: {res.rps:7.0f} req/s  p50 {res.p50_ms:7.2f} ms  "
                  f"p99 {res.p99_ms:7.2f} ms  errors {res.errors}{detail}  "
                  f"server CPU {res.cpu_us_per_req or 0:.0f} us/req  RSS {fmt_mib(res.rss_after_mib)} MiB  "
                  f"(loadavg {loadavg()})", flush=True)
        if server.poll() is not None:
            raise RuntimeError(f"{target} exited during the run:\n{(root / 'server.log').read_text()[-2000:]}")
        return result
    finally:
        procs.stop(server)


# --------------------------------------------------------------------------- report
def render(results: dict[str, dict[str, TargetResult]]) -> str:
    head = ("| backend | scenario | Bastion req/s | baseline req/s | Bastion % of baseline "
            "| Bastion p50 / p99 ms | baseline p50 / p99 ms | errors Bastion / baseline "
            "| server CPU µs/req Bastion / baseline "
            "| RSS MiB Bastion idle → after | RSS MiB baseline idle → after |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for backend, targets in results.items():
        b, c = targets["bastion"], targets["ceiling"]
        for scenario, _ in SCENARIOS:
            rb, rc = b.scenarios[scenario], c.scenarios[scenario]
            pct = f"{100 * rb.rps / rc.rps:.0f} %" if rc.rps else "?"
            lines.append(
                f"| {backend} | {scenario} | {rb.rps:,.0f} | {rc.rps:,.0f} | {pct} "
                f"| {rb.p50_ms:.2f} / {rb.p99_ms:.2f} | {rc.p50_ms:.2f} / {rc.p99_ms:.2f} "
                f"| {rb.errors} / {rc.errors} "
                f"| {fmt_us(rb.cpu_us_per_req)} / {fmt_us(rc.cpu_us_per_req)} "
                f"| {fmt_mib(b.rss_idle_mib)} → {fmt_mib(rb.rss_after_mib)} "
                f"| {fmt_mib(c.rss_idle_mib)} → {fmt_mib(rc.rss_after_mib)} |")
    return "\n".join(lines)


def as_json(results: dict[str, dict[str, TargetResult]]) -> dict[str, Any]:
    return {
        backend: {
            target: {
                "rss_idle_mib": t.rss_idle_mib, "seed_s": t.seed_s,
                "scenarios": {s: {**r.__dict__, "rps": r.rps} for s, r in t.scenarios.items()},
            }
            for target, t in targets.items()
        }
        for backend, targets in results.items()
    }


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Bastion password sign-in and token refresh vs a raw "
                                            "Starlette + argon2 + PyJWT baseline.")
    add_load_args(p)
    p.add_argument("--users", type=int, default=50, help="users created and signed in (default 50)")
    args = check_load_args(p, p.parse_args(argv))
    if not 1 <= args.users <= 1000:
        p.error("bounds: 1 <= --users <= 1000")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, sigterm_to_interrupt)
    signal.signal(signal.SIGINT, sigterm_to_interrupt)  # also when started with SIGINT ignored
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-auth-"))
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
              f"after {args.warmup:g} s warm-up; {args.users} users; 127.0.0.1 only.")
        print(machine_line(), flush=True)
        warn_if_busy()
        cost = argon2_cost()
        print(cost.line(), flush=True)
        for backend in args.backends:
            if backend == "postgres":
                reason = pg_unreachable_reason()
                if reason:
                    print(f"Skipping PostgreSQL: {PG_ADMIN_URL} unreachable ({reason})", flush=True)
                    continue
            results[backend] = {}
            seeded: list[tuple[Any, ...]] = []
            for target in ("bastion", "ceiling"):
                results[backend][target] = bench_target(
                    target, backend, args, procs, loadgen, workdir, pg_dbs, seeded, cost)
        if not results:
            print("Nothing was measured.")
            return 1
        print(f"\nResults (load generator: {lg_desc}; {args.connections} connections; "
              f"{args.duration:g} s per scenario; total run {time.monotonic() - started:.0f} s; "
              f"load average after: {loadavg()})\n")
        print(render(results))
        print(f"\n{cost.line()}.")
        for backend, params in cost.stored_params.items():
            print(f"Hashes Bastion stored on {backend}: {params} (the baseline verifies these very hashes).")
        if args.json:
            args.json.write_text(json.dumps({"loadgen": lg_desc, "connections": args.connections,
                                             "duration": args.duration, "users": args.users,
                                             "argon2": cost.__dict__, "results": as_json(results)}, indent=2))
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        base, scenario, path, lines_file, seconds, conns = sys.argv[2:8]
        asyncio.run(_loadgen(base, scenario, path, lines_file, float(seconds), int(conns)))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
