"""SQLite: WAL, one writer connection, a pool of readers, each on its own thread.

Writes go through a single connection that starts ``BEGIN IMMEDIATE``, so writers queue
inside the process instead of failing with ``database is locked``; readers use their own
connections and never block the writer under WAL. Every connection lives on a thread of
its own and runs a statement in one hop (``sqlite_threads``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import NullPool

from bastion.adapters.db_base import (
    _CONNECTION_ERRORS,
    QUERY_TIMEOUT_S,
    SqlDatabase,
    SqlEngine,
    _raise_mapped,
    json_deserializer,
    json_serializer,
)
from bastion.adapters.sqlite_threads import (
    AutocommitConnection,
    WorkerConnection,
    WorkerPool,
    commit,
    rollback,
)
from bastion.rules.dialects import RuleDialect, SqliteRuleDialect

BUSY_TIMEOUT_S = 10.0
BRIEF_READERS = 1  # reserved for reads by key (``read_brief``)


class SqliteJson(sa.types.TypeDecorator[Any]):
    """JSON kept as TEXT: a column declared ``JSON`` would get NUMERIC affinity in SQLite,
    which turns the text ``'0'`` into the integer 0 and loses the JSON type of scalars."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.engine.Dialect) -> str | None:
        return None if value is None else json_serializer(value)

    def process_result_value(self, value: Any, dialect: sa.engine.Dialect) -> Any:
        if value is None or not isinstance(value, (str, bytes)):
            return value
        return json_deserializer(value)


class SqliteEngine(SqlEngine):
    """SQLite as ``core.ports.DatabaseEngine``: one exclusive writer, so no row locks."""

    name = "sqlite"
    reserved_columns = frozenset[str]()  # rowid and its aliases yield to a declared column
    rules: RuleDialect = SqliteRuleDialect()
    row_locks = False  # the one writer connection holds the database already
    update_returning = True
    partial_indexes = True
    sql_string_pattern = r"(?P<string>'(?:[^']|'')*')"
    sql_name_pattern = r"(?P<name>\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|\[[^\]]*\])"

    def __init__(self) -> None:
        super().__init__(sqlite.dialect())

    def json_array_contains(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        each = sa.func.json_each(column).table_valued("value")
        return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == value))

    def text_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Text()

    def json_type(self) -> sa.types.TypeEngine[Any]:
        return SqliteJson()

    def index_key(self, column: sa.ColumnElement[Any], nocase: bool, desc: bool) -> sa.ColumnElement[Any]:
        return super().index_key(column.collate("NOCASE") if nocase else column, nocase, desc)

    def index_options(
        self, where: sa.ColumnElement[bool] | None, prefix_lengths: Mapping[str, int]
    ) -> dict[str, Any]:
        return {} if where is None else {"sqlite_where": where}

    def index_owner_query(self) -> sa.TextClause:
        return sa.text("SELECT tbl_name AS owner FROM sqlite_master WHERE lower(name) = lower(:n) LIMIT 1")


def _pragmas(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={busy_timeout_ms}",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA cache_size=-16000",
    ):
        cur.execute(pragma)
    cur.close()


def default_readers() -> int:
    """One reader thread per CPU core this process may use, two to four. Each reader runs
    its query with the interpreter lock released, so heavy reads overlap on several
    cores; but every reader also takes the lock back from the event loop for its Python
    work, and more threads than cores only add that contention (a get by id on 2 cores:
    360 us of CPU with four readers, 283 with two; a 27 ms scan: the same req/s)."""
    return max(2, min(4, len(os.sched_getaffinity(0))))


class SqliteDatabase(SqlDatabase):
    """``core.ports.Database`` for a SQLite file (``data.db`` in the data folder).

    ``busy_timeout`` bounds how long a statement waits for a lock held by another process
    (a backup, the sqlite3 shell); past it the write fails as ``Unavailable`` (503). Writes
    queued behind the one writer connection wait as long, then get the same answer.
    ``query_timeout`` bounds how long one statement runs, reads and writes alike (0: no
    limit); past it the statement is interrupted and fails as ``Unavailable`` too.
    """

    def __init__(self, path: Path, readers: int | None = None, busy_timeout: float = BUSY_TIMEOUT_S,
                 query_timeout: float = QUERY_TIMEOUT_S):
        path.parent.mkdir(parents=True, exist_ok=True)
        readers = readers or default_readers()
        busy_ms = int(busy_timeout * 1000)
        pools = []
        for role, size, begin in (("reader", readers, "BEGIN"), ("writer", 1, "BEGIN IMMEDIATE"),
                                  ("brief", BRIEF_READERS, "BEGIN")):
            engine = sa.create_engine(
                f"sqlite:///{path}",
                json_serializer=json_serializer,
                json_deserializer=json_deserializer,
                enable_from_linting=False,  # rules join @collection tables ON TRUE on purpose
                poolclass=NullPool,  # each worker keeps its one connection for good
                connect_args={"timeout": busy_timeout, "check_same_thread": False},
            )
            event.listen(engine, "connect", lambda conn, _rec, _ms=busy_ms: _pragmas(conn, _ms))
            event.listen(engine, "begin", lambda conn, _sql=begin: conn.exec_driver_sql(_sql))
            pools.append(WorkerPool(engine, size, f"sqlite-{role}", timeout=max(1.0, busy_timeout),
                                    statement_limit=query_timeout))
        self._readers, self._writers, self._brief = pools
        self.query_timeout = query_timeout
        self.sql = SqliteEngine()
        self.url_for_display = f"sqlite:///{path}"

    async def close(self) -> None:
        await asyncio.gather(self._readers.close(), self._writers.close(), self._brief.close())

    def read(self) -> AbstractAsyncContextManager[WorkerConnection]:  # type: ignore[override]
        return self._read(self._readers)

    def read_brief(self) -> AbstractAsyncContextManager[WorkerConnection]:  # type: ignore[override]
        """A reader of its own for lookups by key (sign-in, tokens): with one reader per
        core, a few heavy lists can hold all of them, and signing in would wait."""
        return self._read(self._brief)

    @asynccontextmanager
    async def _read(self, pool: WorkerPool) -> AsyncIterator[WorkerConnection]:
        try:
            async with pool.acquire() as worker:
                try:
                    yield WorkerConnection(worker, self.translate)
                finally:
                    worker.post(rollback)  # ends the read transaction before the next user
        except _CONNECTION_ERRORS as exc:
            _raise_mapped(exc, self.translate)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WorkerConnection]:  # type: ignore[override]
        try:
            async with self._writers.acquire() as worker:
                try:
                    yield WorkerConnection(worker, self.translate)
                except BaseException:
                    worker.post(rollback)
                    raise
                try:
                    await worker.call(commit)
                except sa_exc.DBAPIError:
                    worker.post(rollback)
                    raise
        except _CONNECTION_ERRORS as exc:
            _raise_mapped(exc, self.translate)

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[WorkerConnection]:  # type: ignore[override]
        """The writer, each statement committed in the hop that runs it (one hop fewer
        than BEGIN ... COMMIT as two calls)."""
        try:
            async with self._writers.acquire() as worker:
                yield AutocommitConnection(worker, self.translate)
        except _CONNECTION_ERRORS as exc:
            _raise_mapped(exc, self.translate)

    async def table_names(self) -> list[str]:
        async with self._readers.acquire() as worker:
            try:
                return await worker.statement(lambda c: sa.inspect(c).get_table_names())
            finally:
                worker.post(rollback)
