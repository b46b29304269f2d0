"""Records as they are read: the API's view of a stored row, lists (pages and cursors)
and single records, with the rules enforced through ``Access``."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bastion.core.access import Access, RequestInfo
from bastion.core.errors import BadRequest, NotFound
from bastion.core.ports import Connection, Database, Row, reading
from bastion.core.records import cursor
from bastion.core.records.filters import Filters
from bastion.core.records.query import ListParams, cursor_envelope, page_envelope
from bastion.core.schema.cache import ListKey, ListStatements
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.core.schema.system_collections import SUPERUSERS

NOT_FOUND = "The requested resource wasn't found."
OFFSET = "bastion_offset"  # the bound parameter of a kept list statement's OFFSET


def _converted(col: Collection, shown: tuple[tuple[str, Any], ...], row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"collectionId": col.id, "collectionName": col.name}
    for name, from_db in shown:
        try:
            value = row[name]
        except KeyError:  # a view without that column
            value = None
        out[name] = from_db(value)
    return out


def _hide_auth_fields(col: Collection, row: Row, out: dict[str, Any], info: RequestInfo, include_email: bool) -> None:
    out.pop("tokenKey", None)
    owner = info.auth is not None and info.auth.collection.id == col.id and info.auth.id == row["id"]
    if not (include_email or info.is_superuser or owner or bool(row.get("emailVisibility"))):
        out.pop("email", None)


# Reads who the caller of a request is (their record) on the connection given.
Identify = Callable[[Connection], Awaitable[RequestInfo]]


@dataclass
class RecordReads:
    db: Database
    registry: Registry
    access: Access
    filters: Filters

    # -- output --------------------------------------------------------------------
    def to_api(self, col: Collection, row: Row, info: RequestInfo, include_email: bool = False) -> dict[str, Any]:
        """A stored row as the API shows it to the caller described by ``info``."""
        out = _converted(col, self._shown(col, info.is_superuser), row)
        if col.is_auth:
            _hide_auth_fields(col, row, out, info, include_email)
        return out

    def to_api_rows(
        self, col: Collection, rows: Sequence[Row], info: RequestInfo, include_email: bool = False,
    ) -> list[dict[str, Any]]:
        """``to_api`` for many rows, the fields shown worked out once for all."""
        shown = self._shown(col, info.is_superuser)
        items = [_converted(col, shown, row) for row in rows]
        if col.is_auth:
            for row, out in zip(rows, items, strict=True):
                _hide_auth_fields(col, row, out, info, include_email)
        return items

    def _shown(self, col: Collection, superuser: bool) -> tuple[tuple[str, Any], ...]:
        """The fields of ``col`` a caller sees, with their output converters; worked out
        once per schema rather than once per record."""
        shown = self.registry.cache.shown(col, superuser)
        if shown is None:
            shown = tuple((f.name, f.from_db) for f in col.fields
                          if not f.SECRET and (superuser or not f.hidden))
            self.registry.cache.keep_shown(col, superuser, shown)
        return shown

    # -- reads ---------------------------------------------------------------------
    async def list(
        self, info: RequestInfo, col: Collection, params: ListParams, conn: Connection | None = None,
    ) -> dict[str, Any]:
        """A page of ``col`` for ``info``'s caller; on ``conn`` when given."""
        table = self.registry.table(col)
        if params.cursor is not None:
            access = self.access.condition(info, col, "listRule", table)
            where = self._where(info, col, table, access, params)
            return await self._keyset_page(info, col, table, where, params, conn)
        page, count = self._list_statements(info, col, table, params)
        async with reading(self.db, conn) as conn:
            rows = await conn.fetch_all(page, {OFFSET: (params.page - 1) * params.per_page})
            total = -1
            if count is not None:
                total = await conn.scalar(count)
        return page_envelope(self.to_api_rows(col, rows, info), params, total)

    def _where(
        self, info: RequestInfo, col: Collection, table: sa.Table, access: sa.ColumnElement[bool] | None,
        params: ListParams,
    ) -> Any:
        conds = [] if access is None else [access]
        if params.filter_text:
            conds.append(self.filters.client_filter(params.filter_text, col, table, info))
        return sa.and_(sa.true(), *conds)

    def _list_statements(
        self, info: RequestInfo, col: Collection, table: sa.Table, params: ListParams,
    ) -> tuple[sa.Select[Any], sa.Select[Any] | None]:
        """The page query (its offset a parameter) and the count query, or None with
        ``skipTotal``. Kept for the schema when nothing in them depends on the request
        but the superuser flag and the list rule's kept condition: a kept statement
        skips SQLAlchemy's statement building and cache-key work, about a tenth of a
        list request's CPU."""
        access = self.access.condition(info, col, "listRule", table)  # raises for a locked rule
        key = ListKey(col.id, table, params.filter_text, params.sort, info.is_superuser,
                      params.per_page, params.skip_total, 0 if access is None else id(access))
        kept = self.registry.cache.statements(key)
        if kept is not None and kept.access is access:
            return kept.page, kept.count
        where = self._where(info, col, table, access, params)
        order, guard = self.filters.ordering(params.sort, col, table, info)
        where = sa.and_(where, guard)
        page = (sa.select(table).where(where).order_by(*order)
                .limit(params.per_page).offset(sa.bindparam(OFFSET)))
        count = None if params.skip_total else sa.select(sa.func.count()).select_from(table).where(where)
        if ((access is None or self.filters.kept(access))
                and self.filters.reused(col, table, params.filter_text, params.sort, info)):
            self.registry.cache.keep_statements(key, ListStatements(page, count, access))
        return page, count

    async def _keyset_page(
        self, info: RequestInfo, col: Collection, table: sa.Table, where: sa.ColumnElement[bool],
        params: ListParams, conn: Connection | None,
    ) -> dict[str, Any]:
        keyset = cursor.keyset_for(params.sort, col, info)
        secret = self._cursor_secret()
        last = cursor.decode(params.cursor or "", keyset, secret, col.id)
        if last is not None:
            where = sa.and_(where, cursor.after(keyset, table, last))
        stmt = sa.select(table).where(where).order_by(*cursor.order(keyset, table)).limit(params.per_page + 1)
        async with reading(self.db, conn) as conn:
            rows = list(await conn.fetch_all(stmt))
        more = len(rows) > params.per_page
        rows = rows[:params.per_page]
        token = cursor.encode(keyset, rows[-1], secret, col.id) if more and rows else None
        return cursor_envelope(self.to_api_rows(col, rows, info), params, token)

    def _cursor_secret(self) -> bytes:
        """The key cursors are signed with: derived from the superusers' token secret,
        which every node shares and no API shows."""
        su = self.registry.find(SUPERUSERS)
        secret = str(((su.auth if su is not None else {}).get("authToken") or {}).get("secret") or "")
        if not secret:
            raise BadRequest("Cursor pagination is not available: the server has no signing secret.")
        return hashlib.sha256(b"bastion-cursor\x00" + secret.encode()).digest()

    async def matches_rule(self, info: RequestInfo, col: Collection, rule_name: str, record_id: str) -> bool:
        """Whether the stored record satisfies one of its collection's rules for ``info``."""
        table = self.registry.table(col)
        cond = self.access.condition(info, col, rule_name, table)
        if cond is None:
            return True
        async with self.db.read() as conn:
            return await self._fetch(conn, table, record_id, cond) is not None

    async def list_for(
        self, identify: Identify, col: Collection, params: ListParams,
    ) -> tuple[RequestInfo, dict[str, Any]]:
        """Who the caller is (``identify`` reads their record) and a page of ``col`` for
        them, read on one connection: one checkout and, on SQLite, one snapshot for both."""
        async with self.db.read() as conn:
            info = await identify(conn)
            return info, await self.list(info, col, params, conn)

    async def view_for(
        self, identify: Identify, col: Collection, record_id: str,
    ) -> tuple[RequestInfo, dict[str, Any]]:
        """Who the caller is and one record of ``col`` for them, on one connection."""
        async with self.db.read() as conn:
            info = await identify(conn)
            return info, await self.view(info, col, record_id, conn)

    async def view(
        self, info: RequestInfo, col: Collection, record_id: str, conn: Connection | None = None,
    ) -> dict[str, Any]:
        table = self.registry.table(col)
        cond = self.access.condition(info, col, "viewRule", table)
        async with reading(self.db, conn) as conn:
            row = await self._fetch(conn, table, record_id, cond)
        if row is None:
            raise NotFound(NOT_FOUND)
        return self.to_api(col, row, info)

    async def _fetch(
        self, conn: Connection, table: sa.Table, record_id: str, cond: sa.ColumnElement[bool] | None,
        lock: bool = False,
    ) -> Row | None:
        """One row by id (and condition). ``lock`` holds the row until the transaction ends
        (``FOR UPDATE``), so read-modify-write updates such as ``views+`` never lose a
        concurrent change; engines without row locks need none, their writer being
        exclusive already."""
        if not isinstance(record_id, str) or not record_id or len(record_id) > 255 or "\x00" in record_id:
            return None
        if lock and self.db.sql.row_locks:
            stmt = sa.select(table).where(table.c.id == record_id)
            if cond is not None:
                stmt = stmt.where(cond)
            return await conn.fetch_one(stmt.with_for_update())
        if cond is None:
            col = self.registry.find(table.name)
            if col is not None and self.registry.table(col) is table:
                return await conn.fetch_one(self.registry.select_by_id(col), {"rid": record_id})
        stmt = sa.select(table).where(table.c.id == record_id)
        if cond is not None:
            stmt = stmt.where(cond)
        return await conn.fetch_one(stmt)
