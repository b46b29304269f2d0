"""Parse Server as a system: its own CLI (``bin/parse-server CONFIG``), one Node process,
PostgreSQL only here (a ``postgres://`` ``databaseURI``: no MongoDB).

The fixed part of the configuration is ``parse-server.json`` beside this file (app id,
master key, mount path, ``host`` 127.0.0.1, ``allowClientClassCreation: false``,
``logLevel: warn``); the script adds port, ``serverURL``, ``databaseURI`` and
``logsFolder``. ``package.json`` pins Parse's dependency ``router`` to 2.2.0: with 2.3.0
``POST /parse/batch`` answers 500.

Seeding, through its API with the master key: ``POST /parse/schemas/posts`` (``title``,
``body`` String, ``views`` Number, ``published`` Boolean; ``createdAt`` is Parse's own)
with class-level permissions ``find``, ``get``, ``count`` and ``create`` public, then the
posts by ``POST /parse/batch`` with 1,000 creates each. Requests under load carry only
``X-Parse-Application-Id`` (no REST key is configured, no session).
"""

from __future__ import annotations

import json
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

CONFIG = Path(__file__).resolve().parent / "parse-server.json"
CHUNK = 1000
LIST = '/parse/classes/posts?where=%7B%22published%22%3Atrue%7D&order=-createdAt&limit=20'


def _results(body: Any) -> Any:
    return body.get("results") if isinstance(body, dict) else None


class Parse(System):
    label = "Parse Server"

    def __init__(self, backend: str) -> None:
        super().__init__()
        if backend != "postgres":
            raise ValueError("Parse Server runs on PostgreSQL only here")
        self.backend = backend
        self.key = "parse-postgres"
        self.config: dict[str, Any] = json.loads(CONFIG.read_text())
        self.ids: list[str] = []
        self.version = ""

    @property
    def app_headers(self) -> dict[str, str]:
        return {"X-Parse-Application-Id": self.config["appId"]}

    def settings(self) -> str:
        processes = "1 Node process (no cluster)" if self.workers == 1 else f"cluster: {self.workers}"
        return (f"Parse Server {self.version}: its CLI with bench/peers/parse-server.json, {processes}, "
                "logLevel warn; class-level permissions find/get/count/create public")

    def start(self, ctx: Any) -> None:
        self.version = ctx.peers.version("parse-server")
        self.root = ctx.workdir / self.key
        self.root.mkdir(parents=True, exist_ok=True)
        self.dbname = ctx.new_database(self.key)
        port = free_port()
        self.base = f"http://{HOST}:{port}"
        config = {**self.config, "port": port, "serverURL": f"{self.base}{self.config['mountPath']}",
                  "databaseURI": f"postgres://{ctx.pg_user}@{ctx.pg_host}:{ctx.pg_port}/{self.dbname}",
                  "logsFolder": str(self.root / "logs")}
        if self.workers > 1:
            config["cluster"] = self.workers
        (self.root / "config.json").write_text(json.dumps(config, indent=2))
        cli = ctx.peers.app / "node_modules" / "parse-server" / "bin" / "parse-server"
        log = self.root / "server.log"
        self.proc = ctx.procs.start([str(ctx.peers.node), str(cli), str(self.root / "config.json")],
                                    log=log, cwd=self.root)
        wait_http(f"{self.base}/parse/health", self.proc, log)

    def _master(self, method: str, path: str, body: Any) -> Any:
        headers = {**self.app_headers, "X-Parse-Master-Key": self.config["masterKey"]}
        r = httpx.request(method, self.base + path, json=body, headers=headers, timeout=300)
        if r.status_code >= 400:
            raise RuntimeError(f"Parse {method} {path} -> {r.status_code}: {r.text[:1000]}")
        return r.json()

    def seed(self, ctx: Any) -> str:
        public = {"*": True}
        self._master("POST", "/parse/schemas/posts", {
            "className": "posts",
            "fields": {"title": {"type": "String"}, "body": {"type": "String"},
                       "views": {"type": "Number"}, "published": {"type": "Boolean"}},
            "classLevelPermissions": {"find": public, "get": public, "count": public, "create": public,
                                      "update": {}, "delete": {}, "addField": {}, "protectedFields": {"*": []}},
        })
        for start in range(0, ctx.records, CHUNK):
            reqs = [{"method": "POST", "path": "/parse/classes/posts", "body": post(n)}
                    for n in range(start, min(ctx.records, start + CHUNK))]
            for answer in self._master("POST", "/parse/batch", {"requests": reqs}):
                if "success" not in answer:
                    raise RuntimeError(f"Parse batch create failed: {answer}")
                self.ids.append(answer["success"]["objectId"])
        return (f"through its API with the master key: POST /parse/schemas/posts (public CLPs), the posts "
                f"by POST /parse/batch of {CHUNK:,}")

    def scenarios(self, ctx: Any) -> list[Scenario]:
        total = published_count(ctx.records)
        app = self.app_headers
        return [
            Scenario("list", "GET", LIST, headers=dict(app), check=check_page(_results, "createdAt")),
            Scenario("list+total", "GET", f"{LIST}&count=1", headers=dict(app), check=check_page(
                _results, "createdAt", lambda b: b.get("count"), total)),
            Scenario("get", "GET", "/parse/classes/posts", "id", self.ids, headers=dict(app), check=check_one(
                (200,), lambda b: b.get("objectId") == self.ids[0])),
            Scenario("create", "POST", "/parse/classes/posts", "create", headers={**app, **JSON_HEADERS},
                     check=check_one((201,), lambda b: isinstance(b.get("objectId"), str))),
        ]
