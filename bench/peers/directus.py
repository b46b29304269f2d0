"""Directus as a system: ``directus bootstrap`` then ``directus start``, one Node process.

Settings: Directus's defaults (cache off, rate limiter off, activity and revisions recorded
for every create, as ``accountability: "all"`` is the default of a new collection), except
``TELEMETRY=false``, ``PRESSURE_LIMITER_ENABLED=false`` (its load shedding would answer
503 under a saturating benchmark load) and ``LOG_LEVEL=warn``. The fixed part of the
environment is ``directus.env`` beside this file; the script adds port, database and paths.

Seeding, through its API: the ``posts`` collection (``id`` integer auto-increment, ``title``
string, ``body`` text, ``views`` float, ``published`` boolean, ``created`` timestamp with
the ``date-created`` special), the public policy granted ``read`` and ``create`` on it
(all fields, no filter), then the posts by ``POST /items/posts`` with arrays of 1,000.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx
from common import HOST, free_port

from peers import (
    JSON_HEADERS,
    Scenario,
    System,
    check_one,
    check_page,
    post,
    published_count,
    wait_http,
)

ENV_FILE = Path(__file__).resolve().parent / "directus.env"
ADMIN = ("admin@example.com", "bench-admin-password-1")
CHUNK = 1000
LIST = "/items/posts?limit=20&sort=-created&filter[published][_eq]=true"


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) else None


class Directus(System):
    label = "Directus"

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend
        self.key = f"directus-{backend}"
        self.env: dict[str, str] = {}
        self.ids: list[str] = []
        self.version = ""

    def settings(self) -> str:
        return (f"Directus {self.version}: `directus start`, 1 Node process (it has no cluster mode of its own); "
                "defaults except "
                "TELEMETRY=false, PRESSURE_LIMITER_ENABLED=false, LOG_LEVEL=warn (bench/peers/directus.env); "
                "cache and rate limiter off (defaults); activity + revisions recorded per create (default)")

    def _environment(self, ctx: Any, port: int) -> dict[str, str]:
        env = {**os.environ, "PATH": f"{ctx.peers.node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.update(read_env_file(ENV_FILE))
        for sub in ("extensions", "uploads"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        env.update(HOST=HOST, PORT=str(port), PUBLIC_URL=f"http://{HOST}:{port}",
                   SECRET=secrets.token_hex(32), ADMIN_EMAIL=ADMIN[0], ADMIN_PASSWORD=ADMIN[1],
                   EXTENSIONS_PATH=str(self.root / "extensions"), STORAGE_LOCAL_ROOT=str(self.root / "uploads"))
        if self.backend == "postgres":
            self.dbname = ctx.new_database(self.key)
            env.update(DB_CLIENT="pg", DB_HOST=ctx.pg_host, DB_PORT=str(ctx.pg_port),
                       DB_DATABASE=self.dbname, DB_USER=ctx.pg_user)
        else:
            env.update(DB_CLIENT="sqlite3", DB_FILENAME=str(self.root / "data.db"))
        return env

    def start(self, ctx: Any) -> None:
        self.version = ctx.peers.version("directus")
        self.root = ctx.workdir / self.key
        self.root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.base = f"http://{HOST}:{port}"
        self.env = self._environment(ctx, port)
        cli = [str(ctx.peers.node), str(ctx.peers.app / "node_modules" / "directus" / "cli.js")]
        log = self.root / "server.log"
        with open(log, "ab") as out:
            done = subprocess.run([*cli, "bootstrap"], cwd=self.root, env=self.env, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"directus bootstrap failed ({done.returncode}):\n{log.read_text()[-3000:]}")
        self.proc = ctx.procs.start([*cli, "start"], log=log, cwd=self.root, env=self.env)
        wait_http(f"{self.base}/server/ping", self.proc, log)

    def _call(self, method: str, path: str, body: Any, token: str) -> Any:
        r = httpx.request(method, self.base + path, json=body, timeout=300,
                          headers={"Authorization": f"Bearer {token}"})
        if r.status_code >= 400:
            raise RuntimeError(f"Directus {method} {path} -> {r.status_code}: {r.text[:1000]}")
        return _data(r.json()) if r.content else None

    def seed(self, ctx: Any) -> str:
        r = httpx.post(f"{self.base}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=60)
        r.raise_for_status()
        token = r.json()["data"]["access_token"]
        self._call("POST", "/collections", {"collection": "posts", "schema": {}, "meta": {}, "fields": [
            {"field": "id", "type": "integer", "meta": {"hidden": True, "readonly": True},
             "schema": {"is_primary_key": True, "has_auto_increment": True}},
            {"field": "title", "type": "string"}, {"field": "body", "type": "text"},
            {"field": "views", "type": "float"},
            {"field": "published", "type": "boolean", "schema": {"default_value": False}},
            {"field": "created", "type": "timestamp", "meta": {"special": ["date-created"]}},
        ]}, token)
        policies = self._call("GET", "/policies?fields=id,name&limit=-1", None, token)
        public = next(p["id"] for p in policies if p["name"] == "$t:public_label")
        self._call("POST", "/permissions", [
            {"policy": public, "collection": "posts", "action": action, "fields": ["*"], "permissions": {}}
            for action in ("read", "create")], token)
        for start in range(0, ctx.records, CHUNK):
            items = [post(n) for n in range(start, min(ctx.records, start + CHUNK))]
            created = self._call("POST", "/items/posts?fields=id", items, token)
            self.ids.extend(str(item["id"]) for item in created)
        return (f"through its API: POST /collections, the public policy granted read + create on posts "
                f"(POST /permissions), the posts by POST /items/posts with arrays of {CHUNK:,}")

    def scenarios(self, ctx: Any) -> list[Scenario]:
        total = published_count(ctx.records)
        return [
            Scenario("list", "GET", LIST, check=check_page(_data, "created")),
            Scenario("list+total", "GET", f"{LIST}&meta=filter_count", check=check_page(
                _data, "created", lambda b: (b.get("meta") or {}).get("filter_count"), total)),
            Scenario("get", "GET", "/items/posts", "id", self.ids, check=check_one(
                (200,), lambda b: str((_data(b) or {}).get("id")) == self.ids[0])),
            Scenario("create", "POST", "/items/posts", "create", headers=dict(JSON_HEADERS),
                     check=check_one((200,), lambda b: isinstance((_data(b) or {}).get("id"), int))),
        ]
