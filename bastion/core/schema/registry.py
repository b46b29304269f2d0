"""The schema registry: collections by name and id, with their SQLAlchemy tables."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import NotFound
from bastion.core.fields import RelationField, StorageKind
from bastion.core.ports import DatabaseEngine
from bastion.core.schema.cache import SchemaCache
from bastion.core.schema.collections import Collection
from bastion.core.schema.tables import build_table

MAX_SAFE_INT = 2**53


class ViewJson(sa.types.TypeDecorator[Any]):
    """A JSON column of a view. A computed column holds whatever its expression gives
    (plain text, a number, a NUMERIC, a date), not JSON: text that does not parse as JSON
    is kept as a string and values JSON has no type for become numbers or text, as
    PocketBase shows them; reading a view never fails on a value."""

    impl = sa.types.JSON
    cache_ok = True

    def __init__(self, stored: sa.types.TypeEngine[Any]):
        super().__init__()
        self.stored = stored

    def load_dialect_impl(self, dialect: sa.engine.Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(self.stored)

    def result_processor(self, dialect: sa.engine.Dialect, coltype: object) -> Any:
        decode = self.load_dialect_impl(dialect).result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            if decode is not None and isinstance(value, (str, bytes)):
                try:
                    return json_value(decode(value))
                except ValueError:  # not JSON: the text itself
                    pass
            return json_value(value)

        return process


def json_value(value: Any) -> Any:
    """``value`` as something JSON can hold."""
    if value is None or isinstance(value, (str, bool, int, float, list, dict)):
        return value
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value() and abs(value) < MAX_SAFE_INT:
            return int(value)
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _table(col: Collection, sql: DatabaseEngine) -> sa.Table:
    if not col.is_view:
        return build_table(col, sql)
    columns = [
        sa.Column(f.name, ViewJson(f.column_type(sql)) if f.storage is StorageKind.JSON else f.column_type(sql))
        for f in col.fields
    ]
    return sa.Table(col.name, sa.MetaData(), *columns, **sql.table_options())


class Registry:
    """In-memory view of ``_collections``; replaced wholesale on every schema change."""

    def __init__(self, sql: DatabaseEngine):
        self.sql = sql
        self._sql = sql
        self._by_id: dict[str, Collection] = {}
        self._by_name: dict[str, Collection] = {}
        self._tables: dict[str, sa.Table] = {}
        self._selects: dict[str, sa.Select[Any]] = {}
        self._inserts: dict[str, sa.Insert] = {}
        self.cache = SchemaCache()

    def replace_all(self, collections: list[Collection]) -> None:
        self._by_id = {c.id: c for c in collections}
        self._by_name = {c.name.lower(): c for c in collections}
        self._tables = {c.id: _table(c, self._sql) for c in collections}
        self._selects = {}
        self._inserts = {}
        self.cache.clear()

    def put(self, col: Collection) -> None:
        self.remove(col.id)
        self._by_id[col.id] = col
        self._by_name[col.name.lower()] = col
        self._tables[col.id] = _table(col, self._sql)
        self.cache.clear()

    def remove(self, cid: str) -> None:
        old = self._by_id.pop(cid, None)
        if old is not None:
            self._by_name.pop(old.name.lower(), None)
            self._tables.pop(cid, None)
            self._selects.pop(cid, None)
            self._inserts.pop(cid, None)
        self.cache.clear()

    def find(self, id_or_name: str) -> Collection | None:
        return self._by_id.get(id_or_name) or self._by_name.get(id_or_name.lower())

    def get(self, id_or_name: str, message: str = "Missing collection context.") -> Collection:
        col = self.find(id_or_name)
        if col is None:
            raise NotFound(message)
        return col

    def table(self, col: Collection) -> sa.Table:
        return self._tables[col.id]

    def select_by_id(self, col: Collection) -> sa.Select[Any]:
        """``SELECT * ... WHERE id = :rid``, built once per schema so SQLAlchemy's compiled
        cache is hit without rebuilding the statement on every request."""
        stmt = self._selects.get(col.id)
        if stmt is None:
            table = self._tables[col.id]
            stmt = self._selects[col.id] = sa.select(table).where(table.c.id == sa.bindparam("rid"))
        return stmt

    def insert_returning(self, col: Collection) -> sa.Insert:
        """``INSERT ... RETURNING *`` whose columns come from the parameters it is executed
        with, built once per schema (building ``.values({...})`` per request cost ~9 % of a
        create's CPU)."""
        stmt = self._inserts.get(col.id)
        if stmt is None:
            table = self._tables[col.id]
            stmt = self._inserts[col.id] = sa.insert(table).returning(*table.c)
        return stmt

    def all(self) -> list[Collection]:
        return list(self._by_id.values())

    def referencing(self, target: Collection) -> list[tuple[Collection, RelationField]]:
        """(collection, relation field) pairs whose relation fields point at ``target``."""
        out = []
        for col in self._by_id.values():
            for f in col.fields:
                if isinstance(f, RelationField) and f.collectionId == target.id:
                    out.append((col, f))
        return out
