"""Records list throughput of Bastion against a raw Starlette+SQLAlchemy ceiling.

For each backend (SQLite, PostgreSQL) and each target (Bastion, ``bench/raw_ceiling.py``):
start the server as one process on a fresh data dir / fresh PostgreSQL database and seed
50 ``users`` and 10,000 ``posts`` (title, body, views, published, owner → users, created).
Bastion is seeded through its API: ``POST /api/batch`` (1,000 creates per batch, after
``PATCH /api/settings`` enables it). The ceiling gets a copy of the very same rows (same
ids, owners and ``created`` values) by direct ``INSERT``\\s into its own table. Then, under
load, three list requests:

* ``list``:       ``GET /api/collections/posts/records?perPage=20&sort=-created&filter=published=true``
                  (public list rule ``""``): a page + the ``count(*)``;
* ``skipTotal``:  the same with ``skipTotal=1``: the page only;
* ``owner rule``: the same under ``listRule = "owner = @request.auth.id"`` (a rule change on
                  Bastion), each request carrying the token of one of the 50 users (the
                  ceiling gets the user id in ``Authorization`` and adds ``owner = ?``);

once on the bare table and once after adding indexes (through
``PATCH /api/collections/posts`` on Bastion, the same ``CREATE INDEX`` by SQL on the
ceiling): by default ``(published, created)`` and ``(owner, created)``, or those given
with ``--index``.

Reported per row: requests/s, p50, p99, errors, the server's CPU µs per request (utime +
stime of all its threads), on PostgreSQL also the CPU µs per request of the database
backends serving that target, RSS, and Bastion as a % of the ceiling.

    .venv/bin/python bench/list.py                      # default: 10 s per scenario, ~6.5 min
    .venv/bin/python bench/list.py --quick              # 2 s per scenario
    .venv/bin/python bench/list.py --backends postgres --explain
    .venv/bin/python bench/list.py --index "CREATE INDEX idx_owner_pub ON posts (owner, published, created)"

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
    PgBackendCpu,
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

RECORDS_PATH = "/api/collections/posts/records"
LIST_QUERY = "perPage=20&sort=-created&filter=published%3Dtrue"
PER_PAGE = 20
# name, query string, authenticated as one of the users under the owner rule
SCENARIOS: tuple[tuple[str, str, bool], ...] = (
    ("list", LIST_QUERY, False),
    ("skipTotal", LIST_QUERY + "&skipTotal=1", False),
    ("owner rule", LIST_QUERY, True),
)
PHASES = ("none", "indexed")
INDEXES = (
    "CREATE INDEX idx_pub_created ON posts (published, created)",
    "CREATE INDEX idx_owner_created ON posts (owner, created)",
)
OWNER_RULE = "owner = @request.auth.id"
USER_PASSWORD = "bench-user-password-1"
FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
BATCH = 1000
COLUMNS = ("id", "title", "body", "views", "published", "owner", "created")

# wrk: every thread builds its requests once; with a tokens file, each request carries a
# random one of them in Authorization. Args after "--": scenario, path, tokens file or "".
WRK_LUA = r"""
local reqs = {}
local threads_made = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function init(args)
  local path, tokens_file = args[2], args[3]
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  if tokens_file and #tokens_file > 0 then
    for line in io.lines(tokens_file) do
      if #line > 0 then reqs[#reqs + 1] = wrk.format("GET", path, { ["Authorization"] = line }) end
    end
  else
    reqs[1] = wrk.format("GET", path, {})
  end
end

function request()
  return reqs[math.random(#reqs)]
end
""" + WRK_DONE_LUA


# --------------------------------------------------------------------------- data
def post_body(n: int, owners: list[str]) -> dict[str, Any]:
    """Post ``n``: owned by user ``n % U``; published in alternate blocks of U posts, so
    half the posts are published and every user has half of theirs published."""
    users = len(owners)
    return {"title": f"post {n}", "body": FILLER, "views": n % 1000,
            "published": (n // users) % 2 == 0, "owner": owners[n % users]}


def expected_published(records: int, users: int) -> tuple[int, list[int]]:
    """(published posts, published posts per user index) as ``post_body`` seeds them."""
    per_user = [0] * users
    for n in range(records):
        if (n // users) % 2 == 0:
            per_user[n % users] += 1
    return sum(per_user), per_user


async def seed_bastion(base: str, token: str, records: int, users: int) -> tuple[list[str], list[str]]:
    """Create ``users`` users and ``records`` posts through the batch API; return
    (user ids, user tokens)."""
    import httpx

    su = {"Authorization": token}
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        async def call(method: str, url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
            r = await client.request(method, url, json=body, headers=headers)
            if r.status_code >= 400:
                raise RuntimeError(f"{method} {url} -> {r.status_code}: {r.text[:1000]}")
            return r.json()

        await call("PATCH", "/api/settings",
                   {"batch": {"enabled": True, "maxRequests": BATCH, "timeout": 300}}, su)
        users_id = (await call("GET", "/api/collections/users", None, su))["id"]
        await call("POST", "/api/collections", {
            "name": "posts", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text"}, {"name": "body", "type": "text"},
                {"name": "views", "type": "number"}, {"name": "published", "type": "bool"},
                {"name": "owner", "type": "relation", "collectionId": users_id, "maxSelect": 1},
                {"name": "created", "type": "autodate", "onCreate": True},
            ],
        }, su)
        user_reqs = [{"method": "POST", "url": "/api/collections/users/records",
                      "body": {"email": f"user{i}@example.com", "password": USER_PASSWORD,
                               "passwordConfirm": USER_PASSWORD}} for i in range(users)]
        owners = [item["body"]["id"] for item in await call("POST", "/api/batch", {"requests": user_reqs}, su)]
        for start in range(0, records, BATCH):
            reqs = [{"method": "POST", "url": RECORDS_PATH, "body": post_body(n, owners)}
                    for n in range(start, min(records, start + BATCH))]
            await call("POST", "/api/batch", {"requests": reqs}, su)

        sem = asyncio.Semaphore(4)

        async def login(i: int) -> str:
            async with sem:
                body = {"identity": f"user{i}@example.com", "password": USER_PASSWORD}
                return str((await call("POST", "/api/collections/users/auth-with-password", body))["token"])

        tokens = list(await asyncio.gather(*(login(i) for i in range(users))))
    return owners, tokens


def set_list_rule(base: str, token: str, rule: str) -> None:
    import httpx

    r = httpx.patch(f"{base}/api/collections/posts", json={"listRule": rule},
                    headers={"Authorization": token}, timeout=60)
    r.raise_for_status()


def add_indexes_bastion(base: str, token: str, indexes: tuple[str, ...]) -> None:
    import httpx

    r = httpx.patch(f"{base}/api/collections/posts", json={"indexes": list(indexes)},
                    headers={"Authorization": token}, timeout=300)
    if r.status_code >= 400:
        raise RuntimeError(f"adding indexes failed: {r.status_code} {r.text[:1000]}")


# Direct SQL, used for the ceiling's copy of the data, its indexes, VACUUM and --explain.
def sqlite_path(root: Path, target: str) -> Path:
    return root / "data" / "data.db" if target == "bastion" else root / "data.db"


def read_rows(backend: str, where: Path | str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    if backend == "sqlite":
        with sqlite3.connect(where) as conn:
            return [tuple(r) for r in conn.execute(f"SELECT {cols} FROM posts")]

    async def pg() -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(where, timeout=5)
        try:
            return [tuple(r) for r in await conn.fetch(f"SELECT {cols} FROM posts")]
        finally:
            await conn.close()

    return asyncio.run(pg())


def sql_run(backend: str, where: Path | str, statements: list[str],
            rows: list[tuple[Any, ...]] | None = None) -> None:
    """Insert ``rows`` into posts (if given), then run ``statements``, committed."""
    if backend == "sqlite":
        conn = sqlite3.connect(where, timeout=30, isolation_level=None)
        try:
            if rows:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(f"INSERT INTO posts ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            for stmt in statements:
                conn.execute(stmt)
        finally:
            conn.close()
        return

    async def pg() -> None:
        import asyncpg

        conn = await asyncpg.connect(where, timeout=5)
        try:
            if rows:
                await conn.copy_records_to_table("posts", records=rows, columns=list(COLUMNS))
            for stmt in statements:
                await conn.execute(stmt)
        finally:
            await conn.close()

    asyncio.run(pg())


def explain(backend: str, where: Path | str, owner: str) -> list[str]:
    """The plan of each statement a scenario runs (the ceiling's DB: same table, same rows)."""
    cols = ", ".join(f"posts.{c}" for c in COLUMNS)
    nulls = " NULLS LAST" if backend == "postgres" else ""
    shapes = [
        ("page, published", f"SELECT {cols} FROM posts WHERE posts.published = {{t}} "
                            f"ORDER BY posts.created DESC{nulls} LIMIT 20 OFFSET 0"),
        ("count, published", "SELECT count(*) FROM posts WHERE posts.published = {t}"),
        ("page, owner rule", f"SELECT {cols} FROM posts WHERE posts.owner = '{owner}' AND posts.published = {{t}} "
                             f"ORDER BY posts.created DESC{nulls} LIMIT 20 OFFSET 0"),
        ("count, owner rule", f"SELECT count(*) FROM posts WHERE posts.owner = '{owner}' AND posts.published = {{t}}"),
    ]
    out: list[str] = []
    if backend == "sqlite":
        with sqlite3.connect(where) as conn:
            for name, sql in shapes:
                plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql.format(t=1))]
                out.append(f"{name}: " + "; ".join(plan))
        return out

    async def pg() -> None:
        import asyncpg

        conn = await asyncpg.connect(where, timeout=5)
        try:
            for name, sql in shapes:
                rows = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) " + sql.format(t="true"))
                lines = [r[0].strip() for r in rows if not r[0].strip().startswith("Planning Time")]
                out.append(f"{name}: " + "; ".join(lines))
        finally:
            await conn.close()

    asyncio.run(pg())
    return out


# --------------------------------------------------------------------------- load generators
class Wrk:
    name = "wrk"

    def __init__(self, procs: Processes, workdir: Path, threads: int):
        self.procs = procs
        self.threads = threads
        self.script = workdir / "list.lua"
        self.script.write_text(WRK_LUA)

    def run(self, base: str, scenario: str, path: str, tokens_file: Path | None, seconds: float,
            connections: int) -> LoadResult:
        return run_wrk(self.procs, self.script, base, seconds, connections, self.threads,
                       [scenario.replace(" ", "_"), path, str(tokens_file or "")])


class PyLoad:
    """Fallback: ``python bench/list.py _loadgen ...`` in its own process, asyncio + httpx."""

    name = "python asyncio+httpx"

    def __init__(self, procs: Processes, workdir: Path):
        self.procs = procs
        self.workdir = workdir

    def run(self, base: str, scenario: str, path: str, tokens_file: Path | None, seconds: float,
            connections: int) -> LoadResult:
        return run_python_loadgen(
            self.procs, self.workdir, Path(__file__).resolve(),
            [base, scenario.replace(" ", "_"), path, str(tokens_file or ""), str(seconds), str(connections)],
            seconds)


async def _loadgen(base: str, path: str, tokens_file: str, seconds: float, connections: int) -> None:
    import httpx

    tokens = [x for x in Path(tokens_file).read_text().split() if x] if tokens_file else []
    latencies: list[float] = []
    detail: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        start = time.monotonic()
        deadline = start + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                headers = {"Authorization": random.choice(tokens)} if tokens else None
                t0 = time.perf_counter()
                try:
                    r = await client.get(path, headers=headers)
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
    index_s: float = 0.0
    scenarios: dict[tuple[str, str], LoadResult] = field(default_factory=dict)  # (phase, scenario)
    plans: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Seeded:
    """What the Bastion run leaves for the ceiling: the rows, owners and expected counts."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    published: int = 0
    per_owner: dict[str, int] = field(default_factory=dict)


def check_page(base: str, path: str, auth: str | None, expect_total: int, what: str) -> None:
    """One request before the load: the page and total must be what was seeded."""
    import httpx

    r = httpx.get(base + path, headers={"Authorization": auth} if auth else None, timeout=30)
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    items = body.get("items", [])
    want_items = PER_PAGE if expect_total < 0 else min(PER_PAGE, expect_total)
    ok = (r.status_code == 200 and body.get("totalItems") == expect_total and len(items) == want_items
          and all(i.get("published") is True for i in items)
          and all(a["created"] >= b["created"] for a, b in zip(items, items[1:], strict=False)))
    if not ok:
        raise RuntimeError(f"{what}: unexpected answer {r.status_code}, totalItems={body.get('totalItems')!r}, "
                           f"{len(items)} items (wanted {expect_total} / {want_items}): {r.text[:500]}")


def bench_target(target: str, backend: str, args: argparse.Namespace, procs: Processes,
                 loadgen: Wrk | PyLoad, workdir: Path, pg_dbs: list[str], seeded: Seeded) -> TargetResult:
    root = workdir / f"{backend}-{target}"
    root.mkdir(parents=True, exist_ok=True)
    db_url = ""
    dbname = ""
    if backend == "postgres":
        dbname = f"bench_{os.getpid()}_list_{target}"
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
        token = superuser_token(base) if target == "bastion" else ""
        t0 = time.monotonic()
        vacuum = ["VACUUM ANALYZE posts"] if backend == "postgres" else []
        if target == "bastion":
            owners, tokens = asyncio.run(seed_bastion(base, token, args.records, args.users))
            result.seed_s = time.monotonic() - t0
            sql_run(backend, db_where, vacuum)
            seeded.rows = read_rows(backend, db_where)
            seeded.owners = owners
            seeded.published, per_user = expected_published(args.records, args.users)
            seeded.per_owner = dict(zip(owners, per_user, strict=True))
            auth_lines = tokens
            how = "through the batch API"
        else:
            sql_run(backend, db_where, vacuum, rows=seeded.rows)
            result.seed_s = time.monotonic() - t0
            auth_lines = list(seeded.owners)  # the ceiling takes the user id as it is
            how = "copied from Bastion's table by INSERT"
        if len(seeded.rows) != args.records:
            raise RuntimeError(f"expected {args.records} posts, found {len(seeded.rows)}")
        auth_file = root / "auth.txt"
        auth_file.write_text("\n".join(auth_lines) + "\n")
        who = f"{args.users} users and " if target == "bastion" else ""
        print(f"{label} pid {server.pid}: seeded {who}{len(seeded.rows)} posts {how} "
              f"in {result.seed_s:.1f}s{' (+ VACUUM ANALYZE)' if vacuum else ''}", flush=True)
        result.rss_idle_mib = rss_mib(server.pid)
        for phase in PHASES:
            if phase == "indexed":
                t0 = time.monotonic()
                if target == "bastion":
                    add_indexes_bastion(base, token, args.indexes)
                else:
                    sql_run(backend, db_where, list(args.indexes))
                result.index_s = time.monotonic() - t0
                print(f"{label} added {len(args.indexes)} indexes in {result.index_s:.2f}s", flush=True)
            if args.explain and target == "ceiling":
                result.plans[phase] = explain(backend, db_where, seeded.owners[0])
                for line in result.plans[phase]:
                    print(f"{label} plan ({phase}) {line}", flush=True)
            for scenario, query, owned in SCENARIOS:
                path = f"{RECORDS_PATH}?{query}"
                if owned and target == "bastion":
                    set_list_rule(base, token, OWNER_RULE)
                try:
                    if owned:
                        expect = seeded.per_owner[seeded.owners[0]]
                        check_page(base, path, auth_lines[0], -1 if "skipTotal" in query else expect, scenario)
                    else:
                        check_page(base, path, None, -1 if "skipTotal" in query else seeded.published, scenario)
                    auth = auth_file if owned else None
                    if args.warmup > 0:
                        loadgen.run(base, scenario, path, auth, args.warmup, args.connections)
                    db_cpu = PgBackendCpu(dbname).start() if dbname else None
                    res = measure(server.pid, lambda p=path, s=scenario, a=auth: loadgen.run(
                        base, s, p, a, args.duration, args.connections))
                    if db_cpu is not None:
                        used = db_cpu.stop()
                        res.db_cpu_us_per_req = used * 1e6 / res.requests if res.requests else None
                finally:
                    if owned and target == "bastion":
                        set_list_rule(base, token, "")
                result.scenarios[(phase, scenario)] = res
                detail = f" {res.error_detail}" if res.error_detail else ""
                db = f"  PG CPU {res.db_cpu_us_per_req:.0f} us/req" if res.db_cpu_us_per_req is not None else ""
                print(f"{label} {phase:7} {scenario:10}: {res.rps:7.0f} req/s  p50 {res.p50_ms:7.2f} ms  "
                      f"p99 {res.p99_ms:7.2f} ms  errors {res.errors}{detail}  "
                      f"server CPU {res.cpu_us_per_req or 0:.0f} us/req{db}  (loadavg {loadavg()})", flush=True)
        if server.poll() is not None:
            raise RuntimeError(f"{target} exited during the run:\n{(root / 'server.log').read_text()[-2000:]}")
        return result
    finally:
        procs.stop(server)


# --------------------------------------------------------------------------- report
def render(results: dict[str, dict[str, TargetResult]]) -> str:
    head = ("| backend | indexes | scenario | Bastion req/s | ceiling req/s | Bastion % of ceiling "
            "| Bastion p50 / p99 ms | ceiling p50 / p99 ms | errors Bastion / ceiling "
            "| server CPU µs/req Bastion / ceiling | PostgreSQL CPU µs/req Bastion / ceiling "
            "| RSS MiB Bastion idle → after | RSS MiB ceiling idle → after |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for backend, targets in results.items():
        b, c = targets["bastion"], targets["ceiling"]
        for phase in PHASES:
            for scenario, _, _ in SCENARIOS:
                rb, rc = b.scenarios[(phase, scenario)], c.scenarios[(phase, scenario)]
                pct = f"{100 * rb.rps / rc.rps:.0f} %" if rc.rps else "?"
                db = ("n/a (in-process)" if backend == "sqlite"
                      else f"{fmt_us(rb.db_cpu_us_per_req)} / {fmt_us(rc.db_cpu_us_per_req)}")
                lines.append(
                    f"| {backend} | {phase} | {scenario} | {rb.rps:,.0f} | {rc.rps:,.0f} | {pct} "
                    f"| {rb.p50_ms:.2f} / {rb.p99_ms:.2f} | {rc.p50_ms:.2f} / {rc.p99_ms:.2f} "
                    f"| {rb.errors} / {rc.errors} "
                    f"| {fmt_us(rb.cpu_us_per_req)} / {fmt_us(rc.cpu_us_per_req)} | {db} "
                    f"| {fmt_mib(b.rss_idle_mib)} → {fmt_mib(rb.rss_after_mib)} "
                    f"| {fmt_mib(c.rss_idle_mib)} → {fmt_mib(rc.rss_after_mib)} |")
    return "\n".join(lines)


def as_json(results: dict[str, dict[str, TargetResult]]) -> dict[str, Any]:
    return {
        backend: {
            target: {
                "rss_idle_mib": t.rss_idle_mib, "seed_s": t.seed_s, "index_s": t.index_s,
                "plans": t.plans,
                "scenarios": {f"{p}/{s}": {**r.__dict__, "rps": r.rps} for (p, s), r in t.scenarios.items()},
            }
            for target, t in targets.items()
        }
        for backend, targets in results.items()
    }


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Bastion records list vs a raw Starlette ceiling, "
                                            "without and with indexes.")
    add_load_args(p)
    p.add_argument("--records", type=int, default=10_000, help="posts seeded (default 10000)")
    p.add_argument("--users", type=int, default=50, help="users owning the posts (default 50)")
    p.add_argument("--index", action="append", metavar="SQL", dest="indexes",
                   help="an index for the indexed phase, as PocketBase writes it (repeatable; default: "
                        + "; ".join(INDEXES) + ")")
    p.add_argument("--explain", action="store_true",
                   help="print each query's plan (PostgreSQL: EXPLAIN ANALYZE) before each phase")
    args = check_load_args(p, p.parse_args(argv))
    args.indexes = tuple(args.indexes or INDEXES)
    if not 2 * PER_PAGE * args.users <= args.records <= 1_000_000 or not 1 <= args.users <= 1000:
        p.error("bounds: 1 <= --users <= 1000, 40 * --users <= --records <= 1000000")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, sigterm_to_interrupt)
    signal.signal(signal.SIGINT, sigterm_to_interrupt)  # also when started with SIGINT ignored
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-list-"))
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
              f"after {args.warmup:g} s warm-up; {args.records} posts, {args.users} users; 127.0.0.1 only.")
        print(f"Indexes of the indexed phase: {'; '.join(args.indexes)}")
        print(machine_line(), flush=True)
        warn_if_busy()
        for backend in args.backends:
            if backend == "postgres":
                reason = pg_unreachable_reason()
                if reason:
                    print(f"Skipping PostgreSQL: {PG_ADMIN_URL} unreachable ({reason})", flush=True)
                    continue
            results[backend] = {}
            seeded = Seeded()
            for target in ("bastion", "ceiling"):
                results[backend][target] = bench_target(
                    target, backend, args, procs, loadgen, workdir, pg_dbs, seeded)
        if not results:
            print("Nothing was measured.")
            return 1
        print(f"\nResults (load generator: {lg_desc}; {args.connections} connections; "
              f"{args.duration:g} s per scenario; total run {time.monotonic() - started:.0f} s; "
              f"load average after: {loadavg()})\n")
        print(render(results))
        if args.json:
            args.json.write_text(json.dumps({"loadgen": lg_desc, "connections": args.connections,
                                             "duration": args.duration, "records": args.records,
                                             "users": args.users, "indexes": list(args.indexes),
                                             "results": as_json(results)}, indent=2))
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
        base, _scenario, path, tokens_file, seconds, conns = sys.argv[2:8]
        asyncio.run(_loadgen(base, path, tokens_file, float(seconds), int(conns)))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
