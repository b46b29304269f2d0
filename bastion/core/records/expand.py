"""``expand``: related records embedded in API output, each checked against its view rule.

``expand=author,comments_via_post.author`` adds ``record["expand"]`` with the related
records: an object for a single relation, a list for a multiple one or a back-relation
(an object when the back-relation field is unique). As in PocketBase:

* the parameter is split at commas, spaces are removed and dots trimmed from each path
  (``.author.`` is ``author``), and a path that another path extends is dropped
  (``author,author.mentor`` is ``author.mentor``);
* each path is expanded on its own, up to six levels (the rest of a longer path is
  ignored). A path fails as a whole when a step names no relation field of its collection
  (``author.name``, ``author.nope``), no back-relation, or a collection whose view rule is
  locked (``null``) for the caller: a failing path adds nothing, not even its first
  levels. Paths that succeed are merged (``author.mentor,author.posts_via_author``);
* every expanded record passes its collection's ``viewRule`` (``@request.context`` is
  ``expand``): records that fail are left out; a record whose path level was reached gets
  ``"expand": {}`` even when nothing is left to show.

Unlike PocketBase, a relation field that is ``hidden`` leads nowhere for a caller who is
not a superuser (the record shows no value for it, and no back-relation goes through it):
PocketBase expands it, showing whom the hidden field points at.

Errors in a path are never returned.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from bastion.core.access import Access, RequestInfo
from bastion.core.errors import BadRequest, BastionError
from bastion.core.fields import RelationField
from bastion.core.ports import Database, Row
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry

MAX_DEPTH = 6
MAX_PATHS = 50
MAX_BACK = 1000
CHUNK = 500
MAX_EMBEDDED = 10_000

ToApi = Callable[[Collection, Sequence[Row], RequestInfo], list[dict[str, Any]]]
Record = dict[str, Any]

_VIA = re.compile(r"^(\w+)_via_(\w+)$", re.ASCII)
_VIA_OLD = re.compile(r"^(\w+)\((\w+)\)$", re.ASCII)  # the deprecated posts(author) form


class PathFailed(Exception):
    """An expand path that cannot be followed; it adds nothing to the records."""


def parse_expand(text: str) -> list[str]:
    """``" a.b , a,.c."`` → ``["a.b", "c"]``: spaces removed, dots trimmed, paths that
    another path extends dropped, duplicates dropped; at most MAX_PATHS."""
    paths = [p for p in (part.replace(" ", "").strip(".") for part in text.split(",")) if p]
    kept = [p for i, p in enumerate(paths)
            if not any(j != i and q.startswith(p + ".") for j, q in enumerate(paths))]
    return list(dict.fromkeys(kept))[:MAX_PATHS]


def merge_expand(record: Record, expand: dict[str, Any] | None) -> None:
    """Merge ``expand`` (the same relations, expanded by another path) into ``record``'s."""
    if not expand:
        return
    if "expand" not in record:
        record["expand"] = dict(expand)
        return
    mine = record["expand"]
    for key, new in expand.items():
        old = mine.get(key)
        if old is None or not isinstance(old, (dict, list)):
            mine[key] = new
            continue
        olds = list(old) if isinstance(old, list) else [old]
        if not isinstance(new, (dict, list)):
            continue
        news = new if isinstance(new, list) else [new]
        by_id = {o.get("id"): o for o in olds}
        for item in news:
            match = by_id.get(item.get("id"))
            if match is not None:
                merge_expand(match, item.get("expand"))
            else:
                olds.append(item)
        multiple = isinstance(old, list) or isinstance(new, list) or not olds
        mine[key] = olds if multiple else olds[0]


def _count(records: Sequence[Record], limit: int) -> int:
    """Records written out under ``records`` (each occurrence), counted up to ``limit``."""
    total = 0
    stack: list[Any] = [r.get("expand") for r in records]
    while stack:
        expand = stack.pop()
        if not expand:
            continue
        for value in expand.values():
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, dict):
                    total += 1
                    if total > limit:
                        return total
                    stack.append(child.get("expand"))
    return total


class Expander:
    def __init__(self, db: Database, registry: Registry, access: Access, to_api: ToApi):
        self.db = db
        self.registry = registry
        self.access = access
        self.to_api = to_api

    async def apply(self, info: RequestInfo, col: Collection, records: list[Record], spec: str) -> None:
        """Add ``expand`` to each record in place."""
        paths = parse_expand(spec or "")
        if not paths or not records:
            return
        info = dataclasses.replace(info, context="expand")
        for path in paths:
            try:
                await self._expand(info, col, records, path, 1)
            except PathFailed:
                continue
            if _count(records, MAX_EMBEDDED) > MAX_EMBEDDED:
                raise _too_many()

    async def _expand(self, info: RequestInfo, col: Collection, records: list[Record], path: str, level: int) -> None:
        if not path or level > MAX_DEPTH or not records:
            return
        key, _, rest = path.partition(".")
        via = _VIA_OLD.match(key) if "(" in key else _VIA.match(key)
        target: Collection | None
        if via:
            target, ids_of, multiple = await self._back_relation(
                info, col, records, via.group(1), via.group(2))
        else:
            f = col.field(key)
            if not isinstance(f, RelationField):
                raise PathFailed
            target = self.registry.find(f.collectionId)
            multiple = f.multi
            relation = f

            def ids_of(record: Record) -> list[str]:
                return list(relation.values_of(record.get(key)))

        if target is None:
            raise PathFailed
        wanted = list(dict.fromkeys(i for r in records for i in ids_of(r)))
        rels = await self._fetch(info, target, wanted)
        if rest:
            await self._expand(info, target, rels, rest, level + 1)
        found = {r["id"]: r for r in rels}
        for record in records:
            expand = record.setdefault("expand", {})
            valid = [found[i] for i in ids_of(record) if i in found]
            if not valid:
                continue
            previous = expand.get(key)
            for old in previous if isinstance(previous, list) else [previous] if previous else []:
                for rel in valid:
                    if isinstance(old, dict) and rel["id"] == old.get("id"):
                        merge_expand(rel, old.get("expand"))
            expand[key] = valid if multiple else valid[0]

    async def _back_relation(
        self, info: RequestInfo, col: Collection, records: list[Record], source_name: str, field_name: str,
    ) -> tuple[Collection, Callable[[Record], list[str]], bool]:
        """The records of ``source_name`` whose ``field_name`` points at each record (at
        most MAX_BACK each, the view rule applied later), as PocketBase's ``x_via_y``."""
        source = self.registry.find(source_name)
        link = source.field(field_name) if source is not None else None
        if source is None or not isinstance(link, RelationField) or link.collectionId != col.id:
            raise PathFailed
        multiple = not _unique_single(source, field_name)
        by_parent: dict[str, list[str]] = {}
        if link.hidden and not info.is_superuser:
            # Whom a hidden field points at is not the caller's to learn (as in filters, and
            # as a hidden relation of the record itself): no record is found through it.
            return source, lambda record: [], multiple
        table = self.registry.table(source)
        column = table.c[field_name]
        async with self.db.read() as conn:
            if link.multi:
                for record in records:
                    stmt = sa.select(table.c.id).where(self.db.sql.json_array_contains(column, record["id"]))
                    rows = await conn.fetch_all(stmt.limit(MAX_BACK))
                    by_parent[record["id"]] = [row["id"] for row in rows]
            else:
                parent_ids = [r["id"] for r in records]
                for start in range(0, len(parent_ids), CHUNK):
                    stmt = sa.select(table.c.id, column).where(column.in_(parent_ids[start:start + CHUNK]))
                    for row in await conn.fetch_all(stmt):
                        bucket = by_parent.setdefault(row[field_name], [])
                        if len(bucket) < MAX_BACK:
                            bucket.append(row["id"])
        return source, lambda record: by_parent.get(record["id"], []), multiple

    async def _fetch(self, info: RequestInfo, target: Collection, ids: list[str]) -> list[Record]:
        """The records of ``target`` with ``ids`` the caller may view; PathFailed when its
        view rule is locked for the caller (whether or not there are ids)."""
        table = self.registry.table(target)
        try:
            cond = self.access.condition(info, target, "viewRule", table)
        except BastionError:
            raise PathFailed from None
        out: list[Record] = []
        async with self.db.read() as conn:
            for start in range(0, len(ids), CHUNK):
                stmt = sa.select(table).where(table.c.id.in_(ids[start:start + CHUNK]))
                if cond is not None:
                    stmt = stmt.where(cond)
                rows = await conn.fetch_all(stmt.limit(MAX_BACK * 10))
                out.extend(self.to_api(target, rows, info))
        return out


def _too_many() -> BadRequest:
    return BadRequest(
        f"The expand would embed more than {MAX_EMBEDDED} records in one response; "
        "ask for fewer records (perPage) or a shorter expand path.")


def _unique_single(col: Collection, field_name: str) -> bool:
    return any(
        spec.unique and len(spec.columns) == 1 and spec.columns[0].name == field_name and spec.where is None
        for spec in col.index_specs()
    )
