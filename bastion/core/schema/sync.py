"""Apply a change of one collection definition to the database schema (DDL).

Fields are matched by ``id``, so a renamed field keeps its column and its values. A type
change that alters how a value is stored copies every value through the new field's
``convert`` into a fresh column; a value that cannot be converted stops the change with a
message naming the record. Indexes are dropped and rebuilt from their parsed specs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import BadRequest, FieldError
from bastion.core.fields import Field, StorageKind
from bastion.core.ports import Connection, DatabaseEngine
from bastion.core.schema.collections import Collection
from bastion.core.schema.indexes import IndexSpec, IndexWhere
from bastion.core.schema.tables import build_table, column_for

CONVERT_BATCH = 500


class SchemaSync:
    """DDL for one database dialect."""

    def __init__(self, sql: DatabaseEngine):
        self.sql = sql
        self.q = sql.quote

    async def apply(self, conn: Connection, old: Collection | None, new: Collection | None) -> None:
        if old is None and new is not None:
            await self.create(conn, new)
        elif new is None and old is not None:
            await self.drop(conn, old)
        elif old is not None and new is not None:
            await self.update(conn, old, new)

    async def create(self, conn: Connection, col: Collection) -> None:
        if col.is_view:
            await conn.ddl(f"CREATE VIEW {self.q(col.name)} AS {col.view_query}")
            return
        await conn.ddl(sa.schema.CreateTable(build_table(col, self.sql)))
        for spec in col.index_specs():
            await self.create_index(conn, col, spec)

    async def drop(self, conn: Connection, col: Collection) -> None:
        kind = "VIEW" if col.is_view else "TABLE"
        await conn.ddl(f"DROP {kind} IF EXISTS {self.q(col.name)}")

    async def update(self, conn: Connection, old: Collection, new: Collection) -> None:
        if new.is_view:
            await conn.ddl(f"DROP VIEW IF EXISTS {self.q(old.name)}")
            await conn.ddl(f"CREATE VIEW {self.q(new.name)} AS {new.view_query}")
            return
        await self.check_conversions(conn, old, new)
        for spec in old.index_specs():
            await self.drop_index(conn, old.name, spec)
        if old.name != new.name:
            await conn.ddl(f"ALTER TABLE {self.q(old.name)} RENAME TO {self.q(new.name)}")
        table = new.name
        new_ids = {f.id for f in new.fields}
        for f in old.fields:
            if f.id not in new_ids:
                await conn.ddl(f"ALTER TABLE {self.q(table)} DROP COLUMN {self.q(f.name)}")
        for f in new.fields:
            before = old.field_by_id(f.id)
            if before is None:
                await self.add_column(conn, table, f)
                continue
            if before.name != f.name:
                await conn.ddl(
                    f"ALTER TABLE {self.q(table)} RENAME COLUMN {self.q(before.name)} TO {self.q(f.name)}"
                )
            if _needs_conversion(before, f):
                await self.convert_column(conn, new, before, f)
        for spec in new.index_specs():
            await self.create_index(conn, new, spec)

    async def add_column(self, conn: Connection, table: str, f: Field, name: str | None = None) -> None:
        column = column_for(f, self.sql)
        ctype = f.column_type(self.sql).compile(dialect=self.sql.sa_dialect)
        ddl = f"ALTER TABLE {self.q(table)} ADD COLUMN {self.q(name or f.name)} {ctype}"
        if column.server_default is not None:
            ddl += f" DEFAULT {f.server_default()}"
        if not f.nullable:
            ddl += " NOT NULL"
        await conn.ddl(ddl)

    async def check_conversions(self, conn: Connection, old: Collection, new: Collection) -> None:
        """Refuse a type change before any DDL runs (MariaDB cannot roll DDL back)."""
        for f in new.fields:
            before = old.field_by_id(f.id)
            if before is None or not _needs_conversion(before, f):
                continue
            table = sa.table(old.name, sa.column("id"), sa.column(before.name))
            async for row_id, value in _scan(conn, table, before.name):
                _convert(before, f, value, row_id)

    async def convert_column(self, conn: Connection, col: Collection, old: Field, new: Field) -> None:
        """Copy values into a column of the new type, converting each one."""
        tmp = f"_new_{new.name}"[:60]
        await self.add_column(conn, col.name, new, name=tmp)
        old_table = sa.table(col.name, sa.column("id"), sa.column(new.name))
        tmp_table = sa.Table(
            col.name, sa.MetaData(), sa.Column("id", sa.String(255)),
            sa.Column(tmp, new.column_type(self.sql)),
        )
        async for row_id, stored in _scan(conn, old_table, new.name):
            value = _convert(old, new, stored, row_id)
            await conn.execute(
                sa.update(tmp_table).where(tmp_table.c.id == row_id).values({tmp: new.to_db(value)})
            )
        await conn.ddl(f"ALTER TABLE {self.q(col.name)} DROP COLUMN {self.q(new.name)}")
        await conn.ddl(f"ALTER TABLE {self.q(col.name)} RENAME COLUMN {self.q(tmp)} TO {self.q(new.name)}")

    async def create_index(self, conn: Connection, col: Collection, spec: IndexSpec) -> None:
        table = build_table(col, self.sql)
        exprs = [self.sql.index_key(table.c[c.name], c.nocase, c.desc) for c in spec.columns]
        # Without partial indexes a partial unique index becomes a plain index and
        # uniqueness is checked by the records service inside the write transaction
        # (see docs/architecture.md).
        partial = spec.where is not None and self.sql.partial_indexes
        unique = spec.unique and (spec.where is None or partial)
        lengths = {} if unique else self.sql.index_prefix_lengths(table, [c.name for c in spec.columns])
        if lengths and any(c.desc for c in spec.columns):
            # SQLAlchemy cannot put a prefix length on a descending column.
            cols = ", ".join(
                self.q(c.name) + (f"({lengths[c.name]})" if c.name in lengths else "") + (" DESC" if c.desc else "")
                for c in spec.columns)
            await conn.ddl(f"CREATE INDEX {self.q(spec.name)} ON {self.q(col.name)} ({cols})")
            return
        where = _index_where(table, spec.where) if partial and spec.where is not None else None
        options = self.sql.index_options(where, lengths)
        await conn.ddl(sa.schema.CreateIndex(sa.Index(spec.name, *exprs, unique=unique, **options)))

    async def drop_index(self, conn: Connection, table: str, spec: IndexSpec) -> None:
        await conn.ddl(self.sql.drop_index(table, spec.name))


def _index_where(table: sa.Table, where: IndexWhere) -> sa.ColumnElement[bool]:
    """A partial index's condition (values written as SQL literals: DDL takes no binds)."""
    wcol = table.c[where.column]
    if where.op == "notnull":
        return wcol.isnot(None)
    value: sa.ColumnElement[Any] = sa.literal_column(_sql_literal(where.value))
    return wcol != value if where.op == "!=" else wcol == value


async def _scan(conn: Connection, table: sa.TableClause, column: str) -> AsyncIterator[tuple[str, Any]]:
    """Every (id, value) of a column, in id order, a batch at a time."""
    last = ""
    while True:
        rows = await conn.fetch_all(
            sa.select(table.c.id, table.c[column]).where(table.c.id > last)
            .order_by(table.c.id).limit(CONVERT_BATCH)
        )
        for row in rows:
            yield row["id"], row[column]
        if len(rows) < CONVERT_BATCH:
            return
        last = rows[-1]["id"]


def _sql_literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(float(value))


def _needs_conversion(old: Field, new: Field) -> bool:
    if type(old) is not type(new):
        return True
    return old.storage is not new.storage or old.nullable != new.nullable or old.multi != new.multi


def _convert(old: Field, new: Field, stored: Any, record_id: str) -> Any:
    value = old.from_db(stored)
    try:
        if isinstance(value, list) and not new.multi and new.storage is not StorageKind.JSON:
            if len(value) > 1:
                raise FieldError("validation_too_many_values", "holds more than one value")
            value = value[0] if value else ""
        converted = new.convert(value)
        if not new.is_blank(converted):
            new.validate(converted)
        return converted
    except FieldError as exc:
        raise BadRequest(
            f"Cannot change field {new.name!r} from {old.TYPE} to {new.TYPE}: "
            f"record {record_id!r} has a value that cannot be converted ({exc.message.rstrip('.')})",
            {"fields": {new.name: exc}},
        ) from None
