"""Two writes that lock the same rows in opposite orders: the engine undoes one of them to
break the deadlock. That one answers a clear 503 ("try again", nothing saved), never a
500, and the other commits. (SQLite has one writer at a time: it never deadlocks.)"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bastion.core.app import App
from bastion.core.errors import Unavailable
from bastion.testing import TestClient

pytestmark = pytest.mark.backends


async def test_a_deadlock_undoes_one_write_with_a_clear_answer(client: TestClient, app: App) -> None:
    if not app.db.sql.row_locks:
        pytest.skip("this engine's writer is exclusive: two writes never hold rows at once")
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "pair", "fields": [{"name": "n", "type": "number"}]})
    assert res.status_code == 200, res.text
    ids = [(await client.post("/api/collections/pair/records", headers=client.su(), json={"n": 0})).json()["id"]
           for _ in range(2)]
    table = app.registry.table(app.registry.get("pair"))
    first_locked = [asyncio.Event(), asyncio.Event()]

    async def write(me: int) -> str:
        order = ids if me == 0 else ids[::-1]
        try:
            async with app.db.transaction() as conn:
                await conn.execute(sa.update(table).where(table.c.id == order[0]).values(n=me + 1))
                first_locked[me].set()
                await first_locked[1 - me].wait()
                await conn.execute(sa.update(table).where(table.c.id == order[1]).values(n=me + 1))
        except Unavailable as exc:
            return exc.message
        return "committed"

    outcomes = await asyncio.wait_for(asyncio.gather(write(0), write(1)), timeout=30)
    assert outcomes.count("committed") == 1, outcomes
    undone = next(o for o in outcomes if o != "committed")
    assert "try again" in undone and "nothing was saved" in undone, outcomes
    rows = (await client.get("/api/collections/pair/records", headers=client.su())).json()["items"]
    assert len({r["n"] for r in rows}) == 1  # both rows hold the winner's value, none half-written
