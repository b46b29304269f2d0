"""MySQL / MariaDB through asyncmy: pooled, binary collation, bounded statement time.

Tables and connections use ``utf8mb4_nopad_bin`` so that equality and uniqueness are
exact (case, accents and trailing spaces count), as on SQLite and PostgreSQL. asyncmy has
no server-side prepared statements: parameters are escaped by the driver, never
formatted by Bastion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import create_async_engine

from bastion.adapters.db_base import (
    QUERY_TIMEOUT_S,
    SqlDatabase,
    SqlEngine,
    json_deserializer,
    json_serializer,
    ping_after_idle,
)
from bastion.core.ports import Connection
from bastion.rules.dialects import MysqlRuleDialect, RuleDialect


class MysqlEngine(SqlEngine):
    """MariaDB 10.6+ (and MySQL 8) as ``core.ports.DatabaseEngine``: no partial indexes,
    no UPDATE ... RETURNING, index names per table."""

    name = "mysql"
    reserved_columns = frozenset[str]()
    rules: RuleDialect = MysqlRuleDialect()
    row_locks = True
    update_returning = False  # MariaDB has INSERT ... RETURNING but not UPDATE
    partial_indexes = False
    sql_string_pattern = r"(?P<string>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\")"
    sql_name_pattern = r"(?P<name>`(?:[^`]|``)*`)|(?P<comment>\#[^\n]*)"
    # MariaDB keeps these databases next to the application's one.
    server_schemas: tuple[str, ...] = ("mysql", "performance_schema", "sys")
    # VIEW_DEFINITION is plain backquoted names: a catalog there means the query named it.
    plain_view_text = True

    def __init__(self) -> None:
        super().__init__(mysql.dialect())

    def json_array_contains(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        return sa.func.json_contains(column, sa.func.json_quote(sa.literal(value))) == 1

    def text_type(self) -> sa.types.TypeEngine[Any]:
        return mysql.LONGTEXT(collation="utf8mb4_nopad_bin")

    def json_type(self) -> sa.types.TypeEngine[Any]:
        return sa.JSON(none_as_null=True)

    def table_options(self) -> dict[str, Any]:
        return {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_nopad_bin"}

    def index_prefix_lengths(self, table: sa.Table, columns: Sequence[str]) -> dict[str, int]:
        # Text and JSON columns are LONGTEXT, which an index covers only by a prefix.
        return {name: 255 for name in columns if isinstance(table.c[name].type, (mysql.LONGTEXT, sa.JSON))}

    def index_options(
        self, where: sa.ColumnElement[bool] | None, prefix_lengths: Mapping[str, int]
    ) -> dict[str, Any]:
        return {"mysql_length": dict(prefix_lengths)} if prefix_lengths else {}

    def drop_index(self, table: str, index: str) -> str:
        return f"DROP INDEX {self.quote(index)} ON {self.quote(table)}"

    async def view_source(self, conn: Connection, view: str) -> tuple[str, list[tuple[str, str]]]:
        row = await conn.fetch_one(sa.text(
            "SELECT VIEW_DEFINITION AS text, TABLE_SCHEMA AS db FROM information_schema.VIEWS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :v"), {"v": view})
        # Without the database's own name, which could look like a catalog's.
        return ("" if row is None else str(row["text"] or "").replace(f"`{row['db']}`.", "")), []


def _binary_collation(dbapi_conn: Any, _record: Any) -> None:
    # The connection collation decides how two bound values compare (``@request.*`` in
    # rules); binary and no-pad makes that exact, as on SQLite and PostgreSQL. It must be
    # set after the driver's own SET NAMES, hence on connect rather than init_command.
    cursor = dbapi_conn.cursor()
    cursor.execute("SET NAMES utf8mb4 COLLATE utf8mb4_nopad_bin")
    cursor.close()


def driver_url(url: str) -> str:
    """``mysql://`` or ``mariadb://`` → the asyncmy SQLAlchemy URL (utf8mb4)."""
    for prefix in ("mysql+asyncmy://", "mysql://", "mariadb://"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            sep = "&" if "?" in rest else "?"
            if "charset=" not in rest:
                rest += f"{sep}charset=utf8mb4"
            return "mysql+asyncmy://" + rest
    raise ValueError(f"not a MySQL/MariaDB URL: {url}")


class MysqlDatabase(SqlDatabase):
    """``core.ports.Database`` for MariaDB 10.6+ (and MySQL 8)."""

    def __init__(self, url: str, pool_size: int = 20, query_timeout: float = QUERY_TIMEOUT_S):
        engine = create_async_engine(
            driver_url(url),
            pool_size=pool_size,
            max_overflow=0,  # an overflow connection is closed on return: a connect per request
            pool_timeout=10,
            pool_recycle=3600,
            json_serializer=json_serializer,
            enable_from_linting=False,  # rules join @collection tables ON TRUE on purpose
            json_deserializer=json_deserializer,
            connect_args={
                "connect_timeout": 5,
                # Seconds, fractions allowed; 0 means no limit.
                "init_command": f"SET SESSION max_statement_time={max(0.0, query_timeout):.3f}",
            },
        )
        event.listen(engine.sync_engine, "connect", _binary_collation)
        ping_after_idle(engine)
        super().__init__(engine)
        self.query_timeout = query_timeout
        self.sql = MysqlEngine()
        self.url_for_display = sa.make_url(driver_url(url)).render_as_string(hide_password=True)
