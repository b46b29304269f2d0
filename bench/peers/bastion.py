"""Bastion (``bastion serve``) and the raw ceiling (``bench/raw_ceiling.py``) as systems.

Bastion is seeded through its API as ``bench/list.py`` does it (50 users, then the posts
by ``POST /api/batch``, 1,000 per batch); the ceiling of the same backend gets a copy of
Bastion's rows by SQL (posts and users: same ids, owners, ``created`` values and argon2
hashes), so Bastion must run first on that backend.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from auth import copy_users, read_users, sign_in_all
from common import (
    HOST,
    free_port,
    pg_url,
    start_bastion,
    start_ceiling,
    superuser_token,
    wait_ready,
)
from list import LIST_QUERY, read_rows, seed_bastion, sql_run

from peers import (
    JSON_HEADERS,
    USERS,
    Scenario,
    System,
    check_one,
    check_page,
    published_count,
)

RECORDS = "/api/collections/posts/records"
USERS_AUTH = "/api/collections/users"
OWNER_RULE = "owner = @request.auth.id"


def _items(body: Any) -> Any:
    return body.get("items") if isinstance(body, dict) else None


def _has_token(body: Any) -> bool:
    return isinstance(body.get("token"), str) and isinstance(body.get("record"), dict)


class _PocketBaseShaped(System):
    """What Bastion and the ceiling share: the same paths, so the same scenarios."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend
        self.key = f"{self.key}-{backend}"
        self.ids: list[str] = []
        self.owners: list[str] = []
        self.tokens: list[str] = []
        self.db_url = ""

    def _db(self, ctx: Any) -> None:
        self.root = ctx.workdir / self.key
        self.root.mkdir(parents=True, exist_ok=True)
        if self.backend == "postgres":
            self.dbname = ctx.new_database(self.key)
            self.db_url = pg_url(self.dbname)

    def _where(self) -> Any:
        raise NotImplementedError

    def _owner_lines(self) -> list[str]:
        return self.tokens

    owner_note = ""

    def scenarios(self, ctx: Any) -> list[Scenario]:
        total = published_count(ctx.records)
        listing = f"{RECORDS}?{LIST_QUERY}"
        owner0 = self.owners[0]
        return [
            Scenario("list", "GET", f"{listing}&skipTotal=1", check=check_page(_items, "created")),
            Scenario("list+total", "GET", listing, check=check_page(
                _items, "created", lambda b: b.get("totalItems"), total)),
            Scenario("get", "GET", RECORDS, "id", self.ids, check=check_one(
                (200,), lambda b: b.get("id") == self.ids[0])),
            Scenario("owner list", "GET", f"{listing}&skipTotal=1", "auth", self._owner_lines(),
                     check=check_page(_items, "created", each=lambda i: i.get("owner") == owner0),
                     before=self._owner_rule_on, after=self._owner_rule_off, note=self.owner_note),
            Scenario("expand list", "GET", f"{listing}&skipTotal=1&expand=owner", check=check_page(
                _items, "created", each=lambda i: (i.get("expand") or {}).get("owner", {}).get("id") == i["owner"])),
            Scenario("auth-with-password", "POST", f"{USERS_AUTH}/auth-with-password", "password",
                     [f"user{i}@example.com" for i in range(USERS)], check=check_one((200,), _has_token)),
            Scenario("auth-refresh", "POST", f"{USERS_AUTH}/auth-refresh", "refresh", self.tokens,
                     check=check_one((200,), _has_token)),
            Scenario("create", "POST", RECORDS, "create", headers=dict(JSON_HEADERS),
                     check=check_one((200,), lambda b: isinstance(b.get("id"), str))),
        ]

    def _owner_rule_on(self) -> None:
        pass

    def _owner_rule_off(self) -> None:
        pass


class Bastion(_PocketBaseShaped):
    key = "bastion"
    label = "Bastion"

    def __init__(self, backend: str) -> None:
        super().__init__(backend)
        self.superuser = ""

    def settings(self) -> str:
        processes = "1 process" if self.workers == 1 else f"--workers {self.workers}"
        return (f"`bastion serve` with its defaults: {processes}, no access log, "
                "rate limits off; per-identity sign-in limits turned off (PATCH /api/settings)")

    def start(self, ctx: Any) -> None:
        self._db(ctx)
        port = free_port()
        self.base = f"http://{HOST}:{port}"
        self.proc = start_bastion(ctx.procs, self.root, port, self.db_url, self.workers)
        wait_ready(self.base, self.proc, self.root / "server.log")

    def _where(self) -> Any:
        return self.db_url if self.backend == "postgres" else self.root / "data" / "data.db"

    def _patch(self, collection: str, body: dict[str, Any]) -> None:
        r = httpx.patch(f"{self.base}/api/collections/{collection}", json=body,
                        headers={"Authorization": self.superuser}, timeout=60)
        if r.status_code >= 400:
            raise RuntimeError(f"PATCH {collection} {body} -> {r.status_code}: {r.text[:500]}")

    def seed(self, ctx: Any) -> str:
        self.superuser = superuser_token(self.base)
        # per-identity sign-in limits off (20 a minute by default), as bench/auth.py does:
        # 50 users signing in many times a minute would measure the 429, not a sign-in
        r = httpx.patch(f"{self.base}/api/settings", json={"identityRateLimits": {"enabled": False}},
                        headers={"Authorization": self.superuser}, timeout=60)
        if r.status_code >= 400:
            raise RuntimeError(f"turning identity limits off -> {r.status_code}: {r.text[:500]}")
        self.owners, self.tokens = asyncio.run(seed_bastion(self.base, self.superuser, ctx.records, USERS))
        # public create for the create scenario; users viewable so that expand=owner shows them
        self._patch("posts", {"createRule": ""})
        self._patch("users", {"viewRule": ""})
        posts = read_rows(self.backend, self._where())
        ctx.shared[self.backend] = {"posts": posts, "users": read_users(self.backend, self._where()),
                                    "owners": self.owners}
        self.ids = [str(row[0]) for row in posts]
        return (f"through its API: {USERS} users in one POST /api/batch, the posts in POST /api/batch "
                "of 1,000 (as bench/list.py)")

    def _owner_rule_on(self) -> None:
        self._patch("posts", {"listRule": OWNER_RULE})

    def _owner_rule_off(self) -> None:
        self._patch("posts", {"listRule": ""})


class Ceiling(_PocketBaseShaped):
    key = "ceiling"
    label = "raw ceiling"

    def settings(self) -> str:
        return (f"bench/raw_ceiling.py: Starlette + SQLAlchemy Core, uvicorn with {self.workers} worker(s) "
                "(uvloop, httptools); same drivers and engine settings as Bastion")

    def start(self, ctx: Any) -> None:
        if self.backend not in ctx.shared:
            raise RuntimeError(f"the ceiling copies Bastion's rows: run bastion-{self.backend} too")
        self._db(ctx)
        port = free_port()
        self.base = f"http://{HOST}:{port}"
        self.proc = start_ceiling(ctx.procs, self.root, port, self.db_url, self.workers)
        wait_ready(self.base, self.proc, self.root / "server.log")

    def _where(self) -> Any:
        return self.db_url if self.backend == "postgres" else self.root / "data.db"

    owner_note = "(Authorization: a random user's id: the ceiling adds owner = ? without a token)"

    def _owner_lines(self) -> list[str]:
        return self.owners

    def seed(self, ctx: Any) -> str:
        shared = ctx.shared[self.backend]
        sql_run(self.backend, self._where(), [], rows=shared["posts"])
        copy_users(self.backend, self._where(), shared["users"])
        self.owners = shared["owners"]
        self.ids = [str(row[0]) for row in shared["posts"]]
        self.tokens = asyncio.run(sign_in_all(self.base, USERS))
        return "a copy of Bastion's rows by SQL (posts and users), then each user signs in once"
