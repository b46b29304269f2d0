"""Soak: a steady, mixed load on one Bastion process for minutes, sampled every 10 s.

Starts ``bastion serve`` (SQLite by default, PostgreSQL with ``--backend postgres``), seeds
a ``posts`` collection, measures the peak throughput of the mix with a short unpaced run
(unless ``--rate`` is given), then holds ``--fraction`` (default 70 %) of that peak for
``--minutes`` (default 10). The mix is creates, gets by id and list pages
(``--mix create,get,list`` weights, default 20,60,20).

Every ``--sample`` seconds (default 10) one row: requests and req/s, errors (non-2xx,
timeouts, socket errors), p50/p99 latency, the server's RSS (VmRSS) and CPU. At the
end a summary (RSS trend in MiB per minute after the first minute, p99 spread, error
total) and, when matplotlib is importable, a PNG chart.

Load generator: ``wrk`` when installed, one bounded wrk run per sample, paced by the Lua
``delay()`` hook (a per-connection think time, corrected after each sample so the rate
holds the target): closed-loop pacing, so latency is measured per request, not from a
schedule. Without wrk, a paced asyncio + httpx generator in a separate process sends on
an open-loop schedule and measures latency from each request's scheduled time.

    .venv/bin/python bench/soak.py                          # 10 min at 70 % of peak, SQLite
    .venv/bin/python bench/soak.py --minutes 3 --backend postgres
    .venv/bin/python bench/soak.py --rate 300 --minutes 1 --chart soak.png

Only 127.0.0.1 is loaded; every process started here is stopped by its PID (also on
Ctrl-C); a scratch PostgreSQL database is dropped at the end.
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
from dataclasses import dataclass
from pathlib import Path

from common import (
    HOST,
    REQUEST_TIMEOUT_S,
    WRK_DONE_LUA,
    Processes,
    cpu_seconds,
    free_port,
    machine_line,
    pg_create,
    pg_drop,
    pg_unreachable_reason,
    pg_url,
    print_loadgen_result,
    rss_mib,
    run_wrk,
    sigterm_to_interrupt,
    start_bastion,
    superuser_token,
    wait_ready,
)

RECORDS = "/api/collections/posts/records"
LIST_QUERY = "?perPage=20&skipTotal=1&filter=published%3Dtrue"
COLLECTION = {
    "name": "posts", "listRule": "", "viewRule": "", "createRule": "",
    "fields": [{"name": "title", "type": "text"}, {"name": "body", "type": "text"},
               {"name": "views", "type": "number"}, {"name": "published", "type": "bool"}],
}
FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."

# Args after "--": a label, ids file, mix weights "c,g,l", delay per request in ms (0: unpaced).
WRK_LUA = r"""
local ids, w_create, w_get, delay_ms, counter = {}, 0, 0, 0, 0
local threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end
function init(args)
  for line in io.lines(args[2]) do if #line > 0 then ids[#ids + 1] = line end end
  local c, g, l = args[3]:match("(%d+),(%d+),(%d+)")
  local total = c + g + l
  w_create, w_get = c / total, (c + g) / total
  delay_ms = tonumber(args[4])
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end
function delay() return delay_ms end
local json_headers = { ["Content-Type"] = "application/json" }
function request()
  local r = math.random()
  if r < w_create then
    counter = counter + 1
    local body = string.format('{"title":"soak %d-%d","body":"FILLER","views":%d,"published":%s}',
      tid or 0, counter, counter % 1000, (counter % 2 == 0) and "true" or "false")
    return wrk.format("POST", "RECORDS", json_headers, body)
  elseif r < w_get then
    return wrk.format("GET", "RECORDS/" .. ids[math.random(#ids)], {})
  end
  return wrk.format("GET", "RECORDS" .. "LIST_QUERY", {})
end
""".replace("FILLER", FILLER).replace("RECORDS", RECORDS).replace("LIST_QUERY", LIST_QUERY) + WRK_DONE_LUA


@dataclass
class Sample:
    t: float  # seconds since the soak started, at the end of the sample
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    rss_mib: float | None
    cpu_pct: float | None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --------------------------------------------------------------------------- seeding
async def seed(base: str, token: str, count: int) -> list[str]:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/api/collections", json=COLLECTION, headers={"Authorization": token})
        r.raise_for_status()
        ids: list[str] = []
        queue = iter(range(count))

        async def worker() -> None:
            for n in queue:
                r = await client.post(RECORDS, json={"title": f"seed {n}", "body": FILLER, "views": n,
                                                     "published": n % 2 == 0})
                r.raise_for_status()
                ids.append(r.json()["id"])

        await asyncio.gather(*(worker() for _ in range(8)))
    return ids


# --------------------------------------------------------------------------- load: wrk
class WrkLoad:
    name = "wrk (paced with delay())"

    def __init__(self, procs: Processes, workdir: Path, base: str, ids_file: Path, mix: str, connections: int):
        self.procs, self.base, self.ids_file, self.mix = procs, base, ids_file, mix
        self.connections = connections
        self.script = workdir / "soak.lua"
        self.script.write_text(WRK_LUA)
        self.delay_ms = 0

    def run(self, seconds: float) -> Sample:
        res = run_wrk(self.procs, self.script, self.base, seconds, self.connections, 2,
                      ["soak", str(self.ids_file), self.mix, str(self.delay_ms)])
        return Sample(0, res.requests, res.seconds, res.errors, res.p50_ms, res.p99_ms, None, None)

    def pace(self, target_rps: float, last: Sample) -> None:
        """Think time = per-connection period (C/target) minus the time a request took in
        the last sample; half-way steps, so one noisy sample does not swing the rate."""
        period_ms = 1000 * self.connections / target_rps
        if not last.requests:
            self.delay_ms = round(period_ms)
            return
        busy_ms = max(0.0, 1000 * self.connections / last.rps - self.delay_ms)
        wanted = max(0.0, period_ms - busy_ms)
        self.delay_ms = max(0, round((self.delay_ms + wanted) / 2 if self.delay_ms else wanted))


# --------------------------------------------------------------------------- load: python
class PyLoad:
    name = "python asyncio+httpx (open-loop schedule)"

    def __init__(self, procs: Processes, workdir: Path, base: str, ids_file: Path, mix: str, connections: int):
        self.procs, self.workdir, self.base = procs, workdir, base
        self.ids_file, self.mix, self.connections = ids_file, mix, connections
        self.rate = 0.0  # 0: as fast as it goes

    def run(self, seconds: float) -> Sample:
        out = self.workdir / f"py-{time.monotonic_ns()}.out"
        proc = self.procs.start([sys.executable, str(Path(__file__).resolve()), "_loadgen", self.base,
                                 str(self.ids_file), self.mix, str(seconds), str(self.connections),
                                 str(self.rate)], log=out)
        try:
            proc.wait(timeout=seconds + 30)
        finally:
            self.procs.stop(proc)
        line = next((x for x in out.read_text().splitlines() if x.startswith("BENCH_RESULT ")), None)
        if line is None:
            raise RuntimeError(f"load generator printed no result:\n{out.read_text()[-2000:]}")
        d = json.loads(line.split(" ", 1)[1])
        return Sample(0, d["requests"], d["seconds"], d["errors"], d["p50_ms"], d["p99_ms"], None, None)

    def pace(self, target_rps: float, last: Sample) -> None:
        self.rate = target_rps


async def _loadgen(base: str, ids_file: str, mix: str, seconds: float, connections: int, rate: float) -> None:
    import httpx

    ids = [x for x in Path(ids_file).read_text().split() if x]
    weights = [int(x) for x in mix.split(",")]
    latencies: list[float] = []
    detail: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        start = time.monotonic()
        deadline = start + seconds
        slots = asyncio.Semaphore(connections)
        n = 0

        async def one(scheduled: float, k: int) -> None:
            kind = random.choices(("create", "get", "list"), weights)[0]
            try:
                if kind == "create":
                    r = await client.post(RECORDS, json={"title": f"soak {k}", "body": FILLER, "views": k,
                                                         "published": k % 2 == 0})
                elif kind == "get":
                    r = await client.get(f"{RECORDS}/{random.choice(ids)}")
                else:
                    r = await client.get(RECORDS + LIST_QUERY)
                if r.status_code >= 400:
                    detail["status"] = detail.get("status", 0) + 1
            except httpx.TimeoutException:
                detail["timeout"] = detail.get("timeout", 0) + 1
            except httpx.HTTPError:
                detail["connect"] = detail.get("connect", 0) + 1
            finally:
                slots.release()
            latencies.append(time.monotonic() - scheduled)  # from the schedule: no coordinated omission

        tasks = set()
        while time.monotonic() < deadline:
            scheduled = start + n / rate if rate else time.monotonic()
            if scheduled > deadline:
                break
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            await slots.acquire()
            n += 1
            task = asyncio.create_task(one(scheduled, n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    print_loadgen_result(latencies, elapsed, detail)


# --------------------------------------------------------------------------- report
HEADER = (f"{'t s':>6} {'requests':>9} {'req/s':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'RSS MiB':>8} {'CPU %':>6}")


def row(s: Sample) -> str:
    rss = "?" if s.rss_mib is None else f"{s.rss_mib:.1f}"
    cpu = "?" if s.cpu_pct is None else f"{s.cpu_pct:.0f}"
    return (f"{s.t:6.0f} {s.requests:9d} {s.rps:8.0f} {s.errors:7d} {s.p50_ms:8.2f} {s.p99_ms:8.2f} "
            f"{rss:>8} {cpu:>6}")


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) in value per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / var if var else None


def summary(samples: list[Sample], target: float) -> str:
    total = sum(s.requests for s in samples)
    errors = sum(s.errors for s in samples)
    steady = [s for s in samples if s.t > 60] or samples
    rss = [(s.t, s.rss_mib) for s in steady if s.rss_mib is not None]
    trend = slope_per_minute(rss)  # type: ignore[arg-type]
    p99 = sorted(s.p99_ms for s in samples)
    lines = [
        f"Requests: {total:,} in {sum(s.seconds for s in samples):.0f} s "
        f"({total / max(1e-9, sum(s.seconds for s in samples)):.0f} req/s; target {target:.0f}); "
        f"errors: {errors} ({100 * errors / max(1, total):.3f} %)",
        f"p99 per sample: min {p99[0]:.2f} ms, median {p99[len(p99) // 2]:.2f} ms, max {p99[-1]:.2f} ms",
    ]
    if rss:
        lines.append(f"RSS: {samples[0].rss_mib:.1f} MiB at the first sample, {rss[-1][1]:.1f} MiB at the last; "
                     f"trend after the first minute: {'?' if trend is None else f'{trend:+.2f}'} MiB/min")
    return "\n".join(lines)


def chart(samples: list[Sample], path: Path, title: str, target: float) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "No chart: matplotlib is not installed (pip install matplotlib, or the bench extra)."
    t = [s.t / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for ax, values, label in ((axes[0], [s.rps for s in samples], "req/s"),
                              (axes[1], [s.p99_ms for s in samples], "p99 ms"),
                              (axes[2], [s.rss_mib or 0 for s in samples], "RSS MiB")):
        ax.plot(t, values, marker=".")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].axhline(target, color="grey", linestyle="--", linewidth=1)
    axes[0].set_title(title)
    axes[2].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"Chart written to {path}"


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Bastion soak: steady mixed load, sampled every 10 s.")
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--rate", type=float, help="target req/s (default: --fraction of a measured peak)")
    p.add_argument("--fraction", type=float, default=0.7, help="fraction of the peak to hold (default 0.7)")
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--sample", type=float, default=10.0, help="seconds per sample (default 10)")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    p.add_argument("--mix", default="20,60,20", help="create,get,list weights (default 20,60,20)")
    p.add_argument("--records", type=int, default=1000, help="records seeded first (default 1000)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--chart", type=Path, help="PNG path (default soak-<backend>.png in the current folder)")
    p.add_argument("--json", type=Path, help="also write the samples as JSON")
    args = p.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60 or not 0 < args.fraction <= 1 or not 1 <= args.sample <= 300:
        p.error("bounds: 0 < --minutes <= 1440, 0 < --fraction <= 1, 1 <= --sample <= 300")
    if len(args.mix.split(",")) != 3 or not all(x.isdigit() for x in args.mix.split(",")):
        p.error("--mix takes three whole weights: create,get,list")
    args.chart = args.chart or Path(f"soak-{args.backend}.png")
    return args


def soak(load: WrkLoad | PyLoad, pid: int, args: argparse.Namespace, target: float,
         peak: Sample | None) -> list[Sample]:
    print(f"\nHolding {target:.0f} req/s for {args.minutes:g} min, one row per {args.sample:g} s:\n{HEADER}",
          flush=True)
    samples: list[Sample] = []
    load.pace(target, peak or Sample(0, 0, 0, 0, 0, 0, None, None))
    started = time.monotonic()
    while time.monotonic() - started < args.minutes * 60 - 0.5:
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        s = load.run(min(args.sample, args.minutes * 60 - (time.monotonic() - started)))
        cpu1 = cpu_seconds(pid)
        s.t, s.rss_mib = time.monotonic() - started, rss_mib(pid)
        if cpu0 is not None and cpu1 is not None:
            s.cpu_pct = 100 * (cpu1 - cpu0) / (time.monotonic() - t0)
        samples.append(s)
        print(row(s), flush=True)
        load.pace(target, s)
    return samples


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, sigterm_to_interrupt)
    signal.signal(signal.SIGINT, sigterm_to_interrupt)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-soak-"))
    dbname = ""
    try:
        db_url = ""
        if args.backend == "postgres":
            reason = pg_unreachable_reason()
            if reason:
                print(f"PostgreSQL unreachable: {reason}", file=sys.stderr)
                return 2
            dbname = f"soak_{os.getpid()}"
            pg_create(dbname)
            db_url = pg_url(dbname)
        port = free_port()
        base = f"http://{HOST}:{port}"
        server = start_bastion(procs, workdir, port, db_url)
        wait_ready(base, server, workdir / "server.log")
        ids = asyncio.run(seed(base, superuser_token(base), args.records))
        ids_file = workdir / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
        kind = WrkLoad if use_wrk else PyLoad
        load = kind(procs, workdir, base, ids_file, args.mix, args.connections)
        print(f"Bastion pid {server.pid} on {args.backend}; seeded {len(ids)} records; mix create,get,list = "
              f"{args.mix}; {args.connections} connections; load generator: {load.name}.")
        print(machine_line(), flush=True)
        target, peak = args.rate, None
        if target is None:
            peak = load.run(10)
            target = args.fraction * peak.rps
            print(f"Peak (10 s unpaced): {peak.rps:.0f} req/s, p99 {peak.p99_ms:.2f} ms, errors {peak.errors}; "
                  f"target {args.fraction:.0%} = {target:.0f} req/s", flush=True)
        samples = soak(load, server.pid, args, target, peak)
        if server.poll() is not None:
            print(f"Bastion exited during the soak:\n{(workdir / 'server.log').read_text()[-2000:]}")
            return 1
        print("\n" + summary(samples, target))
        print(chart(samples, args.chart, f"Bastion soak on {args.backend}: {target:.0f} req/s target", target))
        if args.json:
            args.json.write_text(json.dumps({"target_rps": target, "backend": args.backend,
                                             "samples": [{**s.__dict__, "rps": s.rps} for s in samples]}, indent=2))
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the server.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        if dbname:
            try:
                pg_drop(dbname)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                print(f"could not drop database {dbname}: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        base, ids_file, mix, seconds, conns, rate = sys.argv[2:8]
        asyncio.run(_loadgen(base, ids_file, mix, float(seconds), int(conns), float(rate)))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
