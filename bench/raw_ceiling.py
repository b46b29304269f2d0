"""The raw ceiling: the least an ASGI app can do to serve Bastion's record create / view / list
and the password sign-in and token refresh of its ``users`` collection.

Starlette + orjson under uvicorn (1 worker, uvloop + httptools as ``uvicorn[standard]``
picks them), SQLAlchemy Core over the same drivers and connection handling Bastion uses (sqlite3
with a thread per connection, asyncpg through the async engine), a ``posts`` table with the
same columns and column types as Bastion's ``posts`` collection of ``bench/list.py``
(``bench/crud.py`` leaves ``owner`` and ``created`` at their defaults), and the same SQL
shapes: one ``INSERT`` per create, one ``SELECT ... WHERE id = ?`` per view, and per list the
``SELECT ... WHERE ... ORDER BY ... LIMIT ? OFFSET ?`` plus, unless ``skipTotal``, the
``SELECT count(*) ... WHERE ...`` — both on one connection, as Bastion runs them.

No rules, no validation beyond "the body is a JSON object", no middleware, no auth on the
records routes: it is the ceiling against which ``bench/crud.py`` and ``bench/list.py``
report Bastion as a percentage. The list handler understands exactly the parameters the benchmark sends:
``page``, ``perPage``, ``skipTotal``, ``sort`` = ``-created`` or nothing, ``filter`` =
``published=true`` or nothing, ``expand`` = ``owner`` or nothing; the ``Authorization``
header, when present, *is* the owner's record id (``WHERE owner = ?``, Bastion's
``owner = @request.auth.id`` rule without verifying a token or loading the auth record).
``expand=owner`` (for ``bench/compare.py``) adds one ``SELECT ... FROM users WHERE id IN
(...)`` for the page's owners and puts each user under ``expand.owner`` (without
``password`` and ``tokenKey``, and without ``email`` unless ``emailVisibility``); no
rule is checked on ``users``.

Auth (the baseline of ``bench/auth.py``), on a ``users`` table with the columns and indexes
of Bastion's default ``users`` collection (``bench/auth.py`` copies Bastion's rows into it,
argon2id hashes and ``tokenKey`` values included):

* ``POST /api/collections/users/auth-with-password`` ``{"identity": EMAIL, "password": ...}``:
  the user by email with Bastion's SQL (``lower(email) = ? LIMIT 1``) on a reader
  connection, ``argon2.PasswordHasher.verify`` in a worker thread (``asyncio.to_thread``,
  as Bastion; a hash verifies with the parameters it carries, here Bastion's: argon2id,
  t=2, m=19 MiB, p=1), then an HS256 JWT signed with PyJWT (Bastion's claims; key =
  the record's ``tokenKey`` + a fixed collection secret);
* ``POST /api/collections/users/auth-refresh`` with ``Authorization: TOKEN``: the claims
  decoded without verification (for the id), the user by id, the signature and ``exp``
  verified with its key, a new JWT signed.

Both answer ``{"token": ..., "record": {...}}`` (every column but ``password`` and
``tokenKey``, plus ``collectionId`` / ``collectionName``), 400 or 401 otherwise. No
lockout, rate limit, auth rule, MFA or ``expand``.

Engine settings mirror ``bastion/adapters``:

* SQLite: WAL, ``synchronous=NORMAL``, the same PRAGMAs; one writer connection that
  starts ``BEGIN IMMEDIATE``, a pool of 4 reader connections that start ``BEGIN``, each
  connection on a thread of its own with one thread hop per statement, through
  Bastion's own ``bastion.adapters.sqlite_threads`` (the driver layer only: no
  framework logic comes with it).
* PostgreSQL: reads on a pool of 20 connections in autocommit, writes on a pool of 10,
  no overflow connections (as Bastion since ``c85b612``); statement cache as asyncpg
  defaults; text
  columns use ``COLLATE "C"`` and a descending sort puts NULLs last, as in Bastion.

Run::

    python bench/raw_ceiling.py --http 127.0.0.1:18100 \
        --database-url sqlite:////tmp/raw/data.db
    python bench/raw_ceiling.py --http 127.0.0.1:18100 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/rawdb

Endpoints (same paths as Bastion): ``POST /api/collections/posts/records``,
``GET /api/collections/posts/records`` (list), ``GET /api/collections/posts/records/{id}``,
``POST /api/collections/users/auth-with-password``, ``POST /api/collections/users/auth-refresh``
and ``GET /api/health``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import secrets
import string
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
import uvicorn
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.adapters.db_sqlite import default_readers
from bastion.adapters.sqlite_threads import Worker, WorkerPool, commit, rollback

ID_ALPHABET = string.ascii_lowercase + string.digits
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-16000",
)


def posts_table(postgres: bool) -> sa.Table:
    """Bastion's ``posts`` table: text columns are ``COLLATE "C"`` on PostgreSQL."""
    text = sa.Text(collation="C") if postgres else sa.Text()
    return sa.Table(
        "posts", sa.MetaData(),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("title", text, nullable=False, server_default=sa.text("''")),
        sa.Column("body", text, nullable=False, server_default=sa.text("''")),
        sa.Column("views", sa.Double(), nullable=False, server_default=sa.text("0")),
        sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("owner", text, nullable=False, server_default=sa.text("''")),
        sa.Column("created", text, nullable=False, server_default=sa.text("''")),
    )


def users_table(postgres: bool, metadata: sa.MetaData) -> sa.Table:
    """Bastion's default ``users`` table (auth system fields + name, avatar, autodates)."""
    text = sa.Text(collation="C") if postgres else sa.Text()

    def col(name: str, type_: Any = text, default: Any = None) -> sa.Column[Any]:
        return sa.Column(name, type_, nullable=False, server_default=sa.text("''") if default is None else default)

    users = sa.Table(
        "users", metadata,
        sa.Column("id", sa.String(255), primary_key=True),
        col("password"), col("tokenKey"), col("email"),
        col("emailVisibility", sa.Boolean(), sa.false()), col("verified", sa.Boolean(), sa.false()),
        col("name"), col("avatar"), col("created"), col("updated"),
    )
    sa.Index("idx_tokenKey_users", users.c.tokenKey, unique=True)
    sa.Index("idx_email_users", users.c.email, unique=True,
             sqlite_where=users.c.email != "", postgresql_where=users.c.email != "")
    return users


class Statements:
    """Every statement built once, with bind parameters, so SQLAlchemy caches its compilation."""

    def __init__(self, postgres: bool):
        self.table = posts = posts_table(postgres)
        self.columns = tuple(str(c.name) for c in posts.columns)  # plain str: orjson rejects str subclasses
        self.users = users = users_table(postgres, posts.metadata)
        # Bastion's password sign-in query: lower(email) = ?, LIMIT 1 (bastion/core/auth/service.py)
        self.user_by_email = sa.select(users).where(sa.func.lower(users.c.email) == sa.bindparam("email")).limit(1)
        self.user_by_id = sa.select(users).where(users.c.id == sa.bindparam("id"))
        self.users_by_ids = sa.select(users).where(users.c.id.in_(sa.bindparam("ids", expanding=True)))
        self.insert = sa.insert(posts)
        self.by_id = sa.select(posts).where(posts.c.id == sa.bindparam("id"))
        newest = posts.c.created.desc()
        self.newest = newest.nulls_last() if postgres else newest
        self._lists: dict[tuple[bool, bool, bool], tuple[sa.Select[Any], sa.Select[Any]]] = {}

    def listing(self, published: bool, owner: bool, newest: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
        """(page SELECT, COUNT) for: ``published = ?`` filter, ``owner = ?`` rule, ``-created`` sort."""
        key = (published, owner, newest)
        if key not in self._lists:
            posts = self.table
            conds = []
            if owner:  # Bastion ANDs the rule first, then the client filter
                conds.append(posts.c.owner == sa.bindparam("owner", type_=posts.c.owner.type))
            if published:
                conds.append(posts.c.published == sa.bindparam("published", type_=sa.Boolean()))
            page = sa.select(posts).where(*conds)
            if newest:
                page = page.order_by(self.newest)
            page = page.limit(sa.bindparam("limit", type_=sa.Integer())).offset(
                sa.bindparam("offset", type_=sa.Integer()))
            count = sa.select(sa.func.count()).select_from(posts).where(*conds)
            self._lists[key] = (page, count)
        return self._lists[key]


JSON = "application/json"
NOT_FOUND = orjson.dumps({"status": 404, "message": "The requested resource wasn't found.", "data": {}})
BAD_REQUEST = orjson.dumps({"status": 400, "message": "The JSON body must be an object.", "data": {}})
BAD_LIST = orjson.dumps({"status": 400, "message": "Only the benchmark's list parameters are served.", "data": {}})
COLLECTION_ID = "pbc_1125843985"  # what Bastion names the posts collection; items carry it as Bastion's do
TRUE = ("1", "t", "true")

USERS_COLLECTION_ID = "_pb_users_auth_"  # Bastion's id of the default users collection
USERS_SECRET = "raw-ceiling-users-collection-auth-token-secret-50"  # 50 chars, as PocketBase's secrets
TOKEN_DURATION = 432000  # the default authToken duration of users (5 days), as in PocketBase
HIDDEN_USER_COLUMNS = ("password", "tokenKey")


class AuthLibs:
    """PyJWT and argon2, imported on the first auth request: the ceiling of the records
    benchmarks never loads them (≈ 14 MiB of RSS) nor holds argon2 memory."""

    def __init__(self) -> None:
        import jwt
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        self.jwt = jwt
        self.jwt_error = jwt.PyJWTError
        self.hash_errors = (VerificationError, InvalidHashError)
        # Same parameters as bastion/core/auth/passwords.py. Used only for the dummy hash verified when
        # no user matches: a stored hash verifies with the parameters written in it.
        self.hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self.dummy_hash = self.hasher.hash("raw-ceiling-timing-equaliser")

    def verify_password(self, stored: str | None, password: str) -> bool:
        """In a worker thread: argon2 verify (against the dummy hash when no user matched)."""
        try:
            return bool(self.hasher.verify(stored or self.dummy_hash, password)) and stored is not None
        except self.hash_errors:
            return False


@functools.cache
def auth_libs() -> AuthLibs:
    return AuthLibs()


AUTH_FAILED = orjson.dumps({"status": 400, "message": "Failed to authenticate.", "data": {}})
UNAUTHORIZED = orjson.dumps({"status": 401, "message": "The request requires valid record authorization token.",
                             "data": {}})


class _Rows:
    """A statement's rows, fetched on the connection's thread (the subset of SQLAlchemy's
    ``Result`` the handlers use)."""

    def __init__(self, rows: list[Any]):
        self.rows = rows

    def all(self) -> list[Any]:
        return self.rows

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.rows[0][0]


class _ThreadConnection:
    def __init__(self, worker: Worker):
        self.worker = worker

    async def execute(self, statement: Any, params: Any = None) -> _Rows:
        def run(conn: sa.Connection) -> _Rows:
            result = conn.execute(statement, params)
            return _Rows(list(result.all()) if result.returns_rows else [])

        return await self.worker.call(run)

    async def run_sync(self, fn: Any) -> Any:
        return await self.worker.call(fn)


class ThreadedSqlite:
    """SQLite connections on a thread each (Bastion's driver layer, ``WorkerPool``), with
    the ``connect()`` / ``begin()`` / ``dispose()`` the handlers use on an AsyncEngine."""

    def __init__(self, url: str, size: int, begin: str):
        def pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            for pragma in SQLITE_PRAGMAS:
                cur.execute(pragma)
            cur.close()

        engine = sa.create_engine(url.replace("sqlite+aiosqlite://", "sqlite://", 1), poolclass=NullPool,
                                  connect_args={"timeout": 10, "check_same_thread": False})
        event.listen(engine, "connect", pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        self.pool = WorkerPool(engine, size, f"ceiling-{begin.lower().replace(' ', '-')}", timeout=30)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_ThreadConnection]:
        async with self.pool.acquire() as worker:
            try:
                yield _ThreadConnection(worker)
            finally:
                worker.post(rollback)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_ThreadConnection]:
        async with self.pool.acquire() as worker:
            try:
                yield _ThreadConnection(worker)
            except BaseException:
                worker.post(rollback)
                raise
            await worker.call(commit)

    async def dispose(self) -> None:
        await self.pool.close()


def _sqlite_engines(url: str) -> tuple[Any, Any]:
    """Bastion's SQLite setup: as many reader connections as Bastion (one per core, 2-4)
    that start ``BEGIN``, one writer that starts ``BEGIN IMMEDIATE``, each on a thread of
    its own."""
    return ThreadedSqlite(url, default_readers(), "BEGIN"), ThreadedSqlite(url, 1, "BEGIN IMMEDIATE")


def _postgres_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """Bastion's PostgreSQL pools: reads in autocommit on 20 connections, writes on 10, no
    overflow connections."""
    common: dict[str, Any] = dict(max_overflow=0, pool_timeout=10,
                                  connect_args={"timeout": 5, "command_timeout": 30})
    reader = create_async_engine(url, pool_size=20, isolation_level="AUTOCOMMIT", **common)
    writer = create_async_engine(url, pool_size=10, **common)
    return reader, writer


def create_app(database_url: str) -> Starlette:
    if database_url.startswith("sqlite"):
        reader, writer = _sqlite_engines(database_url)
    else:
        reader, writer = _postgres_engines(database_url)
    stmts = Statements(postgres=not database_url.startswith("sqlite"))
    columns = stmts.columns

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            async with writer.begin() as conn:
                await conn.run_sync(stmts.table.metadata.create_all)
        except sa.exc.DBAPIError:  # with --workers, another worker created it at the same moment
            pass
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
            await conn.execute(stmts.insert, row)
        return Response(orjson.dumps(row), media_type=JSON)

    async def view(request: Request) -> Response:
        async with reader.connect() as conn:
            result = await conn.execute(stmts.by_id, {"id": request.path_params["id"]})
            row = result.first()
        if row is None:
            return Response(NOT_FOUND, status_code=404, media_type=JSON)
        return Response(orjson.dumps(dict(zip(columns, row, strict=True))), media_type=JSON)

    async def listing(request: Request) -> Response:
        query = request.query_params
        try:
            page = max(1, int(query.get("page") or 1))
            per_page = int(query.get("perPage") or 30)
        except ValueError:
            return Response(BAD_LIST, status_code=400, media_type=JSON)
        per_page = 30 if per_page <= 0 else min(per_page, 1000)
        skip_total = query.get("skipTotal", "").lower() in TRUE
        filter_text, sort = query.get("filter", ""), query.get("sort", "")
        expand = query.get("expand", "")
        if (filter_text.replace(" ", "") not in ("", "published=true") or sort not in ("", "-created")
                or expand not in ("", "owner")):
            return Response(BAD_LIST, status_code=400, media_type=JSON)
        owner = request.headers.get("authorization")
        select_page, count = stmts.listing(bool(filter_text), owner is not None, sort == "-created")
        params: dict[str, Any] = {"limit": per_page, "offset": (page - 1) * per_page}
        if filter_text:
            params["published"] = True
        if owner is not None:
            params["owner"] = owner
        async with reader.connect() as conn:
            rows = (await conn.execute(select_page, params)).all()
            total = -1 if skip_total else (await conn.execute(count, params)).scalar_one()
            owners = await expand_owners(conn, rows) if expand else None
        items = []
        for row in rows:
            item = dict(zip(columns, row, strict=True))
            item["collectionId"] = COLLECTION_ID
            item["collectionName"] = "posts"
            if owners is not None and item["owner"] in owners:
                item["expand"] = {"owner": owners[item["owner"]]}
            items.append(item)
        pages = -1 if total < 0 else -(-total // per_page)
        return Response(orjson.dumps({"page": page, "perPage": per_page, "totalItems": total,
                                      "totalPages": pages, "items": items}), media_type=JSON)

    user_columns = tuple(str(c.name) for c in stmts.users.columns)

    async def expand_owners(conn: Any, rows: list[Any]) -> dict[str, dict[str, Any]]:
        """The page's owners by id, as Bastion expands them for a guest."""
        ids = sorted({row.owner for row in rows if row.owner})
        if not ids:
            return {}
        users: dict[str, dict[str, Any]] = {}
        for row in (await conn.execute(stmts.users_by_ids, {"ids": ids})).all():
            record = {k: v for k, v in zip(user_columns, row, strict=True) if k not in HIDDEN_USER_COLUMNS}
            record["verified"], record["emailVisibility"] = bool(record["verified"]), bool(record["emailVisibility"])
            if not record["emailVisibility"]:
                del record["email"]
            record["collectionId"], record["collectionName"] = USERS_COLLECTION_ID, "users"
            users[row.id] = record
        return users

    def auth_body(libs: AuthLibs, row: Any) -> bytes:
        record = {k: v for k, v in zip(user_columns, row, strict=True) if k not in HIDDEN_USER_COLUMNS}
        record["verified"], record["emailVisibility"] = bool(record["verified"]), bool(record["emailVisibility"])
        record["collectionId"], record["collectionName"] = USERS_COLLECTION_ID, "users"
        claims = {"id": row.id, "collectionId": USERS_COLLECTION_ID, "type": "auth", "refreshable": True,
                  "exp": int(time.time()) + TOKEN_DURATION}
        token = libs.jwt.encode(claims, row.tokenKey + USERS_SECRET, algorithm="HS256")
        return orjson.dumps({"token": token, "record": record})

    async def auth_with_password(request: Request) -> Response:
        libs = auth_libs()
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        identity = body.get("identity") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(identity, str) or not isinstance(password, str) or not identity or not password:
            return Response(AUTH_FAILED, status_code=400, media_type=JSON)
        async with reader.connect() as conn:
            row = (await conn.execute(stmts.user_by_email, {"email": identity.lower()})).first()
        ok = await asyncio.to_thread(libs.verify_password, row.password if row is not None else None, password)
        if not ok or row is None:
            return Response(AUTH_FAILED, status_code=400, media_type=JSON)
        return Response(auth_body(libs, row), media_type=JSON)

    async def auth_refresh(request: Request) -> Response:
        libs = auth_libs()
        token = request.headers.get("authorization", "")
        try:
            claims = libs.jwt.decode(token, options={"verify_signature": False})
        except libs.jwt_error:
            return Response(UNAUTHORIZED, status_code=401, media_type=JSON)
        if not isinstance(claims.get("id"), str) or claims.get("type") != "auth":
            return Response(UNAUTHORIZED, status_code=401, media_type=JSON)
        async with reader.connect() as conn:
            row = (await conn.execute(stmts.user_by_id, {"id": claims["id"]})).first()
        if row is None:
            return Response(UNAUTHORIZED, status_code=401, media_type=JSON)
        try:
            libs.jwt.decode(token, row.tokenKey + USERS_SECRET, algorithms=["HS256"], options={"require": ["exp"]})
        except libs.jwt_error:
            return Response(UNAUTHORIZED, status_code=401, media_type=JSON)
        return Response(auth_body(libs, row), media_type=JSON)

    return Starlette(
        routes=[
            Route("/api/health", health, methods=["GET"]),
            Route("/api/collections/posts/records", create, methods=["POST"]),
            Route("/api/collections/posts/records", listing, methods=["GET"]),
            Route("/api/collections/posts/records/{id}", view, methods=["GET"]),
            Route("/api/collections/users/auth-with-password", auth_with_password, methods=["POST"]),
            Route("/api/collections/users/auth-refresh", auth_refresh, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", default="127.0.0.1:18100", help="host:port to listen on")
    parser.add_argument("--database-url", required=True,
                        help="sqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    args = parser.parse_args()
    host, _, port = args.http.rpartition(":")
    # Same uvicorn settings as bastion/cli/server.py, except the lifespan (used here to
    # create the table); uvloop/httptools picked by "auto". Several workers need the app
    # as an import string: each process builds its own from the environment.
    os.environ["CEILING_DATABASE_URL"] = args.database_url
    uvicorn.run(
        "raw_ceiling:app_from_env" if args.workers > 1 else app_from_env(), factory=args.workers > 1,
        workers=args.workers, host=host, port=int(port), lifespan="on",
        access_log=False, log_level="warning", server_header=False, timeout_keep_alive=5,
    )


def app_from_env() -> Starlette:
    return create_app(os.environ["CEILING_DATABASE_URL"])


if __name__ == "__main__":
    main()
