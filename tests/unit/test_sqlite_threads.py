"""The SQLite adapter's thread-per-connection workers: ordering, transactions, bounds."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bastion.adapters.db_sqlite import SqliteDatabase
from bastion.core import errors

ITEMS = sa.table("items", sa.column("id", sa.Integer), sa.column("name", sa.Text))


@pytest.fixture
async def db(tmp_path: Path):
    database = SqliteDatabase(tmp_path / "data.db", readers=2, busy_timeout=1.0)
    async with database.transaction() as conn:
        await conn.ddl("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    try:
        yield database
    finally:
        await database.close()


async def count(db: SqliteDatabase) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(ITEMS)))


async def test_a_failed_transaction_writes_nothing(db):
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute(sa.insert(ITEMS).values(id=1, name="a"))
            raise RuntimeError("validation failed after the first statement")
    assert await count(db) == 0
    async with db.transaction() as conn:  # the writer is usable again
        await conn.execute(sa.insert(ITEMS).values(id=1, name="a"))
    assert await count(db) == 1


async def test_constraint_errors_are_translated_and_roll_back(db):
    async with db.transaction() as conn:
        await conn.execute(sa.insert(ITEMS).values(id=1, name="a"))
    with pytest.raises(errors.Conflict):
        async with db.transaction() as conn:
            await conn.execute(sa.insert(ITEMS).values(id=2, name="b"))
            await conn.execute(sa.insert(ITEMS).values(id=1, name="again"))
    assert await count(db) == 1


async def test_many_concurrent_readers_share_two_connections(db):
    async with db.transaction() as conn:
        for i in range(50):
            await conn.execute(sa.insert(ITEMS).values(id=i, name=f"n{i}"))

    async def read(i: int) -> str:
        async with db.read() as conn:
            row = await conn.fetch_one(sa.select(ITEMS.c.name).where(ITEMS.c.id == i))
            assert row is not None
            return str(row["name"])

    assert await asyncio.gather(*(read(i % 50) for i in range(300))) == [f"n{i % 50}" for i in range(300)]


async def test_a_read_sees_one_snapshot(db):
    async with db.transaction() as conn:
        await conn.execute(sa.insert(ITEMS).values(id=1, name="a"))
    async with db.read() as reader:
        assert int(await reader.scalar(sa.select(sa.func.count()).select_from(ITEMS))) == 1
        async with db.transaction() as writer:
            await writer.execute(sa.insert(ITEMS).values(id=2, name="b"))
        # WAL: the open read transaction keeps its snapshot until the read ends.
        assert int(await reader.scalar(sa.select(sa.func.count()).select_from(ITEMS))) == 1
    assert await count(db) == 2


async def test_a_cancelled_reader_leaves_its_connection_usable(db):
    async def slow_read() -> None:
        async with db.read() as conn:
            recursive = sa.text(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000) "
                "SELECT count(*) FROM n")
            await conn.scalar(recursive)

    tasks = [asyncio.create_task(slow_read()) for _ in range(2)]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert await count(db) == 0  # both workers finished their statement and came back


async def test_waiting_for_the_writer_is_bounded(db):
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with db.transaction() as conn:
            await conn.execute(sa.insert(ITEMS).values(id=1, name="held"))
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await entered.wait()
    started = time.monotonic()
    with pytest.raises(errors.Unavailable):
        async with db.transaction() as conn:
            await conn.execute(sa.insert(ITEMS).values(id=2, name="late"))
    assert 0.9 < time.monotonic() - started < 3
    release.set()
    await holder
    assert await count(db) == 1


async def test_a_lock_held_by_another_process_is_503_not_500(db, tmp_path):
    other = sqlite3.connect(tmp_path / "data.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(errors.Unavailable):
            async with db.transaction() as conn:
                await conn.execute(sa.insert(ITEMS).values(id=1, name="blocked"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with db.transaction() as conn:
        await conn.execute(sa.insert(ITEMS).values(id=1, name="after"))
    assert await count(db) == 1


async def test_standalone_statements_commit_one_by_one(db):
    with pytest.raises(RuntimeError):
        async with db.statement() as conn:
            await conn.execute(sa.insert(ITEMS).values(id=1, name="a"))
            raise RuntimeError("what ran before this is already committed")
    assert await count(db) == 1
    with pytest.raises(errors.Conflict):
        async with db.statement() as conn:
            await conn.execute(sa.insert(ITEMS).values(id=1, name="again"))
    async with db.statement() as conn:  # the failed statement was rolled back
        row = await conn.fetch_one(sa.insert(ITEMS).values(id=2, name="b").returning(ITEMS.c.name))
        assert row is not None and row["name"] == "b"
    assert await count(db) == 2
    async with db.transaction() as conn:  # and the writer is not left inside a transaction
        await conn.execute(sa.insert(ITEMS).values(id=3, name="c"))
    assert await count(db) == 3
