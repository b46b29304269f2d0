"""What the three SQL adapters share: an async SQLAlchemy engine behind the Database port."""

from __future__ import annotations

import abc
import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NoReturn, cast

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.core import errors
from bastion.core.ports import Connection, DatabaseEngine, Row
from bastion.rules.dialects import RuleDialect

log = logging.getLogger("bastion.db")

def json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


def json_deserializer(value: str | bytes) -> Any:
    return orjson.loads(value)


class SqlEngine(abc.ABC):
    """What the engine objects (``core.ports.DatabaseEngine``) share: each of
    ``SqliteEngine``, ``PostgresEngine`` and ``MysqlEngine`` states its capabilities and
    overrides the methods where its SQL differs from these."""

    name: str
    reserved_columns = frozenset[str]()
    rules: RuleDialect
    row_locks: bool
    update_returning: bool
    partial_indexes: bool
    sql_string_pattern: str
    sql_name_pattern: str
    server_schemas: tuple[str, ...] = ()
    plain_view_text = False

    def __init__(self, sa_dialect: sa.engine.Dialect) -> None:
        self.sa_dialect = sa_dialect
        self._preparer = sa_dialect.identifier_preparer

    @abc.abstractmethod
    def json_array_contains(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]: ...

    @abc.abstractmethod
    def text_type(self) -> sa.types.TypeEngine[Any]: ...

    @abc.abstractmethod
    def json_type(self) -> sa.types.TypeEngine[Any]: ...

    def quote(self, identifier: str) -> str:
        return self._preparer.quote_identifier(identifier)

    def table_options(self) -> dict[str, Any]:
        return {}

    def index_key(self, column: sa.ColumnElement[Any], nocase: bool, desc: bool) -> sa.ColumnElement[Any]:
        return column.desc() if desc else column

    def index_prefix_lengths(self, table: sa.Table, columns: Sequence[str]) -> dict[str, int]:
        return {}

    def index_options(
        self, where: sa.ColumnElement[bool] | None, prefix_lengths: Mapping[str, int]
    ) -> dict[str, Any]:
        return {}

    def drop_index(self, table: str, index: str) -> str:
        return f"DROP INDEX IF EXISTS {self.quote(index)}"

    def index_owner_query(self) -> sa.TextClause | None:
        return None

    async def view_source(self, conn: Connection, view: str) -> tuple[str, list[tuple[str, str]]]:
        return "", []


IDLE_PING_S = 1.0
# One statement's time limit on every engine (``--query-timeout``): PostgreSQL's
# statement_timeout, MariaDB's max_statement_time, an interrupt on SQLite.
QUERY_TIMEOUT_S = 10.0
# Closing a pool gives up on connections that do not close within this (a server gone mute).
CLOSE_TIMEOUT_S = 5.0


def ping_after_idle(engine: AsyncEngine, idle_seconds: float = IDLE_PING_S) -> None:
    """Check a pooled connection that sat unused for ``idle_seconds`` before lending it out.

    A busy pool never pings (its connections come back within milliseconds), so requests
    under load pay nothing; after a quiet spell one round trip finds a connection the
    server dropped (a restart, an idle timeout) and the pool opens a new one instead of
    failing the request. A dead connection met under load fails its request with 503 and
    SQLAlchemy then discards every connection opened before it.
    """
    sync = engine.sync_engine
    dialect = sync.dialect

    def checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure means "open a new one"
            raise sa_exc.DisconnectionError("stale pooled connection") from exc

    event.listen(sync.pool, "checkin", checked_in)
    event.listen(sync.pool, "checkout", checked_out)


# What a statement raises when it fails: a driver error, or (asyncpg's client-side
# ``command_timeout``) the built-in TimeoutError.
_STATEMENT_ERRORS = (sa_exc.DBAPIError, TimeoutError)


class SqlConnection:
    """Implements ``core.ports.Connection`` over an ``AsyncConnection``."""

    def __init__(self, conn: AsyncConnection, translate: Callable[[Exception], Exception]):
        self._conn = conn
        self._translate = translate

    async def _execute(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return await self._conn.execute(statement, params)
        except _STATEMENT_ERRORS as exc:
            raise self._translate(exc) from exc

    async def execute(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> int:
        result = await self._execute(statement, params)
        return max(result.rowcount or 0, 0)

    async def fetch_all(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Sequence[Row]:
        result = await self._execute(statement, params)
        return cast(Sequence[Row], result.mappings().all())

    async def fetch_one(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Row | None:
        result = await self._execute(statement, params)
        return cast(Row | None, result.mappings().first())

    async def scalar(self, statement: sa.Executable) -> Any:
        result = await self._execute(statement)
        return result.scalar()

    async def ddl(self, statement: sa.Executable | str) -> None:
        try:
            if isinstance(statement, str):
                await self._conn.exec_driver_sql(statement)
            else:
                await self._conn.execute(statement)
        except _STATEMENT_ERRORS as exc:
            raise self._translate(exc) from exc

    async def column_names(self, table: str) -> list[str]:
        def inspect(sync_conn: sa.Connection) -> list[str]:
            insp = sa.inspect(sync_conn)
            return [c["name"] for c in insp.get_columns(table)]

        return await self._conn.run_sync(inspect)


class SqlDatabase:
    """Base for the SQLite, PostgreSQL and MariaDB adapters."""

    sql: DatabaseEngine
    url_for_display: str
    query_timeout: float = QUERY_TIMEOUT_S

    def __init__(self, engine: AsyncEngine, write_engine: AsyncEngine | None = None):
        self._engine = engine
        self._write_engine = write_engine or engine

    async def start(self) -> None:
        async with self.read() as conn:
            await conn.scalar(sa.select(sa.literal(1)))

    async def close(self) -> None:
        """Close the pools' idle connections, giving up after ``CLOSE_TIMEOUT_S``: a
        process that is stopping must not wait on a server that no longer answers. (A
        connection still running a statement was closed with its cancelled request:
        SQLAlchemy terminates a connection whose user was cancelled.)"""
        engines = {id(e): e for e in (self._engine, self._write_engine)}.values()
        try:
            await asyncio.wait_for(asyncio.gather(*(e.dispose() for e in engines)), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("database connections did not close within %g s; leaving them", CLOSE_TIMEOUT_S)

    def timed_out(self) -> errors.Unavailable:
        """The answer to a statement stopped at the time limit, the same on every engine."""
        return errors.Unavailable(
            f"The query took longer than {self.query_timeout:g} s and was cancelled; "
            "narrow the filter or try again later.")

    def translate(self, exc: Exception) -> Exception:
        """Map a driver error onto the core error tree; subclasses refine it."""
        if is_statement_timeout(exc):
            return self.timed_out()
        if isinstance(exc, sa_exc.IntegrityError):
            return errors.Conflict("The value conflicts with existing data.")
        if isinstance(exc, sa_exc.DataError) or "invalid byte sequence" in str(exc):
            # A value the engine cannot store or compare (NUL bytes, out-of-range numbers).
            return errors.BadRequest("A submitted value is not valid for the database.")
        if isinstance(exc, sa_exc.DBAPIError):
            unavailable = unavailable_error(exc)
            if unavailable is not None:
                return unavailable
        return exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlConnection]:
        try:
            async with self._engine.connect() as conn:
                yield SqlConnection(conn, self.translate)
        except _CONNECTION_ERRORS as exc:
            _raise_mapped(exc, self.translate)

    def read_brief(self) -> AbstractAsyncContextManager[SqlConnection]:
        """As :meth:`read`: the pool is large enough that scans do not take it all."""
        return self.read()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlConnection]:
        try:
            async with self._write_engine.begin() as conn:
                yield SqlConnection(conn, self.translate)
        except _CONNECTION_ERRORS as exc:
            _raise_mapped(exc, self.translate)

    def statement(self) -> AbstractAsyncContextManager[SqlConnection]:
        return self.transaction()

    async def schema_changed(self) -> None:
        return None

    def change_notice(self) -> sa.Executable | None:
        return None

    async def listen_for_changes(self, on_change: Callable[[], None]) -> None:
        return None

    async def table_names(self) -> list[str]:
        async with self._engine.connect() as conn:
            return await conn.run_sync(lambda c: sa.inspect(c).get_table_names())


# What getting, using or giving back a pooled connection may raise when the server is gone,
# restarting, overloaded or locked: a pool timeout, a socket error, a driver error.
_CONNECTION_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError)

# PostgreSQL SQLSTATEs meaning "not now": class 08 (connection exception), the server
# shutting down or starting up, too many connections, a lock not granted in time.
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "53300", "53400"}
_PG_TIMEOUT = {"55P03"}
# MariaDB/MySQL client and server error numbers with the same meaning (1205: lock wait).
_MYSQL_UNAVAILABLE = {1040, 1053, 1927, 2002, 2003, 2006, 2013, 2055}
_MYSQL_TIMEOUT = {1205}
# The engine undid this transaction to break a deadlock (or a serialization conflict):
# nothing was written, and the same request may simply be sent again.
_PG_COLLIDED = {"40P01", "40001"}
_MYSQL_COLLIDED = {1213}
COLLIDED = "The database undid this write to settle a collision with a concurrent one; nothing was saved, try again."
# A statement stopped at the time limit: PostgreSQL's query_canceled (statement_timeout),
# MariaDB's max_statement_time and MySQL's max_execution_time, SQLite's interrupt.
_PG_STATEMENT_TIMEOUT = "57014"
_MYSQL_STATEMENT_TIMEOUT = {1969, 3024}


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` says a statement was stopped for running too long."""
    if isinstance(exc, TimeoutError):  # asyncpg's command_timeout, the client-side backstop
        return True
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "") == _PG_STATEMENT_TIMEOUT:
        return True
    args = getattr(orig, "args", None) or (None,)
    if isinstance(args[0], int) and args[0] in _MYSQL_STATEMENT_TIMEOUT:
        return True
    return isinstance(orig, sqlite3.OperationalError) and str(orig) == "interrupted"


def unavailable_error(exc: BaseException) -> errors.Unavailable | None:
    """The 503 a connection-level database failure stands for, or None for other errors."""
    if isinstance(exc, sa_exc.TimeoutError):
        return errors.Unavailable("The database is busy, please try again shortly.")
    if isinstance(exc, OSError):
        return errors.Unavailable()
    orig = getattr(exc, "orig", None)
    state = str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")
    args = getattr(orig, "args", None) or (None,)
    number = args[0] if isinstance(args[0], int) else None
    if state in _PG_TIMEOUT or number in _MYSQL_TIMEOUT:
        return errors.Unavailable("The database took too long to answer, please try again shortly.")
    if state in _PG_COLLIDED or number in _MYSQL_COLLIDED:
        return errors.Unavailable(COLLIDED)
    if getattr(exc, "connection_invalidated", False) or state.startswith("08") or state in _PG_UNAVAILABLE:
        return errors.Unavailable()
    if number in _MYSQL_UNAVAILABLE or _looks_unavailable(exc):
        return errors.Unavailable()
    return None


def _looks_unavailable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "connection refused",
            "connection was closed",
            "server closed the connection",
            "cannot connect",
            "can't connect",
            "lost connection",
            "database is locked",
            "connection is closed",
            "terminating connection",
            "the database system is",  # starting up, shutting down, in recovery
        )
    )


def _raise_mapped(exc: Exception, translate: Callable[[Exception], Exception]) -> NoReturn:
    mapped = unavailable_error(exc) or translate(exc)
    if mapped is exc:
        raise exc
    raise mapped from exc
