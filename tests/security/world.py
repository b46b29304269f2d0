"""The attack scenario of tests/security: a small social app on one engine, the actors
attacking it, and what they must never read (see test_attack_rules.py)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bastion.adapters.database import open_database
from bastion.adapters.store_memory import MemoryStore
from bastion.api.app import HttpOptions, create_asgi
from bastion.core.app import App
from bastion.testing import SUPERUSER_EMAIL, SUPERUSER_PASSWORD

PASSWORD = "correct-horse-battery-1"
OWNER = "owner = @request.auth.id"
POST_UPDATE_RULE = (
    "owner = @request.auth.id"
    " && (@request.body.owner:isset = false || @request.body.owner = @request.auth.id)"
    " && (@request.body.score:isset = false || @request.body.score <= 100)"
    " && (@request.body.members:isset = false"
    " || (@request.body.members:length <= 3 && @request.body.members:each != ''"
    " && @request.body.members ?= @request.auth.id))"
)
POST_CREATE_RULE = (
    "@request.auth.id != '' && owner = @request.auth.id"
    " && (@request.body.score:isset = false || @request.body.score <= 100)"
)
THROUGH_POST = "post.owner = @request.auth.id"
WRITE_COMMENT = "post.owner = @request.auth.id && author = @request.auth.id"
# An update rule is checked against the stored record: the body may not move a comment.
UPDATE_COMMENT = f"{WRITE_COMMENT} && @request.body.post:isset = false && @request.body.author:isset = false"
# Users are listed in creation order; emails sort as alice < bob < dan < kim < pat < yuki.
OTHERS = [("yuki@example.com", "Yuki"), ("kim@example.com", "Kim"), ("dan@example.com", "Dan"),
          ("pat@example.com", "Pat")]
AUTODATES = [{"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
             {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}]
TABLES = ("users", "posts", "comments", "vault", "likes", "members", "_superusers", "_apiKeys")


# --------------------------------------------------------------------------- the world
@dataclass
class Actor:
    name: str
    id: str = ""
    email: str = ""
    h: dict[str, str] = field(default_factory=dict)  # request headers (Authorization)


class World:
    """One database with the scenario, an in-process client, and the ids by name."""

    def __init__(self, backend: Any, root: Path) -> None:
        self.backend = backend
        self.root = root
        self.generation = 0
        self.client: httpx.AsyncClient
        self.app: App
        self.su: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.alice = Actor("alice")
        self.bob = Actor("bob")
        self.guest = Actor("guest")
        self.users: dict[str, str] = {}  # email -> id
        self.baseline: dict[str, Any] = {}
        self._db_name = ""
        self.checked = False  # the last assert_intact() found everything as built
        self.mark: tuple[Any, ...] = ()

    # -- lifecycle -----------------------------------------------------------------
    async def open(self) -> None:
        self.generation += 1
        self._db_name = f"ba_{secrets.token_hex(5)}"
        base = self.root / f"g{self.generation}"
        base.mkdir(parents=True, exist_ok=True)
        url = await self.backend.create_database(self._db_name, base)
        self.app = App(open_database(url, base / "data"), base / "migrations", store=MemoryStore())
        await self.app.start()
        await self.app.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
        asgi = create_asgi(self.app, HttpOptions(manage_lifespan=False, body_limit=1024 * 1024))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bastion.test")
        res = await self.client.post("/api/collections/_superusers/auth-with-password",
                                     json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD})
        assert res.status_code == 200, res.text
        self.su = {"Authorization": res.json()["token"]}
        await self.build()
        self.baseline = await self.state()
        self.mark = await self.fingerprint()

    async def close(self) -> None:
        await self.client.aclose()
        await self.app.close()
        await self.backend.drop_database(self._db_name)

    async def rebuild(self) -> None:
        await self.close()
        await self.open()

    # -- helpers -------------------------------------------------------------------
    async def call(self, method: str, url: str, who: Actor | dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        headers = who.h if isinstance(who, Actor) else (who or {})
        return await self.client.request(method, url, headers={**headers, **kw.pop("headers", {})}, **kw)

    async def ok(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        res = await self.call(method, url, self.su, **kw)
        assert res.status_code in (200, 204), (method, url, res.status_code, res.text)
        return res.json() if res.status_code == 200 else {}

    def fill(self, text: str) -> str:
        """``{A1}``-style placeholders → ids (``{alice}``, ``{bob}``, record names)."""
        names = {**self.ids, **{e.split("@")[0]: i for e, i in self.users.items()},
                 "alice": self.alice.id, "bob": self.bob.id,
                 "alice_email": self.alice.email, "bob_email": self.bob.email}
        return string.Formatter().vformat(text, (), names) if "{" in text else text

    def fill_any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.fill(value)
        if isinstance(value, list):
            return [self.fill_any(v) for v in value]
        if isinstance(value, dict):
            return {self.fill(k): self.fill_any(v) for k, v in value.items()}
        return value

    async def sign_in(self, actor: Actor, collection: str = "users") -> None:
        res = await self.client.post(f"/api/collections/{collection}/auth-with-password",
                                     json={"identity": actor.email, "password": PASSWORD})
        assert res.status_code == 200, res.text
        actor.id = res.json()["record"]["id"]
        actor.h = {"Authorization": res.json()["token"]}

    # -- the scenario --------------------------------------------------------------
    async def build(self) -> None:
        await self.ok("PATCH", "/api/collections/users", json={"listRule": "", "viewRule": ""})
        await self.ok("PATCH", "/api/settings", json={"batch": {"enabled": True, "maxRequests": 50}})
        for actor, name in ((self.alice, "Alice"), (self.bob, "Bob")):
            actor.email = f"{actor.name}@example.com"
            res = await self.client.post("/api/collections/users/records", json={
                "email": actor.email, "password": PASSWORD, "passwordConfirm": PASSWORD, "name": name})
            assert res.status_code == 200, res.text
            await self.sign_in(actor)
        self.users = {self.alice.email: self.alice.id, self.bob.email: self.bob.id}
        for email, name in OTHERS:
            rec = await self.ok("POST", "/api/collections/users/records", json={
                "email": email, "password": PASSWORD, "passwordConfirm": PASSWORD, "name": name,
                "emailVisibility": False})
            self.users[email] = rec["id"]
        await self.ok("POST", "/api/collections", json={
            "name": "posts", "listRule": OWNER, "viewRule": OWNER, "createRule": POST_CREATE_RULE,
            "updateRule": POST_UPDATE_RULE, "deleteRule": OWNER,
            "fields": [
                {"name": "owner", "type": "relation", "collectionId": "users", "maxSelect": 1, "required": True},
                {"name": "title", "type": "text"},
                {"name": "secret", "type": "text", "hidden": True},
                {"name": "reviewer", "type": "relation", "collectionId": "users", "maxSelect": 1, "hidden": True},
                {"name": "watchers", "type": "relation", "collectionId": "users", "maxSelect": 5, "hidden": True},
                {"name": "members", "type": "relation", "collectionId": "users", "maxSelect": 10},
                {"name": "tags", "type": "select", "values": ["news", "draft", "private"], "maxSelect": 3},
                {"name": "score", "type": "number"}, *AUTODATES,
            ]})
        await self.ok("POST", "/api/collections", json={
            "name": "comments", "listRule": THROUGH_POST, "viewRule": THROUGH_POST, "createRule": WRITE_COMMENT,
            "updateRule": UPDATE_COMMENT, "deleteRule": WRITE_COMMENT,
            "fields": [
                {"name": "post", "type": "relation", "collectionId": "posts", "maxSelect": 1, "required": True},
                {"name": "author", "type": "relation", "collectionId": "users", "maxSelect": 1},
                {"name": "body", "type": "text"}, *AUTODATES,
            ]})
        await self.ok("POST", "/api/collections", json={
            "name": "vault", "fields": [
                {"name": "post", "type": "relation", "collectionId": "posts", "maxSelect": 1},
                {"name": "code", "type": "text"}, *AUTODATES]})
        await self.ok("POST", "/api/collections", json={
            "name": "likes", "listRule": "", "viewRule": "",
            "createRule": "@request.auth.id != '' && user = @request.auth.id", "deleteRule": "user = @request.auth.id",
            "fields": [
                {"name": "post", "type": "relation", "collectionId": "posts", "maxSelect": 1},
                {"name": "user", "type": "relation", "collectionId": "users", "maxSelect": 1}, *AUTODATES]})
        await self.ok("POST", "/api/collections", json={
            "name": "post_view", "type": "view", "listRule": OWNER, "viewRule": OWNER,
            "viewQuery": "SELECT id, title, owner, score, secret FROM posts"})
        await self.ok("POST", "/api/collections", json={
            "name": "members", "type": "auth", "createRule": "", "listRule": "id = @request.auth.id",
            "viewRule": "id = @request.auth.id", "updateRule": "id = @request.auth.id",
            "deleteRule": "id = @request.auth.id", "fields": [{"name": "name", "type": "text"}, *AUTODATES]})
        a, b = self.alice.id, self.bob.id
        yuki, dan = self.users["yuki@example.com"], self.users["dan@example.com"]
        posts = {
            "A1": {"owner": a, "title": "alice-diary", "secret": "alice-secret-A1", "members": [a],
                   "tags": ["private"], "score": 42, "reviewer": dan},
            "A2": {"owner": a, "title": "alice-plans", "secret": "alice-secret-A2", "members": [a, b],
                   "tags": ["draft"], "score": 7},
            "B1": {"owner": b, "title": "bob-notes", "secret": "bob-secret-B1", "members": [b, a],
                   "tags": ["news"], "score": 5, "reviewer": yuki,
                   "watchers": [self.users["kim@example.com"]]},
        }
        for name, body in posts.items():
            self.ids[name] = (await self.ok("POST", "/api/collections/posts/records", json=body))["id"]
        A1, A2, B1 = self.ids["A1"], self.ids["A2"], self.ids["B1"]
        comments = {
            "CA1": {"post": A1, "author": a, "body": "alice-private-comment"},
            "CA2": {"post": A2, "author": a, "body": "alice-plans-comment"},
            "CAB": {"post": B1, "author": a, "body": "alice-on-bob"},
            "CB": {"post": B1, "author": b, "body": "bob-self"},
            "CY": {"post": B1, "author": self.users["yuki@example.com"], "body": "yuki-on-bob"},
            "CD": {"post": B1, "author": self.users["dan@example.com"], "body": "dan-on-bob"},
        }
        for name, body in comments.items():
            self.ids[name] = (await self.ok("POST", "/api/collections/comments/records", json=body))["id"]
        for name, body in {"VA": {"post": A1, "code": "VAULT-ALICE-A1"},
                           "VB": {"post": B1, "code": "VAULT-BOB-B1"}}.items():
            self.ids[name] = (await self.ok("POST", "/api/collections/vault/records", json=body))["id"]
        for name, body in {"LA": {"post": A1, "user": a}, "LB": {"post": B1, "user": b},
                           "LAB": {"post": B1, "user": a}, "LBA": {"post": A2, "user": b}}.items():
            self.ids[name] = (await self.ok("POST", "/api/collections/likes/records", json=body))["id"]

    # -- what must never change ----------------------------------------------------
    async def rows(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every row of the scenario's tables, straight from the database (hidden
        values, password hashes and token keys included)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        async with self.app.db.read() as conn:
            for name in TABLES:
                table = self.app.registry.table(self.app.registry.get(name))
                out[name] = {r["id"]: dict(r) for r in await conn.fetch_all(sa.select(table))}
        return out

    async def state(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every row but its ``updated`` time: Alice's, Bob's and the locked ones alike
        (every attack here must fail, so nothing may change at all)."""
        return {name: {i: {k: v for k, v in r.items() if k != "updated"} for i, r in rows.items()}
                for name, rows in (await self.rows()).items()}

    async def fingerprint(self) -> tuple[Any, ...]:
        """How many rows each table holds and its latest ``updated``, in one statement:
        every write through the API changes one or the other."""
        parts = []
        for name in TABLES:
            table = self.app.registry.table(self.app.registry.get(name))
            parts += [sa.select(sa.func.count()).select_from(table).scalar_subquery(),
                      sa.select(sa.func.max(table.c.updated)).scalar_subquery()]
        async with self.app.db.read() as conn:
            row = await conn.fetch_one(sa.select(*parts))
        assert row is not None
        return tuple(row.values())

    async def assert_intact(self) -> None:
        """Nothing stored changed (every attack here fails): a quick fingerprint, and the
        whole comparison when it moved (a write Bob was allowed leaves a new ``updated``)."""
        self.checked = False
        mark = await self.fingerprint()
        if mark != self.mark:
            now = await self.state()
            for name, before in self.baseline.items():
                if now[name] != before:
                    added = sorted(set(now[name]) - set(before))
                    gone = sorted(set(before) - set(now[name]))
                    changed = {i: {k: (v, now[name][i][k]) for k, v in r.items() if now[name][i][k] != v}
                               for i, r in before.items() if i in now[name] and now[name][i] != r}
                    raise AssertionError(f"{name} changed: added {added}, removed {gone}, changed {changed}")
            self.mark = mark
        self.checked = True


# What Bob must never read: hidden fields (his own included), the vault, Alice's private
# posts and comments, emails he may not see, password hashes.
SECRETS = ("alice-secret-A", "bob-secret-B1", "VAULT-ALICE", "VAULT-BOB", "alice-diary", "alice-plans",
           "alice-private-comment", "alice-plans-comment", "$argon2", "alice@example.com",
           "yuki@example.com", "kim@example.com", "dan@example.com", "pat@example.com")
# A guest reads no post or comment at all, and no email.
GUEST_SECRETS = (*SECRETS, "bob@example.com", "bob-notes", "bob-self", "alice-on-bob", "yuki-on-bob", "dan-on-bob")


def assert_error(res: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    """An error answer in PocketBase's shape, with ``status`` (or one of them)."""
    assert res.status_code in (status if isinstance(status, tuple) else (status,)), (res.status_code, res.text[:300])
    status = res.status_code
    body = res.json()
    assert set(body) - {"detail"} == {"status", "message", "data"} and body["status"] == status, body
    return body
