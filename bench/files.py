"""Files API throughput: uploads, kept thumbs and originals, local folder against S3.

For each storage (``local``: ``--dir/storage``; ``s3``: a moto S3 server this script
starts on 127.0.0.1 in its own process), start ``bastion serve`` (SQLite, one process)
on a fresh data dir, create a ``photos`` collection with a ``file`` field, upload
``--records`` records holding the same ~100 KiB PNG (made with Pillow at the start), ask
each for its ``100x100`` thumb once (so it is made and kept), then load it with

* ``get``:      ``GET /api/collections/photos/records/{id}`` (the baseline: no storage);
* ``thumb``:    ``GET /api/files/photos/{id}/{name}?thumb=100x100`` (a kept thumb);
* ``original``: ``GET /api/files/photos/{id}/{name}`` (the ~100 KiB file);
* ``upload``:   ``POST /api/collections/photos/records``, multipart: a title and the PNG;

and report requests/s, p50, p99, errors, the server's CPU per request, its RSS (idle
after seeding, and after each scenario) and, for S3, moto's CPU per request (moto shares
the cores with Bastion and the load generator). One table puts local and S3 side by
side, then the thumb / get ratio (the aim: at least 70 %).

Load generator: ``wrk`` when installed (a Lua script picks random paths, and builds the
multipart body once per thread), else a bounded asyncio + httpx generator in its own
process.

    .venv/bin/python bench/files.py                     # 10 s per scenario after 3 s warm-up
    .venv/bin/python bench/files.py --quick             # 2 s per scenario
    .venv/bin/python bench/files.py --storages local --profile /tmp/prof   # + py-spy of the thumb load

Only 127.0.0.1 is loaded; every run is bounded in time; every process started here is
stopped by its PID (also on Ctrl-C and errors) and the temporary folder is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
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
    REQUEST_TIMEOUT_S,
    WRK_DONE_LUA,
    LoadResult,
    Processes,
    PythonLoad,
    WrkLoad,
    add_load_args,
    check_load_args,
    cpu_seconds,
    fmt_mib,
    fmt_us,
    free_port,
    loadavg,
    machine_line,
    measure,
    print_loadgen_result,
    rss_mib,
    sigterm_to_interrupt,
    start_bastion,
    superuser_token,
    wait_ready,
    warn_if_busy,
)

COLLECTION_NAME = "photos"
RECORDS_PATH = f"/api/collections/{COLLECTION_NAME}/records"
FILES_PATH = f"/api/files/{COLLECTION_NAME}"
COLLECTION = {
    "name": COLLECTION_NAME, "listRule": "", "viewRule": "", "createRule": "",
    "fields": [
        {"name": "title", "type": "text"},
        {"name": "image", "type": "file", "maxSelect": 1, "maxSize": 1024 * 1024, "mimeTypes": ["image/png"]},
    ],
}
THUMB = "100x100"
IMAGE_BYTES = 100 * 1024  # the PNG is the smallest square of noise at least this large
SCENARIOS = ("get", "thumb", "original", "upload")
STORAGES = ("local", "s3")

# wrk runs this in each thread's own Lua state. Args after "--": mode, file, path.
#   paths:  file lists request paths, one is picked at random per request;
#   upload: file is the PNG; one multipart POST to path, built once per thread.
WRK_LUA = r"""
local mode, paths, req = nil, {}, nil
local threads_made = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function init(args)
  mode = args[1]
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  if mode == "paths" then
    for line in io.lines(args[2]) do
      if #line > 0 then paths[#paths + 1] = line end
    end
  else
    local f = assert(io.open(args[2], "rb"))
    local png = f:read("*a")
    f:close()
    local b = "BastionBenchBoundary" .. (tid or 0)
    local body = "--" .. b .. "\r\n" ..
      'Content-Disposition: form-data; name="title"\r\n\r\nbench upload\r\n' ..
      "--" .. b .. "\r\n" ..
      'Content-Disposition: form-data; name="image"; filename="bench.png"\r\n' ..
      "Content-Type: image/png\r\n\r\n" .. png .. "\r\n--" .. b .. "--\r\n"
    req = wrk.format("POST", args[3], { ["Content-Type"] = "multipart/form-data; boundary=" .. b }, body)
  end
end

function request()
  if mode == "paths" then
    return wrk.format("GET", paths[math.random(#paths)])
  end
  return req
end
""" + WRK_DONE_LUA


# --------------------------------------------------------------------------- the image
def make_png(target: int = IMAGE_BYTES) -> bytes:
    """The smallest square PNG of (seeded) RGB noise of at least ``target`` bytes."""
    from PIL import Image

    rnd = random.Random(20261208)
    side = int((target / 3) ** 0.5) - 4
    while True:
        img = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
        out = io.BytesIO()
        img.save(out, "PNG")
        if out.tell() >= target:
            return out.getvalue()
        side += 1


# --------------------------------------------------------------------------- moto
def moto_main() -> None:
    """``python bench/files.py _moto``: moto's S3 server (Bastion's test helper) with one
    bucket, its ``s3`` settings printed as one line; runs until SIGTERM."""
    from bastion.testing.s3 import MotoS3

    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before moto's threads start: they inherit it
    with MotoS3("bench-files") as s3:
        print("MOTO " + json.dumps(s3.options), flush=True)
        signal.sigwait(stop)


def start_moto(procs: Processes, workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    log = workdir / "moto.log"
    proc = procs.start([sys.executable, str(Path(__file__).resolve()), "_moto"], log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        line = next((x for x in log.read_text().splitlines() if x.startswith("MOTO ")), None)
        if line:
            return proc, json.loads(line[5:])
        time.sleep(0.1)
    raise RuntimeError(f"moto not ready after 60 s:\n{log.read_text()[-2000:]}")


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


# --------------------------------------------------------------------------- seeding, checks
async def seed(base: str, token: str, png: bytes, count: int, s3: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The collection, the storage setting, ``count`` uploads and their thumbs asked for
    once; return (record id, file name) of each."""
    import httpx

    su = {"Authorization": token}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        if s3 is not None:
            r = await client.patch("/api/settings", json={"s3": s3}, headers=su)
            r.raise_for_status()
        r = await client.post("/api/collections", json=COLLECTION, headers=su)
        r.raise_for_status()
        made: list[tuple[str, str]] = []
        queue = iter(range(count))

        async def worker() -> None:
            for n in queue:
                r = await client.post(RECORDS_PATH, data={"title": f"seed {n}"},
                                      files={"image": ("seed.png", png, "image/png")})
                r.raise_for_status()
                rec, name = r.json()["id"], r.json()["image"]
                made.append((rec, name))
                r = await client.get(f"{FILES_PATH}/{rec}/{name}", params={"thumb": THUMB})
                r.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(4)))
    return made


def thumb_kept(root: Path, s3: dict[str, Any] | None, col_id: str, rec: str, name: str) -> bool:
    key = f"{col_id}/{rec}/thumbs_{name}/{THUMB}_{name}"
    if s3 is None:
        return (root / "data" / "storage" / key).is_file()
    import boto3

    client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"],
                          aws_access_key_id=s3["accessKey"], aws_secret_access_key=s3["secret"])
    try:
        client.head_object(Bucket=s3["bucket"], Key=key)
        return True
    except Exception:  # noqa: BLE001 - any failure: not there
        return False
    finally:
        client.close()


def check(base: str, mode: str, made: list[tuple[str, str]], png: bytes, kept: Any) -> None:
    """One request of the scenario, its answer checked; RuntimeError when it is wrong."""
    import httpx
    from PIL import Image

    rec, name = made[0]
    with httpx.Client(base_url=base, timeout=30) as client:
        if mode == "get":
            r = client.get(f"{RECORDS_PATH}/{rec}")
            ok = r.status_code == 200 and r.json().get("id") == rec and r.json().get("image") == name
        elif mode == "thumb":
            r = client.get(f"{FILES_PATH}/{rec}/{name}", params={"thumb": THUMB})
            ok = (r.status_code == 200 and r.headers.get("content-type") == "image/png"
                  and Image.open(io.BytesIO(r.content)).size == (100, 100) and kept(rec, name))
        elif mode == "original":
            r = client.get(f"{FILES_PATH}/{rec}/{name}")
            ok = r.status_code == 200 and r.content == png
        else:
            r = client.post(RECORDS_PATH, data={"title": "check"}, files={"image": ("check.png", png, "image/png")})
            ok = r.status_code == 200 and str(r.json().get("image", "")).endswith(".png")
            if ok:
                back = client.get(f"{FILES_PATH}/{r.json()['id']}/{r.json()['image']}")
                ok = back.status_code == 200 and back.content == png
    if not ok:
        raise RuntimeError(f"{mode}: unexpected answer {r.status_code} {r.headers.get('content-type')} "
                           f"{r.content[:300]!r}")


# --------------------------------------------------------------------------- load generators
async def _loadgen(base: str, mode: str, arg: str, seconds: float, connections: int) -> None:
    import httpx

    paths = [x for x in Path(arg).read_text().split() if x] if mode == "paths" else []
    png = Path(arg).read_bytes() if mode == "upload" else b""
    latencies: list[float] = []
    detail: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        start = time.monotonic()
        deadline = start + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    if mode == "paths":
                        r = await client.get(random.choice(paths))
                    else:
                        r = await client.post(RECORDS_PATH, data={"title": "bench upload"},
                                              files={"image": ("bench.png", png, "image/png")})
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


# --------------------------------------------------------------------------- profile
# Frames every sample of a thread has (process, thread, start-up, the event loop's run)
SKIP_FRAMES = ("process ", "thread ", "<module> ", "Thread.", "_bootstrap", "main (", "_main (", "serve (", "_run (",
               "run (bastion", "Runner.run", "Command.", "Context.invoke", "TyperGroup.", "Typer.", "get_callback.")


def summarize_profile(folded: Path, top: int = 18) -> str:
    """The frames with most samples in a py-spy ``--format raw`` file: inclusive and self."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in {f for f in frames if not f.startswith(SKIP_FRAMES)}:
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; inclusive:"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- one storage
@dataclass
class StorageResult:
    rss_idle_mib: float | None = None
    moto_rss_mib: tuple[float | None, float | None] = (None, None)
    scenarios: dict[str, LoadResult] = field(default_factory=dict)
    moto_cpu_us: dict[str, float | None] = field(default_factory=dict)


def bench_storage(storage: str, args: argparse.Namespace, procs: Processes, loadgen: WrkLoad | PythonLoad,
                  workdir: Path, png_file: Path, png: bytes) -> StorageResult:
    root = workdir / storage
    root.mkdir(parents=True, exist_ok=True)
    moto, s3 = (None, None)
    if storage == "s3":
        moto, s3 = start_moto(procs, root)
    port = free_port()
    base = f"http://{HOST}:{port}"
    server = start_bastion(procs, root, port, "")
    try:
        wait_ready(base, server, root / "server.log")
        token = superuser_token(base)
        t0 = time.monotonic()
        made = asyncio.run(seed(base, token, png, args.records, s3))
        col_id = _collection_id(base, token)
        print(f"  {storage:5} pid {server.pid}{f' (moto pid {moto.pid})' if moto else ''}: uploaded "
              f"{len(made)} records and made their thumbs in {time.monotonic() - t0:.1f}s", flush=True)
        lists = {
            "get": [f"{RECORDS_PATH}/{rec}" for rec, _ in made],
            "thumb": [f"{FILES_PATH}/{rec}/{name}?thumb={THUMB}" for rec, name in made],
            "original": [f"{FILES_PATH}/{rec}/{name}" for rec, name in made],
        }
        result = StorageResult(rss_idle_mib=rss_mib(server.pid))
        if moto:
            result.moto_rss_mib = (rss_mib(moto.pid), None)
        for mode in args.scenarios:
            check(base, mode, made, png, lambda r, n: thumb_kept(root, s3, col_id, r, n))
            if mode == "upload":
                kind, arg = "upload", png_file
            else:
                kind, arg = "paths", root / f"{mode}.txt"
                arg.write_text("\n".join(lists[mode]) + "\n")
            if args.warmup > 0:
                loadgen.run(base, kind, arg, args.warmup, args.connections)
            spy = _start_profile(procs, args, storage, mode, server.pid)
            moto0 = cpu_seconds(moto.pid) if moto else None
            res = measure(server.pid, lambda k=kind, a=arg: loadgen.run(base, k, a, args.duration, args.connections))
            moto1 = cpu_seconds(moto.pid) if moto else None
            if spy is not None:
                _finish_profile(procs, spy, args, storage, mode)
            result.scenarios[mode] = res
            result.moto_cpu_us[mode] = ((moto1 - moto0) * 1e6 / res.requests
                                        if moto0 is not None and moto1 is not None and res.requests else None)
            detail = f" {res.error_detail}" if res.error_detail else ""
            moto_cpu = f"  moto CPU {result.moto_cpu_us[mode]:.0f} us/req" if moto else ""
            print(f"  {storage:5} {mode:8}: {res.rps:8.0f} req/s  p50 {res.p50_ms:6.2f} ms  "
                  f"p99 {res.p99_ms:6.2f} ms  errors {res.errors}{detail}  "
                  f"server CPU {res.cpu_us_per_req or 0:.0f} us/req{moto_cpu}  RSS {fmt_mib(res.rss_after_mib)} MiB  "
                  f"(loadavg {loadavg()})", flush=True)
        if moto:
            result.moto_rss_mib = (result.moto_rss_mib[0], rss_mib(moto.pid))
        if server.poll() is not None:
            raise RuntimeError(f"bastion exited during the run:\n{(root / 'server.log').read_text()[-2000:]}")
        return result
    finally:
        procs.stop(server)
        if moto:
            procs.stop(moto)


def _collection_id(base: str, token: str) -> str:
    import httpx

    r = httpx.get(f"{base}/api/collections/{COLLECTION_NAME}", headers={"Authorization": token}, timeout=30)
    r.raise_for_status()
    return str(r.json()["id"])


def _start_profile(procs: Processes, args: argparse.Namespace, storage: str, mode: str,
                   pid: int) -> subprocess.Popen[bytes] | None:
    if args.profile is None or mode != "thumb":
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    out = args.profile / f"thumb-{storage}.folded"
    return procs.start([args.py_spy, "record", "-p", str(pid), "-r", "100", "-d", str(max(1, round(args.duration))),
                        "--gil", "--format", "raw", "-o", str(out), "--nonblocking"],
                       log=args.profile / f"py-spy-{storage}.log")


def _finish_profile(procs: Processes, spy: subprocess.Popen[bytes], args: argparse.Namespace, storage: str,
                    mode: str) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        spy.wait(timeout=30)
    procs.stop(spy)
    out = args.profile / f"{mode}-{storage}.folded"
    if out.is_file():
        print(f"  py-spy of {storage} {mode} ({out}):\n{summarize_profile(out)}", flush=True)
    else:
        print(f"  py-spy wrote nothing: {(args.profile / f'py-spy-{storage}.log').read_text()[-500:]}", flush=True)


# --------------------------------------------------------------------------- report
def render(results: dict[str, StorageResult]) -> str:
    names = list(results)
    head = ("| scenario | " + " | ".join(f"{s} req/s" for s in names)
            + " | p50 / p99 ms " + " · ".join(names) + " | errors " + " / ".join(names)
            + " | server CPU µs/req " + " / ".join(names)
            + (" | moto CPU µs/req" if "s3" in results else "")
            + " | " + " | ".join(f"RSS MiB {s} idle → after" for s in names) + " |")
    lines = [head, "|" + "---|" * (head.count(" | ") + 1)]
    scenarios = next(iter(results.values())).scenarios
    for mode in scenarios:
        rows = [results[s].scenarios[mode] for s in names]
        cells = [f"{r.rps:,.0f}" for r in rows]
        cells.append(" · ".join(f"{r.p50_ms:.2f} / {r.p99_ms:.2f}" for r in rows))
        cells.append(" / ".join(str(r.errors) for r in rows))
        cells.append(" / ".join(fmt_us(r.cpu_us_per_req) for r in rows))
        if "s3" in results:
            cells.append(fmt_us(results["s3"].moto_cpu_us.get(mode)))
        cells += [f"{fmt_mib(results[s].rss_idle_mib)} → {fmt_mib(r.rss_after_mib)}"
                  for s, r in zip(names, rows, strict=True)]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(results: dict[str, StorageResult]) -> list[str]:
    out = []
    for storage, res in results.items():
        get, thumb = res.scenarios.get("get"), res.scenarios.get("thumb")
        if get and thumb and get.rps:
            pct = 100 * thumb.rps / get.rps
            verdict = "meets" if pct >= 70 else "misses"
            out.append(f"thumb / get ({storage}): {thumb.rps:,.0f} / {get.rps:,.0f} req/s = {pct:.0f} % "
                       f"({verdict} the aim of >= 70 %)")
    return out


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Bastion files API: uploads, thumbs and originals, local vs S3 (moto).")
    add_load_args(p)
    p.set_defaults(backends="sqlite")
    p.add_argument("--records", type=int, default=50, help="records uploaded (each with the PNG) before the load")
    p.add_argument("--storages", default="local,s3", help="comma list of local,s3 (default both)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {','.join(SCENARIOS)}")
    p.add_argument("--profile", type=Path, help="record py-spy (100 Hz, the thread holding the GIL) on the server "
                                                "during each thumb load, into this folder, and print the top frames")
    args = check_load_args(p, p.parse_args(argv))
    if args.backends != ["sqlite"]:
        p.error("bench/files.py runs on SQLite only (--backends sqlite)")
    args.storages = [s.strip() for s in args.storages.split(",") if s.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not args.storages or set(args.storages) - set(STORAGES):
        p.error(f"--storages: a comma list of {', '.join(STORAGES)}")
    if not args.scenarios or set(args.scenarios) - set(SCENARIOS):
        p.error(f"--scenarios: a comma list of {', '.join(SCENARIOS)}")
    if not 1 <= args.records <= 10_000:
        p.error("bounds: 1 <= --records <= 10000")
    args.py_spy = None
    if args.profile is not None:
        args.py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if args.py_spy is None:
            p.error("--profile needs py-spy (pip install py-spy)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, sigterm_to_interrupt)
    signal.signal(signal.SIGINT, sigterm_to_interrupt)  # also when started with SIGINT ignored (e.g. `cmd &`)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-files-"))
    results: dict[str, StorageResult] = {}
    started = time.monotonic()
    try:
        use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
        if args.loadgen == "wrk" and not shutil.which("wrk"):
            print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
            return 2
        loadgen: WrkLoad | PythonLoad = (WrkLoad(procs, workdir, args.threads, WRK_LUA, "files.lua", RECORDS_PATH)
                                         if use_wrk else PythonLoad(procs, workdir, Path(__file__).resolve()))
        if use_wrk:
            lg_desc = (f"wrk, {min(args.threads, args.connections)} threads (a Lua script; the multipart "
                       "body built once per thread)")
        else:
            lg_desc = f"{loadgen.name} ({'forced by --loadgen' if args.loadgen == 'python' else 'wrk not found'})"
        png = make_png()
        png_file = workdir / "bench.png"
        png_file.write_bytes(png)
        from PIL import Image

        size = Image.open(io.BytesIO(png)).size
        print(f"Load generator: {lg_desc}; {args.connections} connections; {args.duration:g} s per scenario "
              f"after {args.warmup:g} s warm-up; {args.records} records uploaded first; 127.0.0.1 only.")
        print(f"Image: PNG {size[0]}x{size[1]} of noise, {len(png):,} bytes; thumbs {THUMB}, asked once per "
              f"record before the load (made and kept). Bastion: bastion serve, SQLite, 1 process.")
        if "s3" in args.storages:
            print(f"S3: moto {moto_version()} (bastion.testing.s3.MotoS3) in its own process on 127.0.0.1. "
                  "moto is a Python server sharing the same cores with Bastion and the load generator: the s3 "
                  "figures include its CPU (column 'moto CPU µs/req'), they are not what a real S3 would give.")
        print(machine_line(), flush=True)
        warn_if_busy()
        for storage in args.storages:
            results[storage] = bench_storage(storage, args, procs, loadgen, workdir, png_file, png)
        print(f"\nResults (load generator: {lg_desc}; {args.connections} connections; "
              f"{args.duration:g} s per scenario; total run {time.monotonic() - started:.0f} s; "
              f"load average after: {loadavg()})\n")
        print(render(results))
        if "s3" in results:
            moto_rss = results["s3"].moto_rss_mib
            print(f"\nmoto RSS MiB idle → after: {fmt_mib(moto_rss[0])} → {fmt_mib(moto_rss[1])} "
                  "(moto keeps uploaded objects in memory)")
        for line in ratios(results):
            print(line)
        if args.json:
            args.json.write_text(json.dumps({
                "loadgen": lg_desc, "connections": args.connections, "duration": args.duration,
                "image_bytes": len(png), "results": {
                    s: {"rss_idle_mib": r.rss_idle_mib, "moto_rss_mib": r.moto_rss_mib,
                        "scenarios": {m: {**x.__dict__, "rps": x.rps, "moto_cpu_us_per_req": r.moto_cpu_us.get(m)}
                                      for m, x in r.scenarios.items()}}
                    for s, r in results.items()}}, indent=2))
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; stopping servers.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        base, mode, arg, seconds, conns = sys.argv[2:7]
        asyncio.run(_loadgen(base, mode, arg, float(seconds), int(conns)))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "_moto":
        moto_main()
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
