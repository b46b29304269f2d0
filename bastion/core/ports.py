"""Interfaces the domain needs from the outside world; adapters implement them.

Statements are SQLAlchemy Core constructs: identifiers come from the schema and values
are always bound parameters. Adapters translate driver errors into ``core.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Protocol

import sqlalchemy as sa

Row = Mapping[str, Any]


class Connection(Protocol):
    """One open connection, inside a transaction when obtained from ``transaction()``."""

    async def execute(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return the affected row count."""

    async def fetch_all(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Sequence[Row]: ...

    async def fetch_one(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Row | None: ...

    async def scalar(self, statement: sa.Executable) -> Any: ...

    async def ddl(self, statement: sa.Executable | str) -> None:
        """Run a schema statement (DDL); a ``str`` must be built from quoted identifiers."""

    async def column_names(self, table: str) -> list[str]:
        """Columns of a table or view as the database reports them."""


class SqlDialect(Protocol):
    """Expression builders whose SQL differs per database."""

    name: str
    sa_dialect: sa.engine.Dialect
    # Column names the engine keeps for itself (a field cannot be called so).
    reserved_columns: frozenset[str]

    def json_array_contains(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        """True when the JSON array in ``column`` has the string ``value`` as an item."""

    def quote(self, identifier: str) -> str:
        """Quote an identifier for this database."""

    def text_type(self) -> sa.types.TypeEngine[Any]: ...

    def json_type(self) -> sa.types.TypeEngine[Any]: ...

    def table_options(self) -> dict[str, Any]:
        """Keyword options for ``sa.Table`` (charset/collation on MariaDB)."""


class Database(Protocol):
    """The storage port: pooled connections, transactions and the dialect in use."""

    url_for_display: str
    sql: SqlDialect

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for reads (no write lock taken)."""

    def read_brief(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for a read of a few rows by key (a sign-in's lookup, a token's
        record), kept apart from reads that scan: heavy lists filling every reader must
        not make signing in wait. Engines with large pools serve it as :meth:`read`."""

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A connection inside one transaction: committed on exit, rolled back on error."""

    def statement(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for one write that stands alone (atomic by itself): where the
        database allows it, no BEGIN and COMMIT around it."""

    async def schema_changed(self) -> None:
        """Forget cached statements after DDL (prepared statement caches and the like)."""

    def change_notice(self) -> sa.Executable | None:
        """A statement that, run in a transaction, tells every node listening through
        ``listen_for_changes`` when that transaction commits; None where the database
        has no such channel (nodes then learn of changes by polling)."""

    async def listen_for_changes(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` whenever a committed ``change_notice`` arrives, until
        cancelled; reconnects by itself. Returns at once where there is no channel."""

    async def table_names(self) -> list[str]: ...


class Mailer(Protocol):
    """Sends one email; raises ``errors.Unavailable`` when the mail server cannot be reached."""

    async def send(self, to: str, subject: str, html: str) -> None: ...


def reading(db: Database, conn: Connection | None) -> AbstractAsyncContextManager[Connection]:
    """``conn`` when the caller holds one already, else a read connection of ``db``."""
    return nullcontext(conn) if conn is not None else db.read()


class Siblings(Protocol):
    """The other worker processes of this machine serving the same database.

    A schema or settings change made by one worker is announced at once, and every
    worker checks before each request whether one was announced since it last caught
    up, so a change is seen by the next request whichever worker takes it. Other nodes
    (other machines) still learn of a change by polling the stored versions."""

    def announce(self) -> None:
        """Tell the siblings that this process just committed a schema or settings change."""

    def mark(self) -> bytes:
        """The latest announcement (opaque); compare it with what was caught up with."""

    def stale(self) -> bool:
        """Whether a sibling announced a change this process has not caught up with."""

    def caught_up(self, mark: bytes) -> None:
        """Record that this process reloaded everything announced up to ``mark``."""


class Alone:
    """``Siblings`` for a single process: nothing to announce, never stale."""

    def announce(self) -> None:
        return None

    def mark(self) -> bytes:
        return b""

    def stale(self) -> bool:
        return False

    def caught_up(self, mark: bytes) -> None:
        return None
