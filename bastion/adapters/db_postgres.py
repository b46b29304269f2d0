"""PostgreSQL through asyncpg: pooled, prepared statements cached, timeouts bounded.

No pre-ping on every checkout (a round trip per request: ~150 µs more CPU for a checkout
and a one-row query, +45 %, measured here). A connection lost to a server restart fails
its statement, which SQLAlchemy recognises as a disconnect; the pool is then invalidated,
the request answers 503 and the next ones reconnect. Only a connection idle for a second
or more is pinged before use, so a restart during a quiet spell costs no failed request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from bastion.adapters.db_base import (
    _CONNECTION_ERRORS,
    QUERY_TIMEOUT_S,
    SqlConnection,
    SqlDatabase,
    SqlEngine,
    _raise_mapped,
    json_deserializer,
    json_serializer,
    ping_after_idle,
)
from bastion.core.ports import Connection
from bastion.rules.dialects import PostgresRuleDialect, RuleDialect

# asyncpg's own timeout waits this much longer than the server's statement_timeout: the
# server's cancel leaves the connection usable; the client's is for a server gone mute.
CLIENT_TIMEOUT_MARGIN_S = 1.0
# Schema and settings changes are announced on this channel (NOTIFY at commit).
CHANGES_CHANNEL = "bastion_changes"
LISTEN_RETRY_S = 2.0

log = logging.getLogger("bastion.db")


class PostgresEngine(SqlEngine):
    """PostgreSQL 13+ as ``core.ports.DatabaseEngine``; JSON stored as ``jsonb``."""

    name = "postgresql"
    reserved_columns = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})  # system columns
    rules: RuleDialect = PostgresRuleDialect()
    row_locks = True
    update_returning = True
    partial_indexes = True
    sql_string_pattern = r"(?P<string>[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)"
    sql_name_pattern = r"(?P<name>\"(?:[^\"]|\"\")*\")"

    def __init__(self) -> None:
        super().__init__(postgresql.dialect())

    def json_array_contains(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        probe = sa.func.jsonb_build_array(sa.cast(sa.literal(value), sa.Text))
        return sa.cast(column, postgresql.JSONB).op("@>")(probe)

    def text_type(self) -> sa.types.TypeEngine[Any]:
        # Byte-order collation: comparisons and ORDER BY match SQLite and MariaDB's binary
        # collation, whatever locale the database was created with.
        return sa.Text(collation="C")

    def json_type(self) -> sa.types.TypeEngine[Any]:
        return postgresql.JSONB(none_as_null=True)

    def index_key(self, column: sa.ColumnElement[Any], nocase: bool, desc: bool) -> sa.ColumnElement[Any]:
        # The list sort puts NULLs first ascending (as SQLite does); an index built with
        # the same NULL order is the one PostgreSQL can use for it.
        return self.rules.order(column, desc)

    def index_options(
        self, where: sa.ColumnElement[bool] | None, prefix_lengths: Mapping[str, int]
    ) -> dict[str, Any]:
        return {} if where is None else {"postgresql_where": where}

    def index_owner_query(self) -> sa.TextClause:
        return sa.text(
            "SELECT coalesce(t.relname, c.relname) AS owner FROM pg_class c"
            " LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE c.relnamespace = to_regnamespace(current_schema()) AND lower(c.relname) = lower(:n) LIMIT 1")

    async def view_source(self, conn: Connection, view: str) -> tuple[str, list[tuple[str, str]]]:
        rewritten = await conn.scalar(sa.text("SELECT pg_get_viewdef(CAST(:v AS regclass))").bindparams(v=view))
        rows = await conn.fetch_all(sa.text(_VIEW_READS), {"v": view})
        return str(rewritten or ""), [(r["relname"], r["attname"]) for r in rows]


# The relations and columns a view depends on (its rewrite rule's dependencies): renamed
# columns and ``*`` show here as the columns they are.
_VIEW_READS = """
SELECT c.relname AS relname, a.attname AS attname
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class c ON c.oid = d.refobjid
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
  AND r.ev_class = CAST(:v AS regclass) AND d.refobjid <> r.ev_class AND d.refobjsubid > 0
"""


def driver_url(url: str) -> str:
    """``postgres://`` or ``postgresql://`` → the asyncpg SQLAlchemy URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url}")


def asyncpg_dsn(url: str) -> str:
    """A PostgreSQL URL of any of ``driver_url``'s forms → the DSN ``asyncpg.connect`` takes."""
    return sa.make_url(driver_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresDatabase(SqlDatabase):
    """``core.ports.Database`` for PostgreSQL 13+."""

    def __init__(self, url: str, pool_size: int = 20, query_timeout: float = QUERY_TIMEOUT_S):
        # No overflow connections: the pool closes one as soon as it is given back, so
        # under load every request past pool_size paid a fresh connection (measured with 32
        # concurrent reads on 10 + 10: 900 us of client CPU per read instead of 270).
        options: dict[str, Any] = dict(
            max_overflow=0,
            pool_timeout=10,
            json_serializer=json_serializer,
            enable_from_linting=False,  # rules join @collection tables ON TRUE on purpose
            json_deserializer=json_deserializer,
            connect_args={
                "timeout": 5,
                "command_timeout": query_timeout + CLIENT_TIMEOUT_MARGIN_S if query_timeout > 0 else None,
                "server_settings": {
                    "statement_timeout": str(max(0, round(query_timeout * 1000))),  # 0: no limit
                    "application_name": "bastion",
                },
            },
        )
        # Reads run on a pool of their own in autocommit: under READ COMMITTED every statement
        # takes its own snapshot anyway, and BEGIN + ROLLBACK cost two round trips per read
        # (measured with 32 concurrent single-row reads: 270 -> 210 us of client CPU each).
        reader = create_async_engine(
            driver_url(url), isolation_level="AUTOCOMMIT", pool_size=pool_size, **options)
        writer = create_async_engine(driver_url(url), pool_size=max(2, pool_size // 2), **options)
        for engine in (reader, writer):
            ping_after_idle(engine)
        super().__init__(reader, writer)
        self.query_timeout = query_timeout
        # One statement alone is atomic in PostgreSQL: on the writer pool without BEGIN and
        # COMMIT it saves two round trips (a create: ~20 % of the server's CPU for it).
        self._standalone = writer.execution_options(isolation_level="AUTOCOMMIT")
        self.sql = PostgresEngine()
        self.url_for_display = sa.make_url(driver_url(url)).render_as_string(hide_password=True)
        self._listen_dsn = asyncpg_dsn(url)

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[SqlConnection]:  # type: ignore[override]
        try:
            async with self._standalone.connect() as conn:
                yield SqlConnection(conn, self.translate)
        except _CONNECTION_ERRORS as exc:
            _raise_mapped(exc, self.translate)

    def change_notice(self) -> sa.Executable:
        return sa.text(f"NOTIFY {CHANGES_CHANNEL}")

    async def listen_for_changes(self, on_change: Callable[[], None]) -> None:
        """LISTEN on a connection of its own (not one of the pools'). When it is lost (a
        restart, a network cut) it is opened again every few seconds; each time it is
        (re)opened ``on_change`` is called once, for what was missed meanwhile."""
        import asyncpg

        failing = False
        while True:
            try:
                conn = await asyncpg.connect(self._listen_dsn, timeout=5,
                                             server_settings={"application_name": "bastion-listen"})
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                if not failing:
                    log.warning("cannot listen for schema changes (%s); retrying every %g s", exc, LISTEN_RETRY_S)
                    failing = True
                await asyncio.sleep(LISTEN_RETRY_S)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _conn, _lost=lost: _lost.set())
                await conn.add_listener(CHANGES_CHANNEL, lambda *_args: on_change())
                if failing:
                    log.info("listening for schema changes again")
                    failing = False
                on_change()
                await lost.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            finally:
                if not conn.is_closed():
                    conn.terminate()
            if not failing:
                log.warning("lost the connection listening for schema changes; reconnecting")
                failing = True
            await asyncio.sleep(LISTEN_RETRY_S)

    async def schema_changed(self) -> None:
        # asyncpg caches prepared statements per connection; plans made before a column
        # change would fail once, so start from fresh connections instead.
        await self._engine.dispose()
        await self._write_engine.dispose()
