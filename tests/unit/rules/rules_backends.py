"""Shared fixtures and data for the rules tests: a seeded ``items`` table on SQLite, PostgreSQL, MariaDB.

Each backend lives in a fresh place that is dropped afterwards (a temporary SQLite file,
a uniquely named PostgreSQL schema in database ``test``, a uniquely named MariaDB
database). An unreachable server skips its tests, unless ``BASTION_TEST_SERVICES=required``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bastion.rules import SimpleFieldResolver, compile_filter, compile_sort, parse_sort

NOW = datetime(2024, 6, 15, 12, 34, 56, 789000, tzinfo=UTC)  # a Saturday
# The suite-wide variables (see tests/services.py); the schema / database is made here.
PG_URL = sa.make_url(
    os.environ.get("BASTION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
).set(drivername="postgresql+asyncpg")
MARIADB_URL = sa.make_url(
    os.environ.get("BASTION_TEST_MARIADB", "mysql://root@127.0.0.1:3306/test")
).set(drivername="mysql+asyncmy")

ROWS: list[dict[str, Any]] = [
    {
        "id": "r1",
        "title": "Hello World",
        "n": 10,
        "flag": True,
        "created": "2024-01-15 10:00:00.000Z",
        "tags": ["a", "b"],
        "meta": {"a": 1, "b": "x", "c": True, "arr": [1, 2], "o": {"k": "v"}},
        "lon": 23.3219,
        "lat": 42.6977,
    },
    {
        "id": "r2",
        "title": "hello",
        "n": 5.5,
        "flag": False,
        "created": "2023-06-01 00:00:00.000Z",
        "tags": ["b"],
        "meta": {"a": 2, "b": "Y", "c": False},
        "lon": -0.1276,
        "lat": 51.5072,
    },
    {
        "id": "r3",
        "title": "",
        "n": 0,
        "flag": False,
        "created": "",
        "tags": [],
        "meta": None,
        "lon": 2.3522,
        "lat": 48.8566,
    },
    {
        "id": "r4",
        "title": None,
        "n": None,
        "flag": None,
        "created": None,
        "tags": None,
        "meta": {},
        "lon": None,
        "lat": None,
    },
    {
        "id": "r5",
        "title": "a_b%c\\d",
        "n": -3,
        "flag": True,
        "created": "2024-12-31 23:59:59.999Z",
        "tags": ["c", "a", "A"],
        "meta": {"a": "1", "b": None},
        "lon": 23.3219,
        "lat": 42.6977,
    },
    {
        "id": "r6",
        "title": 'O\'Brien "q"',
        "n": 100,
        "flag": True,
        "created": "2025-02-28 12:30:00.000Z",
        "tags": ["x"],
        "meta": {"a": 1.5, "b": ""},
        "lon": 139.6917,
        "lat": 35.6895,
    },
    {
        "id": "r7",
        "title": "10",
        "n": 10,
        "flag": False,
        "created": "2024-01-15 10:00:00.000Z",
        "tags": ["1", "10"],
        "meta": [1, 2, 3],
        "lon": 0,
        "lat": 0,
    },
    {
        "id": "r8",
        "title": "Zebra crossing",
        "n": 2,
        "flag": True,
        "created": "2024-02-29 00:00:00.000Z",
        "tags": ["a", "a"],
        "meta": "str",
        "lon": -74.006,
        "lat": 40.7128,
    },
]
ALL_IDS = [row["id"] for row in ROWS]
LABELS = [
    {"id": "a", "label": "Alpha"},
    {"id": "b", "label": "Beta"},
    {"id": "c", "label": "Gamma"},
    {"id": "x", "label": "Xray"},
    {"id": "r1", "label": "first"},
    {"id": "r2", "label": "second"},
]


def items_table(metadata: sa.MetaData) -> sa.Table:
    """The seeded table; number columns use NUMERIC affinity on SQLite, as PocketBase."""
    number: sa.types.TypeEngine[Any] = sa.Double().with_variant(
        sa.Numeric(asdecimal=False), "sqlite"
    )
    document = sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
    return sa.Table(
        "items",
        metadata,
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("title", sa.String(200)),
        sa.Column("n", number),
        sa.Column("flag", sa.Boolean),
        sa.Column("created", sa.String(40)),
        sa.Column("tags", document),
        sa.Column("meta", document),
        sa.Column("lon", sa.Double),
        sa.Column("lat", sa.Double),
    )


def labels_table(metadata: sa.MetaData) -> sa.Table:
    """A second table the custom-resolver tests treat as a relation target."""
    return sa.Table(
        "labels",
        metadata,
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("label", sa.String(100)),
    )


@dataclass
class Backend:
    """A seeded database: run filters and sorts against it."""

    name: str
    engine: AsyncEngine
    table: sa.Table

    @property
    def labels(self) -> sa.Table:
        return self.table.metadata.tables[_qualified(self.table, "labels")]

    async def run(self, condition: sa.ColumnElement[bool]) -> list[str]:
        """Ids of the rows matching an already compiled condition, sorted."""
        query = sa.select(self.table.c.id).where(condition).order_by(self.table.c.id)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    @property
    def resolver(self) -> SimpleFieldResolver:
        allowed = {"id", "title", "n", "flag", "created", "lon", "lat"}
        return SimpleFieldResolver(self.table, allowed, multi={"tags"}, json={"meta"})

    async def ids(self, filter_text: str) -> list[str]:
        """Ids of the rows matching ``filter_text``, sorted."""
        return await self.run(compile_filter(filter_text, self.resolver, self.name, now=NOW))

    async def sorted_ids(self, sort_text: str) -> list[str]:
        """All ids in the order given by ``sort_text``."""
        order = compile_sort(parse_sort(sort_text), self.resolver, self.name)
        query = sa.select(self.table.c.id).order_by(*order)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())


def _unreachable(name: str, error: Exception) -> None:
    reason = f"{name} is not reachable: {type(error).__name__}: {error}"
    if os.environ.get("BASTION_TEST_SERVICES") == "required":
        pytest.fail(reason)
    pytest.skip(reason)


def _qualified(table: sa.Table, name: str) -> str:
    return f"{table.schema}.{name}" if table.schema else name


async def _seed(engine: AsyncEngine, table: sa.Table) -> None:
    labels = labels_table(table.metadata)
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
        await conn.execute(table.insert(), ROWS)
        await conn.execute(labels.insert(), LABELS)


async def _sqlite(tmp: Path) -> AsyncIterator[Backend]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp / 'rules.db'}")
    table = items_table(sa.MetaData())
    await _seed(engine, table)
    yield Backend("sqlite", engine, table)
    await engine.dispose()


async def _postgres() -> AsyncIterator[Backend]:
    schema = f"rules_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(PG_URL, connect_args={"timeout": 5})
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.schema.CreateSchema(schema))
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        await engine.dispose()
        _unreachable("PostgreSQL", error)
    try:
        table = items_table(sa.MetaData(schema=schema))
        await _seed(engine, table)
        yield Backend("postgresql", engine, table)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.schema.DropSchema(schema, cascade=True))
        await engine.dispose()


async def _mariadb() -> AsyncIterator[Backend]:
    database = f"rules_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(MARIADB_URL, connect_args={"connect_timeout": 5})
    try:
        async with admin.begin() as conn:
            await conn.exec_driver_sql(
                f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
            )
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        await admin.dispose()
        _unreachable("MariaDB", error)
    engine = create_async_engine(MARIADB_URL.set(database=database))
    try:
        table = items_table(sa.MetaData())
        await _seed(engine, table)
        yield Backend("mysql", engine, table)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE `{database}`")
        await admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "mysql"])
async def rules_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """One seeded backend per parameter, shared by the whole session."""
    if request.param == "sqlite":
        source = _sqlite(tmp_path_factory.mktemp("rules"))
    elif request.param == "postgresql":
        source = _postgres()
    else:
        source = _mariadb()
    async for item in source:
        yield item
