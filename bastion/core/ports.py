"""Interfaces the domain needs from the outside world; adapters implement them.

Statements are SQLAlchemy Core constructs: identifiers come from the schema and values
are always bound parameters. Adapters translate driver errors into ``core.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import sqlalchemy as sa

from bastion.rules.dialects import RuleDialect

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


class DatabaseEngine(Protocol):
    """What one database engine is and can do, reached as ``Database.sql``.

    Code that builds SQL asks this object (a capability or a method) wherever engines
    differ, never the engine's name, so a new engine is one new object (see
    docs/contributing.md). ``name`` is for messages only."""

    name: str
    sa_dialect: sa.engine.Dialect
    # Column names the engine keeps for itself (a field cannot be called so).
    reserved_columns: frozenset[str]
    # The rule compiler's SQL for this engine.
    rules: RuleDialect
    # SELECT ... FOR UPDATE holds a row until the transaction ends; False where the
    # writer is exclusive already (no lock needed, none to take).
    row_locks: bool
    # UPDATE ... RETURNING gives the updated row in the same statement.
    update_returning: bool
    # CREATE [UNIQUE] INDEX ... WHERE; without it a partial unique index becomes a plain
    # index and the records service checks uniqueness in the write transaction.
    partial_indexes: bool
    # How view queries are read before the engine runs them (``core/schema/view_query.py``):
    # regular expressions for a string literal and for a quoted name (plus comments
    # only this engine has), the server's own databases a view may not read, and
    # whether the engine's own text of a view names only what the query named (and is
    # then checked for forbidden names as the query is).
    sql_string_pattern: str
    sql_name_pattern: str
    server_schemas: tuple[str, ...]
    plain_view_text: bool

    def json_array_contains(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        """True when the JSON array in ``column`` has the string ``value`` as an item."""

    def quote(self, identifier: str) -> str:
        """Quote an identifier for this database."""

    def text_type(self) -> sa.types.TypeEngine[Any]: ...

    def json_type(self) -> sa.types.TypeEngine[Any]: ...

    def table_options(self) -> dict[str, Any]:
        """Keyword options for ``sa.Table`` (charset/collation on MariaDB)."""

    def index_key(self, column: sa.ColumnElement[Any], nocase: bool, desc: bool) -> sa.ColumnElement[Any]:
        """One indexed column as the engine can use it for the list sort (NULLs first
        ascending) and, where it can, case-insensitively (``nocase``)."""

    def index_prefix_lengths(self, table: sa.Table, columns: Sequence[str]) -> dict[str, int]:
        """Columns a non-unique index can only cover by a prefix, with its length."""

    def index_options(
        self, where: sa.ColumnElement[bool] | None, prefix_lengths: Mapping[str, int]
    ) -> dict[str, Any]:
        """Keyword options for ``sa.Index``: the partial index condition (only asked
        where ``partial_indexes``) and the prefix lengths."""

    def drop_index(self, table: str, index: str) -> str:
        """The statement dropping ``index`` of ``table`` (quoted here), if it exists."""

    def index_owner_query(self) -> sa.TextClause | None:
        """A query for the table owning the index or relation named ``:n`` (case
        ignored), with the column ``owner``; None where index names are per table."""

    async def view_source(self, conn: Connection, view: str) -> tuple[str, list[tuple[str, str]]]:
        """The engine's own text of ``view`` and the (table, column) pairs it reads,
        where the engine keeps them (else ``""`` and ``[]``)."""


class Database(Protocol):
    """The storage port: pooled connections, transactions and the dialect in use."""

    url_for_display: str
    sql: DatabaseEngine

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


@dataclass(frozen=True, slots=True)
class WebResponse:
    """An answer of another service: its status and its body, read whole."""

    status: int
    body: bytes


class WebError(Exception):
    """A request to another service could not be made, or its answer not read whole."""


class WebClient(Protocol):
    """Outbound HTTP to other services (OAuth2 and OpenID Connect providers, webhooks).

    Redirects are not followed. Adapters raise ``WebError`` for every failure of the
    request itself (bad URL, refused, timed out, body over ``limit``); an answer with any
    status is returned. ``public_only``: the host must resolve to public addresses only
    (not loopback, private, link-local or cloud metadata ones), checked as the connection
    is made, and the connection goes to the address that was checked."""

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None, timeout: float, limit: int, public_only: bool = False,
    ) -> WebResponse: ...


class Offline:
    """``WebClient`` where none is wired: every request fails with ``WebError``."""

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None, timeout: float, limit: int, public_only: bool = False,
    ) -> WebResponse:
        raise WebError("no outbound HTTP client is wired")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What a file storage knows of one stored file."""

    key: str
    size: int
    modified: float  # seconds since the epoch
    content_type: str  # as given to ``put`` where the storage keeps it (S3), else ""
    etag: str  # changes whenever the bytes do


class FileStorage(Protocol):
    """Where uploaded files live: a local folder or an S3-compatible bucket.

    Keys are ``/``-separated relative paths built by ``core/files`` from ids and
    sanitised names (``{collectionId}/{recordId}/{filename}``); adapters refuse a key
    that is absolute or holds ``..``, NUL or a backslash (``ValueError``). Bytes are
    streamed both ways: no method holds a whole file in memory but ``read_all``, which
    is bounded. Failures of the storage itself raise ``errors.Unavailable``."""

    name: str  # "local" or "s3", for messages

    async def put(self, key: str, source: BinaryIO, content_type: str) -> int:
        """Store the bytes of ``source`` (from its current position to its end) under
        ``key``, replacing what was there, atomically (no reader sees half a file);
        return the number of bytes stored."""

    async def stat(self, key: str) -> StoredFile | None:
        """The stored file at ``key``, or None when there is none."""

    def read(self, key: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes of ``key`` from ``start``, ``length`` of them (all when None), in
        chunks; raises ``errors.NotFound`` for a missing key before yielding."""

    async def read_all(self, key: str, limit: int) -> bytes:
        """The whole file at ``key``; ``errors.NotFound`` when missing, ``ValueError``
        when it is larger than ``limit`` bytes."""

    async def fetch(self, key: str, limit: int) -> tuple[StoredFile, bytes | None] | None:
        """What ``stat`` tells of ``key`` and, when it holds at most ``limit`` bytes, its
        bytes, in one call to the storage (the fast path of downloads); None when
        there is no such file."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is no error."""

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every key under ``prefix`` (a folder: ends with ``/``)."""

    def list(self, prefix: str = "") -> AsyncIterator[StoredFile]:
        """Every stored file under ``prefix``, in no particular order."""

    async def close(self) -> None: ...


# Opens the file storage the ``s3`` settings choose: an S3-compatible bucket while
# ``s3.enabled``, else the local folder. Asked on each use, so a settings change takes
# effect at once; adapters keep one client per distinct options.
StorageFactory = Callable[[Mapping[str, Any]], FileStorage]


# Makes an App's mailer from a reader of the current settings (SMTP options live there).
MailerFactory = Callable[[Callable[[], dict[str, Any]]], Mailer]


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

    def close(self) -> None:
        """Let go of what announcing takes (a mapped file); called as the App closes."""


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

    def close(self) -> None:
        return None


# Called, on the event loop, with each message a bus carries.
Deliver = Callable[[bytes], None]


class EventBus(Protocol):
    """Carries committed changes from the process that made them to every process that
    serves realtime subscribers (``core/realtime``), this one included.

    Delivery is at most once and fast rather than durable: a process that is down or
    disconnected while a message passes misses it (its subscribers' streams are gone
    too, and clients reconnect). Messages from one publishing process arrive in the
    order it published them, each whole, whatever its size (a transport with a size
    limit splits and joins)."""

    async def start(self, deliver: Deliver) -> None:
        """Begin receiving: ``deliver`` is called with every message published from now
        on by any process, this one included. Returns once receiving is set up; keeps
        reconnecting in the background when the transport is lost."""

    async def publish(self, message: bytes) -> None:
        """Send ``message`` to every receiving process. A transport fault is logged and
        the message dropped, never raised: the write it reports has committed."""

    async def close(self) -> None:
        """Stop receiving and let go of connections."""


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One outbox event as a broker carries it: its id (the broker's deduplication key),
    its sequence, the record it is about and the envelope (CloudEvents JSON)."""

    id: str
    sequence: int
    collection: str
    record_id: str
    body: bytes


class PublishFailed(Exception):
    """A broker did not acknowledge an event (unreachable, timed out, refused)."""


class EventPublisher(Protocol):
    """Where the outbox relay (``core/events/relay.py``) delivers committed events.

    ``publish`` returns once the broker acknowledged the event (a Redis stream entry, a
    JetStream PubAck) and raises ``PublishFailed`` otherwise: the relay keeps the event
    and tries again later. Events are given one at a time, in sequence order."""

    async def publish(self, event: OutboundEvent) -> None: ...

    async def close(self) -> None: ...
