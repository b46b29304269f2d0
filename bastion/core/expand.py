"""``expand``: related records embedded in API output, each checked against its view rule.

``expand=author,comments_via_post.author`` adds ``record["expand"]`` with the related
records: an object for a single relation, a list for a multiple one or a back-relation
(an object when the back-relation field is unique). Paths go up to six levels deep.
Every expanded record passes its own collection's ``viewRule`` (``@request.context`` is
``expand``): records that fail are left out, and a collection whose rule is locked
(``null``) ends that path. Errors in a path are never returned, as in PocketBase.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from bastion.core.access import Access, RequestInfo
from bastion.core.collections import Collection
from bastion.core.errors import BadRequest, Forbidden
from bastion.core.fields import Field
from bastion.core.ports import Database, Row
from bastion.core.registry import Registry

MAX_DEPTH = 6
MAX_PATHS = 50
MAX_BACK = 1000
CHUNK = 500
MAX_EMBEDDED = 10_000

Tree = dict[str, "Tree"]
ToApi = Callable[[Collection, Sequence[Row], RequestInfo], list[dict[str, Any]]]


def parse_expand(text: str) -> Tree:
    """``a.b,c`` → ``{"a": {"b": {}}, "c": {}}``; silently bounded in depth and count."""
    tree: Tree = {}
    for path in [p.strip() for p in text.split(",") if p.strip()][:MAX_PATHS]:
        node = tree
        for part in path.split(".")[:MAX_DEPTH]:
            node = node.setdefault(part, {})
    return tree


class Expander:
    def __init__(self, db: Database, registry: Registry, access: Access, to_api: ToApi):
        self.db = db
        self.registry = registry
        self.access = access
        self.to_api = to_api

    async def apply(self, info: RequestInfo, col: Collection, records: list[dict[str, Any]], spec: str) -> None:
        """Add ``expand`` to each record in place."""
        tree = parse_expand(spec or "")
        if not tree or not records:
            return
        info = dataclasses.replace(info, context="expand")
        weights: dict[int, int] = {}
        await self._expand(info, col, records, tree, weights)
        if sum(weights.get(id(r), 1) - 1 for r in records) > MAX_EMBEDDED:
            raise _too_many()

    async def _expand(
        self, info: RequestInfo, col: Collection, records: list[dict[str, Any]], tree: Tree, weights: Weights,
    ) -> None:
        for key, subtree in tree.items():
            f = col.field(key)
            if f is not None and f.TYPE == "relation" and key in records[0]:
                await self._relation(info, f, records, key, subtree, weights)
            elif "_via_" in key and f is None:
                await self._back_relation(info, col, records, key, subtree, weights)

    async def _visible(self, info: RequestInfo, target: Collection, where: sa.ColumnElement[bool]) -> list[dict[str, Any]] | None:
        """Records of ``target`` matching ``where`` that the caller may view; None if locked."""
        table = self.registry.table(target)
        try:
            cond = self.access.condition(info, target, "viewRule", table)
        except Forbidden:
            return None
        stmt = sa.select(table).where(where)
        if cond is not None:
            stmt = stmt.where(cond)
        async with self.db.read() as conn:
            rows = await conn.fetch_all(stmt.limit(MAX_BACK * 10))
        return self.to_api(target, rows, info)

    async def _relation(
        self, info: RequestInfo, f: Field, records: list[dict[str, Any]], key: str, subtree: Tree,
        weights: Weights,
    ) -> None:
        target = self.registry.find(f.collectionId)  # type: ignore[attr-defined]
        if target is None:
            return
        ids = list(dict.fromkeys(i for r in records for i in f.values_of(r.get(key))))  # type: ignore[attr-defined]
        found: dict[str, dict[str, Any]] = {}
        table = self.registry.table(target)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            rows = await self._visible(info, target, table.c.id.in_(chunk))
            if rows is None:
                return
            found.update((r["id"], r) for r in rows)
        if subtree and found:
            await self._expand(info, target, list(found.values()), subtree, weights)
        for record in records:
            expand = record.setdefault("expand", {})
            values = [found[i] for i in f.values_of(record.get(key)) if i in found]  # type: ignore[attr-defined]
            if f.multi:
                if values:
                    expand[key] = values
                    _embed(weights, record, values)
            elif values:
                expand[key] = values[0]
                _embed(weights, record, values[:1])

    async def _back_relation(
        self, info: RequestInfo, col: Collection, records: list[dict[str, Any]], key: str, subtree: Tree,
        weights: Weights,
    ) -> None:
        source_name, _, field_name = key.partition("_via_")
        source = self.registry.find(source_name)
        link = source.field(field_name) if source is not None else None
        if source is None or link is None or link.TYPE != "relation" or link.collectionId != col.id:  # type: ignore[attr-defined]
            return
        if link.hidden and not info.is_superuser:
            return  # whom a hidden field points at is not the caller's to learn, as in filters
        table = self.registry.table(source)
        column = table.c[field_name]
        by_parent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        parent_ids = [r["id"] for r in records]
        if link.multi:
            for pid in parent_ids:
                rows = await self._visible(info, source, self.db.sql.json_array_contains(column, pid))
                if rows is None:
                    return
                by_parent[pid] = rows[:MAX_BACK]
        else:
            for start in range(0, len(parent_ids), CHUNK):
                rows = await self._visible(info, source, column.in_(parent_ids[start:start + CHUNK]))
                if rows is None:
                    return
                for row in rows:
                    bucket = by_parent[row[field_name]]
                    if len(bucket) < MAX_BACK:
                        bucket.append(row)
        children = [r for rows in by_parent.values() for r in rows]
        if subtree and children:
            await self._expand(info, source, children, subtree, weights)
        single = _unique_single(source, field_name)
        for record in records:
            expand = record.setdefault("expand", {})
            rows = by_parent.get(record["id"], [])
            if rows:
                expand[key] = rows[0] if single else rows
                _embed(weights, record, rows[:1] if single else rows)


Weights = dict[int, int]  # id(record) -> records written out for it, itself included


def _too_many() -> BadRequest:
    return BadRequest(
        f"The expand would embed more than {MAX_EMBEDDED} records in one response; "
        "ask for fewer records (perPage) or a shorter expand path.")


def _embed(weights: Weights, record: dict[str, Any], children: list[dict[str, Any]]) -> None:
    """Count ``children`` (with everything embedded in them) as written out under ``record``.
    Children are complete before their parents are counted, since paths expand deepest
    first."""
    total = weights.get(id(record), 1) + sum(weights.get(id(c), 1) for c in children)
    if total > MAX_EMBEDDED:
        raise _too_many()
    weights[id(record)] = total


def _unique_single(col: Collection, field_name: str) -> bool:
    return any(
        spec.unique and len(spec.columns) == 1 and spec.columns[0].name == field_name and spec.where is None
        for spec in col.index_specs()
    )
