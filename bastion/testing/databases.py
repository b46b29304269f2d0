"""Throwaway databases on each engine Bastion runs on, made empty or as copies.

An :class:`DatabaseMaker` makes a database with a unique name, copies one, and drops it:

- SQLite: a ``data.db`` file in a folder of your choice; a copy is a file copy.
- PostgreSQL: ``CREATE DATABASE``; a copy is ``CREATE DATABASE ... TEMPLATE``.
- MariaDB / MySQL: ``CREATE DATABASE``; a copy recreates each table from the source's
  ``SHOW CREATE TABLE`` and copies its rows with ``INSERT ... SELECT``.

The servers are reached through an administrative URL, by default the local ones
(``postgresql://postgres@127.0.0.1:5432/postgres`` and ``mysql://root@127.0.0.1:3306/test``);
the environment variables ``BASTION_TEST_POSTGRES`` and ``BASTION_TEST_MARIADB`` override
them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MARIADB_URL = "mysql://root@127.0.0.1:3306/test"
# Bastion's own MariaDB databases use this character set and collation: exact, case- and
# trailing-space-sensitive comparisons, as on SQLite and PostgreSQL.
MARIADB_CHARSET = "CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"


@dataclass(frozen=True)
class TemporaryDatabase:
    """One throwaway database: open it with ``open_database(url, data_dir)``.

    ``url`` is empty on SQLite, where the database is ``data_dir / "data.db"``."""

    engine: str
    name: str
    url: str
    data_dir: Path


def unique_name(prefix: str = "bt") -> str:
    """A database name no other test uses: ``prefix`` and 12 random hex digits."""
    return f"{prefix}_{secrets.token_hex(6)}"


def _reachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1):
            return None
    except OSError:
        return f"{host}:{port} is not reachable"


class DatabaseMaker:
    """Makes, copies and drops throwaway databases on one database engine."""

    name = ""
    # Copies are made several at a time: a database server makes a few at once in about
    # the time of one (most of it is waiting for the disk).
    copies_in_batches = False

    def unavailable(self) -> str | None:
        """Why this engine cannot be used right now (its server is unreachable), or None."""
        return None

    async def create(self, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        """A new, empty database; on SQLite its file will be ``data_dir / "data.db"``."""
        raise NotImplementedError

    async def copy(self, source: TemporaryDatabase, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        """A new database holding the same tables and rows as ``source``.

        Nothing may be connected to ``source`` while it is copied (close its App first)."""
        raise NotImplementedError

    async def drop(self, database: TemporaryDatabase) -> None:
        """Remove the database (SQLite: nothing to do, the folder is the caller's)."""


class SqliteMaker(DatabaseMaker):
    name = "sqlite"

    async def create(self, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        data_dir.mkdir(parents=True, exist_ok=True)
        return TemporaryDatabase(self.name, name or unique_name(), "", data_dir)

    async def copy(self, source: TemporaryDatabase, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        data_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):  # a cleanly closed database has no -wal file left
            origin = source.data_dir / f"data.db{suffix}"
            if origin.exists():
                shutil.copyfile(origin, data_dir / f"data.db{suffix}")
        return TemporaryDatabase(self.name, name or unique_name(), "", data_dir)


class PostgresMaker(DatabaseMaker):
    name = "postgres"
    copies_in_batches = True

    def __init__(self, admin_url: str = "") -> None:
        self.admin_url = admin_url or os.environ.get("BASTION_TEST_POSTGRES", POSTGRES_URL)

    def unavailable(self) -> str | None:
        problem = _reachable(self.admin_url, 5432)
        return problem and f"PostgreSQL at {problem}"

    async def _run(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url.replace("postgresql://", "postgres://", 1))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def _url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    async def create(self, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        name = name or unique_name()
        await self._run(f'CREATE DATABASE "{name}"')
        return TemporaryDatabase(self.name, name, self._url(name), data_dir)

    async def copy(self, source: TemporaryDatabase, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        name = name or unique_name()
        await self._run(f'CREATE DATABASE "{name}" TEMPLATE "{source.name}"')
        return TemporaryDatabase(self.name, name, self._url(name), data_dir)

    async def drop(self, database: TemporaryDatabase) -> None:
        await self._run(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


class MariadbMaker(DatabaseMaker):
    name = "mariadb"
    copies_in_batches = True

    def __init__(self, admin_url: str = "") -> None:
        self.admin_url = admin_url or os.environ.get("BASTION_TEST_MARIADB", MARIADB_URL)

    def unavailable(self) -> str | None:
        problem = _reachable(self.admin_url, 3306)
        return problem and f"MariaDB at {problem}"

    async def _connect(self) -> Any:
        import asyncmy

        parts = urlsplit(self.admin_url)
        return await asyncmy.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                                     user=parts.username or "root", password=parts.password or "")

    async def _run(self, *statements: str) -> None:
        conn = await self._connect()
        try:
            async with conn.cursor() as cur:
                for sql in statements:
                    await cur.execute(sql)
        finally:
            conn.close()

    def _url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    async def create(self, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        name = name or unique_name()
        await self._run(f"CREATE DATABASE `{name}` {MARIADB_CHARSET}")
        return TemporaryDatabase(self.name, name, self._url(name), data_dir)

    async def copy(self, source: TemporaryDatabase, data_dir: Path, name: str | None = None) -> TemporaryDatabase:
        name = name or unique_name()
        conn = await self._connect()
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"CREATE DATABASE `{name}` {MARIADB_CHARSET}")
                await cur.execute(f"SHOW FULL TABLES FROM `{source.name}`")
                tables = [(row[0], row[1]) for row in await cur.fetchall()]
                await cur.execute(f"USE `{name}`")
                await self._copy_tables(cur, source.name, tables)
        finally:
            conn.close()
        return TemporaryDatabase(self.name, name, self._url(name), data_dir)

    @staticmethod
    async def _copy_tables(cur: Any, source: str, tables: list[tuple[str, str]]) -> None:
        views = [table for table, kind in tables if kind == "VIEW"]
        if views:  # a view's stored query names the source database: it would read from there
            raise ValueError(f"cannot copy {source}: it holds views ({', '.join(views)})")
        for table, _kind in tables:
            await cur.execute(f"SHOW CREATE TABLE `{source}`.`{table}`")
            await cur.execute((await cur.fetchone())[1])
            await cur.execute(f"INSERT INTO `{table}` SELECT * FROM `{source}`.`{table}`")

    async def drop(self, database: TemporaryDatabase) -> None:
        await self._run(f"DROP DATABASE IF EXISTS `{database.name}`")


def engines() -> dict[str, DatabaseMaker]:
    """One :class:`DatabaseMaker` per name: ``sqlite``, ``postgres`` and ``mariadb``."""
    return {engine.name: engine for engine in (SqliteMaker(), PostgresMaker(), MariadbMaker())}
