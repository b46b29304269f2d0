"""The raw ceiling: the least an ASGI app can do to serve Bastion's record create / view.

Starlette + orjson under uvicorn (1 worker, uvloop + httptools as ``uvicorn[standard]``
picks them), SQLAlchemy Core async engine over the same drivers Bastion uses (aiosqlite,
asyncpg), a ``posts`` table with the same columns as Bastion's ``posts`` collection, and
the same SQL shapes: one ``INSERT`` per create, one ``SELECT ... WHERE id = ?`` per view.

No rules, no validation beyond "the body is a JSON object", no middleware, no auth: it is
the ceiling against which ``bench/crud.py`` reports Bastion as a percentage.

Engine settings mirror ``bastion/adapters``:

* SQLite: WAL, ``synchronous=NORMAL``, the same PRAGMAs; one writer connection that
  starts ``BEGIN IMMEDIATE``, a pool of 4 reader connections.
* PostgreSQL: a pool of 10 (+10 overflow), statement cache as asyncpg defaults. Bastion
  also sets ``pool_pre_ping=True``; the ceiling does not (that round trip is Bastion's
  own choice, reported as part of the gap).

Run::

    python bench/raw_ceiling.py --http 127.0.0.1:18100 \
        --database-url sqlite+aiosqlite:////tmp/raw/data.db
    python bench/raw_ceiling.py --http 127.0.0.1:18100 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/rawdb

Endpoints (same paths as Bastion): ``POST /api/collections/posts/records``,
``GET /api/collections/posts/records/{id}``, and ``GET /api/health``.
"""

from __future__ import annotations

import argparse
import secrets
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
import uvicorn
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ID_ALPHABET = string.ascii_lowercase + string.digits
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-16000",
)

meta = sa.MetaData()
posts = sa.Table(
    "posts", meta,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("title", sa.Text(), nullable=False, server_default=sa.text("''")),
    sa.Column("body", sa.Text(), nullable=False, server_default=sa.text("''")),
    sa.Column("views", sa.Double(), nullable=False, server_default=sa.text("0")),
    sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false()),
)
INSERT = sa.insert(posts)
SELECT_BY_ID = sa.select(posts).where(posts.c.id == sa.bindparam("id"))
COLUMNS = tuple(str(c.name) for c in posts.columns)  # plain str: orjson rejects str subclasses as keys
JSON = "application/json"
NOT_FOUND = orjson.dumps({"status": 404, "message": "The requested resource wasn't found.", "data": {}})
BAD_REQUEST = orjson.dumps({"status": 400, "message": "The JSON body must be an object.", "data": {}})


def _sqlite_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    common: dict[str, Any] = dict(
        poolclass=AsyncAdaptedQueuePool,
        connect_args={"timeout": 10, "check_same_thread": False},
    )
    reader = create_async_engine(url, pool_size=4, max_overflow=0, **common)
    writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=30, **common)
    for engine, begin in ((reader, "BEGIN"), (writer, "BEGIN IMMEDIATE")):
        event.listen(engine.sync_engine, "connect", pragmas)
        event.listen(engine.sync_engine, "begin", lambda conn, _sql=begin: conn.exec_driver_sql(_sql))
    return reader, writer


def _postgres_engine(url: str) -> AsyncEngine:
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def create_app(database_url: str) -> Starlette:
    if database_url.startswith("sqlite"):
        reader, writer = _sqlite_engines(database_url)
    else:
        reader = writer = _postgres_engine(database_url)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with writer.begin() as conn:
            await conn.run_sync(meta.create_all)
        try:
            yield
        finally:
            await reader.dispose()
            if writer is not reader:
                await writer.dispose()

    async def health(_: Request) -> Response:
        return Response(b'{"code":200}', media_type=JSON)

    async def create(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return Response(BAD_REQUEST, status_code=400, media_type=JSON)
        row = {
            "id": "".join(ID_ALPHABET[b % 36] for b in secrets.token_bytes(15)),  # one getrandom()
            "title": str(body.get("title", "")),
            "body": str(body.get("body", "")),
            "views": float(body.get("views", 0) or 0),
            "published": bool(body.get("published", False)),
        }
        async with writer.begin() as conn:
            await conn.execute(INSERT, row)
        return Response(orjson.dumps(row), media_type=JSON)

    async def view(request: Request) -> Response:
        async with reader.connect() as conn:
            result = await conn.execute(SELECT_BY_ID, {"id": request.path_params["id"]})
            row = result.first()
        if row is None:
            return Response(NOT_FOUND, status_code=404, media_type=JSON)
        return Response(orjson.dumps(dict(zip(COLUMNS, row, strict=True))), media_type=JSON)

    return Starlette(
        routes=[
            Route("/api/health", health, methods=["GET"]),
            Route("/api/collections/posts/records", create, methods=["POST"]),
            Route("/api/collections/posts/records/{id}", view, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", default="127.0.0.1:18100", help="host:port to listen on")
    parser.add_argument("--database-url", required=True,
                        help="sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB")
    args = parser.parse_args()
    host, _, port = args.http.rpartition(":")
    # Same uvicorn settings as bastion/cli/server.py, except the lifespan (used here to
    # create the table) — 1 worker, uvloop/httptools picked by "auto".
    uvicorn.run(
        create_app(args.database_url), host=host, port=int(port), lifespan="on",
        access_log=False, log_level="warning", server_header=False, timeout_keep_alive=5,
    )


if __name__ == "__main__":
    main()
