"""Small key/value storage in ``_params`` (runtime settings, version stamps)."""

from __future__ import annotations

import sqlalchemy as sa

from bastion.core.ports import Connection
from bastion.tools.timeutil import now_string


async def put_param(conn: Connection, table: sa.Table, key: str, value: str) -> None:
    """Insert or replace one value (portable: update, then insert when nothing matched)."""
    now = now_string()
    updated = await conn.execute(sa.update(table).where(table.c.id == key).values(value=value, updated=now))
    if not updated:
        await conn.execute(sa.insert(table).values(id=key, value=value, created=now, updated=now))


async def get_param(conn: Connection, table: sa.Table, key: str, for_update: bool = False) -> str | None:
    """One value; ``for_update`` locks its row until the transaction ends (PostgreSQL,
    MariaDB; SQLite's writer holds the whole database already)."""
    query = sa.select(table.c.value).where(table.c.id == key)
    value = await conn.scalar(query.with_for_update() if for_update else query)
    return None if value is None else str(value)
