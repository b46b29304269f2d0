"""One request cannot take the database's connections from everyone else, for long or
for good (outside attack, hole #4: "one filter can take every SQLite reader, for minutes").

* a client filter may take only so many multi-valued relation steps, checked before the
  query runs (``core/records/filters.py`` ``FanOut``);
* every statement stops at ``query_timeout`` on every engine, with the same answer;
* a GET whose client disconnects is cancelled, and its SQLite statement interrupted;
* closing the database, and so stopping the server, never waits for a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from bastion.adapters.db_base import SqlDatabase
from bastion.adapters.db_mysql import MysqlDatabase
from bastion.adapters.db_postgres import PostgresDatabase
from bastion.adapters.db_sqlite import SqliteDatabase
from bastion.adapters.store_memory import MemoryStore
from bastion.api.app import HttpOptions, create_asgi
from bastion.cli.server import http_protocol
from bastion.core import errors
from bastion.core.app import App
from bastion.testing import SUPERUSER_EMAIL, SUPERUSER_PASSWORD, Server, run_cli, token_for
from bastion.testing import TestClient as Client

ATTACK = "owner.posts_via_owner.owner.posts_via_owner.title ?~ owner.posts_via_owner.id"
TWO_STEPS = "owner.posts_via_owner.title ?~ owner.posts_via_owner.id"
LIMIT = 0.5  # the statement time limit of these tests, in seconds


async def user_with_posts(client, n: int) -> dict[str, str]:
    """A self-registered user owning ``n`` posts, under PocketBase's usual owner rules."""
    res = await client.patch("/api/collections/users", headers=client.su(), json={
        "listRule": "id = @request.auth.id", "viewRule": "id = @request.auth.id"})
    assert res.status_code == 200, res.text
    owner_rule = "owner = @request.auth.id"
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "posts", "listRule": owner_rule, "viewRule": owner_rule, "createRule": owner_rule,
        "fields": [{"name": "title", "type": "text"},
                   {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]})
    assert res.status_code == 200, res.text
    uid, headers = await token_for(client, "mallory@example.com")
    for i in range(n):
        res = await client.post("/api/collections/posts/records", headers=headers,
                                json={"title": f"p{i}", "owner": uid})
        assert res.status_code == 200, res.text
    return headers


async def listing(client, text: str, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/collections/posts/records", params={"filter": text}, headers=headers)


# -- fan-out: refused before the query runs ----------------------------------------------

async def test_the_attack_filter_is_refused_before_it_runs(client):
    headers = await user_with_posts(client, 8)
    res = await listing(client, ATTACK, headers)
    assert res.status_code == 400, res.text
    message = res.json()["detail"]  # PocketBase's generic message, the reason in "detail"
    assert message.startswith("Invalid filter: too many multi-valued relation steps"), message
    assert "(3; at most 2)" in message
    # the aggregate endpoint takes the same filters
    res = await client.get("/api/collections/posts/aggregate", params={"filter": ATTACK}, headers=headers)
    assert res.status_code == 400, res.text
    assert "too many multi-valued relation steps" in res.json()["detail"]


async def test_two_steps_per_comparison_still_answer(client):
    headers = await user_with_posts(client, 8)
    res = await listing(client, TWO_STEPS, headers)
    assert res.status_code == 200, res.text
    assert res.json()["totalItems"] == 0  # no title contains an id
    res = await listing(client, "owner.posts_via_owner.title ?= 'p3'", headers)
    assert res.status_code == 200 and res.json()["totalItems"] == 8, res.text


async def test_a_filter_is_bounded_as_a_whole(client):
    headers = await user_with_posts(client, 4)
    four = " || ".join([TWO_STEPS] * 4)  # 8 steps
    res = await listing(client, four, headers)
    assert res.status_code == 200, res.text
    res = await listing(client, four + " || owner.posts_via_owner.title ?= 'x'", headers)  # 9
    assert res.status_code == 400, res.text
    assert "in the filter (9; at most 8)" in res.json()["detail"]


async def test_superusers_get_more_room_but_are_bounded_too(client):
    await user_with_posts(client, 4)
    res = await listing(client, ATTACK, client.su())
    assert res.status_code == 200, res.text
    five = ("owner.posts_via_owner.owner.posts_via_owner.owner.posts_via_owner.title ?~ "
            "owner.posts_via_owner.owner.posts_via_owner.id")
    res = await listing(client, five, client.su())
    assert res.status_code == 400, res.text
    assert "(5; at most 4)" in res.json()["detail"]
    # each @collection alias is one more cross join of the whole filter
    joins = " && ".join(f"@collection.users:u{i}.id != ''" for i in range(5))
    res = await listing(client, joins, client.su())
    assert res.status_code == 400, res.text
    assert "too many @collection joins in the filter (5; at most 4)" in res.json()["detail"]
    res = await listing(client, joins.rsplit(" && ", 1)[0], client.su())
    assert res.status_code == 200, res.text


async def test_paths_read_together_are_bounded(client):
    """Two ``?`` comparisons through one path read it on one joined row, as PocketBase
    does: then every multi-valued path of the filter is joined to the record, and the
    rows multiply across paths, so their number is bounded too."""
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "boards", "listRule": "", "fields": [
            {"name": "tags", "type": "select", "values": list("abcde"), "maxSelect": 5},
            {"name": "members", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 9}]})
    assert res.status_code == 200, res.text
    res = await client.post("/api/collections/boards/records", headers=client.su(), json={"tags": ["a", "b"]})
    assert res.status_code == 200, res.text
    two = "tags:each ?= 'a' && tags:each ?= 'b' && members.id ?= 'x' && members.name ?= 'y'"
    res = await client.get("/api/collections/boards/records", params={"filter": two})
    assert res.status_code == 200 and res.json()["totalItems"] == 0, res.text
    res = await client.get("/api/collections/boards/records",
                           params={"filter": "tags:each ?= 'a' && tags:each ?!= 'b'"})
    assert res.status_code == 200 and res.json()["totalItems"] == 1, res.text  # one tag per joined row
    three = two + " && members.boards_via_members.id ?= 'z'"
    res = await client.get("/api/collections/boards/records", params={"filter": three})
    assert res.status_code == 400, res.text
    assert "too many multi-valued paths read together in the filter (3; at most 2)" in res.json()["detail"]
    res = await client.get("/api/collections/boards/records", params={"filter": three}, headers=client.su())
    assert res.status_code == 200, res.text  # superusers: at most 4


# -- the statement time limit ------------------------------------------------------------

def slow_view_query(backend: str) -> str:
    """A query that runs for minutes on every engine and reads no table: 10^9 rows."""
    text = "CHAR" if backend == "mariadb" else "TEXT"
    return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
            f"SELECT CAST(a.x AS {text}) AS id FROM c a, c b, c d WHERE a.x + b.x + d.x < 0")


async def create_slow_view(client, backend: str) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "slow", "type": "view", "viewQuery": slow_view_query(backend)})
    assert res.status_code == 200, res.text


def build_database(backend: str, url: str, data: Path, query_timeout: float) -> SqlDatabase:
    """Two connections for reads on every engine (SQLite's readers on a 2-core machine),
    so that two heavy requests are enough to hold them all."""
    if backend == "sqlite":  # and a short wait for a reader: 503 after 3 s
        return SqliteDatabase(data / "data.db", readers=2, query_timeout=query_timeout, busy_timeout=3.0)
    if backend == "postgres":
        return PostgresDatabase(url, pool_size=2, query_timeout=query_timeout)
    return MysqlDatabase(url, pool_size=2, query_timeout=query_timeout)


@contextlib.asynccontextmanager
async def limited_app(backend, url: str, tmp_path: Path, query_timeout: float = LIMIT) -> AsyncIterator[App]:
    app = App(build_database(backend.name, url, tmp_path / "data", query_timeout), tmp_path / "migrations",
              store=MemoryStore())
    await app.start()
    await app.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
    try:
        yield app
    finally:
        await app.close()


@contextlib.asynccontextmanager
async def in_process(app: App) -> AsyncIterator[Client]:
    asgi = create_asgi(app, HttpOptions(manage_lifespan=False))
    async with Client(transport=httpx.ASGITransport(app=asgi), base_url="http://bastion.test", timeout=60) as c:
        res = await c.post("/api/collections/_superusers/auth-with-password",
                           json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD})
        assert res.status_code == 200, res.text
        c.superuser_token = res.json()["token"]
        yield c


async def test_a_statement_stops_at_the_time_limit_with_one_answer(backend, database_url, tmp_path):
    async with limited_app(backend, database_url, tmp_path) as app, in_process(app) as client:
        await create_slow_view(client, backend.name)
        started = time.monotonic()
        res = await asyncio.wait_for(client.get("/api/collections/slow/records", headers=client.su()), 20)
        took = time.monotonic() - started
        assert res.status_code == 503, res.text
        assert res.json()["message"] == (
            "The query took longer than 0.5 s and was cancelled; narrow the filter or try again later.")
        assert res.headers["Retry-After"]
        assert took < 3, took
        # the connection that ran it is fine for the next request
        res = await client.get("/api/collections/users/records", headers=client.su())
        assert res.status_code == 200, res.text


async def test_heavy_reads_do_not_lock_anyone_else_out(backend, database_url, tmp_path):
    """While two clients keep sending queries that run to the time limit (as many as
    there are connections for reads here), a sign-in and a list still answer promptly."""
    async with limited_app(backend, database_url, tmp_path) as app, in_process(app) as client:
        await create_slow_view(client, backend.name)
        await client.post("/api/collections/users/records", json={
            "email": "bystander@example.com", "password": "password-123", "passwordConfirm": "password-123"})
        answers: list[int] = []

        async def attack() -> None:
            until = time.monotonic() + 2.5
            while time.monotonic() < until:
                res = await client.get("/api/collections/slow/records", headers=client.su())
                answers.append(res.status_code)

        attackers = [asyncio.create_task(attack()) for _ in range(2)]
        try:
            await asyncio.sleep(0.3)  # both readers are busy now
            started = time.monotonic()
            res = await client.post("/api/collections/users/auth-with-password",
                                    json={"identity": "bystander@example.com", "password": "password-123"})
            signed_in = time.monotonic() - started
            assert res.status_code == 200, res.text
            started = time.monotonic()
            res = await client.get("/api/collections/users/records", headers={"Authorization": res.json()["token"]})
            listed = time.monotonic() - started
            assert res.status_code == 200, res.text
            # at most one time limit of waiting; 3 s holds on a busy 2-core machine
            assert signed_in < 3 and listed < 3, (signed_in, listed)
            await asyncio.wait_for(asyncio.gather(*attackers), 15)
        finally:
            for task in attackers:
                task.cancel()
        assert answers and set(answers) == {503}, answers


# -- a client that goes away -------------------------------------------------------------

@contextlib.asynccontextmanager
async def over_http(app: App) -> AsyncIterator[tuple[str, int]]:
    """``app`` served by uvicorn as ``bastion serve`` does it, on a free local port."""
    asgi = create_asgi(app, HttpOptions(manage_lifespan=False))
    server = uvicorn.Server(uvicorn.Config(
        asgi, host="127.0.0.1", port=0, lifespan="off", http=http_protocol(10.0), log_config=None,
        log_level="warning", timeout_graceful_shutdown=1))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await serving


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_client_that_disconnects_frees_its_reader(backend, database_url, tmp_path, caplog):
    # No time limit: only the disconnect can free the reader. With one reader and a
    # 2 s wait for it, a reader still held answers the next read 503 after 2 s.
    db = SqliteDatabase(tmp_path / "data" / "data.db", readers=1, busy_timeout=2.0, query_timeout=0)
    app = App(db, tmp_path / "migrations")
    await app.start()
    await app.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
    try:
        async with in_process(app) as client, over_http(app) as (host, port):
            await create_slow_view(client, "sqlite")
            caplog.set_level(logging.WARNING)
            for _ in range(2):  # the reader comes back each time
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(f"GET /api/collections/slow/records HTTP/1.1\r\nHost: {host}\r\n"
                             f"Authorization: {client.superuser_token}\r\n\r\n".encode())
                await writer.drain()
                await asyncio.sleep(0.5)  # the query is running on the only reader
                writer.close()
                await writer.wait_closed()
                async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10) as other:
                    started = time.monotonic()
                    res = await other.get("/api/collections/users/records", headers=client.su())
                    took = time.monotonic() - started
                assert res.status_code == 200, res.text
                assert took < 1.5, took
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    finally:
        await app.close()


# -- stopping never waits for a query ----------------------------------------------------

async def test_closing_the_database_interrupts_a_running_statement(tmp_path):
    db = SqliteDatabase(tmp_path / "data.db", readers=2, query_timeout=0)

    async def endless() -> None:
        async with db.read() as conn:
            await conn.fetch_all(sa.text(slow_view_query("sqlite")))

    running = asyncio.create_task(endless())
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await db.close()
    assert time.monotonic() - started < 2
    with pytest.raises(errors.Unavailable, match="closing"):
        await asyncio.wait_for(running, 2)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_sigterm_stops_the_server_during_a_runaway_query(backend, database_url, tmp_path):
    """A superuser's view query that would run for minutes (no time limit) does not hold
    the process past the shutdown grace period."""
    args = ["--dir", "data"] + (["--database-url", database_url] if database_url else [])
    assert run_cli("superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, *args, cwd=tmp_path).returncode == 0
    grace = 1
    server = Server(tmp_path, *args, "--query-timeout", "0", "--shutdown-grace", str(grace))
    try:
        token = httpx.post(f"{server.url}/api/collections/_superusers/auth-with-password", timeout=10,
                           json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD}).json()["token"]
        res = httpx.post(f"{server.url}/api/collections", headers={"Authorization": token}, timeout=10,
                         json={"name": "slow", "type": "view", "viewQuery": slow_view_query(backend.name)})
        assert res.status_code == 200, res.text

        def runaway() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{server.url}/api/collections/slow/records", headers={"Authorization": token},
                          timeout=60)

        client = threading.Thread(target=runaway, daemon=True)
        client.start()
        time.sleep(1.0)  # the query is running
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
        took = time.monotonic() - started
        assert code == 0, server.log.read_text()
        assert took < grace + 3, (took, server.log.read_text())
        assert "Bastion stopped." in server.log.read_text()
    finally:
        server.stop()
