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
import sys
import tempfile
import time
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
    PythonLoad,
    WrkLoad,
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
    sigterm_to_interrupt,
    start_bastion,
    start_ceiling,
    superuser_token,
    wait_ready,
    warn_if_busy,
)

RECORDS_PATH = "/api/collections/posts/records"
COLLECTION = {
    "name": "posts", "listRule": "", "viewRule": "", "createRule": "",
    "fields": [
        {"name": "title", "type": "text"}, {"name": "body", "type": "text"},
        {"name": "views", "type": "number"}, {"name": "published", "type": "bool"},
    ],
}
FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."

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
""".replace("FILLER", FILLER) + WRK_DONE_LUA


# --------------------------------------------------------------------------- seeding
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


# --------------------------------------------------------------------------- load generators
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
    print_loadgen_result(latencies, elapsed, detail)


# --------------------------------------------------------------------------- one target
@dataclass
class TargetResult:
    rss_idle_mib: float | None = None
    scenarios: dict[str, LoadResult] = field(default_factory=dict)


def bench_target(target: str, backend: str, args: argparse.Namespace, procs: Processes,
                 loadgen: WrkLoad | PythonLoad, workdir: Path, pg_dbs: list[str]) -> TargetResult:
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
            res = measure(server.pid, lambda m=mode: loadgen.run(base, m, ids_file, args.duration,
                                                                 args.connections))
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
                f"| {fmt_us(rb.cpu_us_per_req)} / {fmt_us(rc.cpu_us_per_req)} "
                f"| {fmt_mib(b.rss_idle_mib)} → {fmt_mib(rb.rss_after_mib)} "
                f"| {fmt_mib(c.rss_idle_mib)} → {fmt_mib(rc.rss_after_mib)} |")
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
    add_load_args(p)
    p.add_argument("--records", type=int, default=2000, help="records seeded before the load (default 2000)")
    return check_load_args(p, p.parse_args(argv))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, sigterm_to_interrupt)
    signal.signal(signal.SIGINT, sigterm_to_interrupt)  # also when started with SIGINT ignored (e.g. `cmd &`)
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
        loadgen: WrkLoad | PythonLoad = (WrkLoad(procs, workdir, args.threads, WRK_LUA, "bench.lua", RECORDS_PATH)
                                         if use_wrk else PythonLoad(procs, workdir, Path(__file__).resolve()))
        if use_wrk:
            lg_desc = f"wrk, {min(args.threads, args.connections)} threads"
        else:
            lg_desc = f"{loadgen.name} ({'forced by --loadgen' if args.loadgen == 'python' else 'wrk not found'})"
        print(f"Load generator: {lg_desc}; {args.connections} connections; {args.duration:g} s per scenario "
              f"after {args.warmup:g} s warm-up; {args.records} seeded records; 127.0.0.1 only.")
        print(machine_line(), flush=True)
        warn_if_busy()
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        base, mode, ids_file, seconds, conns = sys.argv[2:7]
        asyncio.run(_loadgen(base, mode, ids_file, float(seconds), int(conns)))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
