"""Creating, changing and deleting collections: schema, storage and migration file at once."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa

from bastion.core.errors import BadRequest, Conflict, FieldError, ValidationFailed
from bastion.core.fields import Field, RelationField, field_from_dict
from bastion.core.ports import Connection, Database
from bastion.core.records.filters import Filters
from bastion.core.schema import view_query
from bastion.core.schema.collections import (
    Collection,
    auth_problems,
    collection_from_stored,
    parse_collection,
)
from bastion.core.schema.indexes import IndexSpec, parse_index
from bastion.core.schema.migrations import MigrationFiles
from bastion.core.schema.registry import Registry
from bastion.core.schema.sync import SchemaSync
from bastion.core.schema.tables import system_tables
from bastion.core.settings.params import get_param, put_param

VIEW_QUERY_MAX = 5000
# PostgreSQL keeps 63 bytes of a name, MariaDB 64: an index name must fit both.
MAX_INDEX_NAME = 63
NOT_FOUND = "The requested resource wasn't found."  # the collections API's 404, as PocketBase's


class CollectionService:
    """The only writer of ``_collections``; keeps the registry and the database in step."""

    def __init__(self, db: Database, registry: Registry, files: MigrationFiles | None, filters: Filters):
        self.db = db
        self.filters = filters
        self.registry = registry
        self.files = files
        self.sync = SchemaSync(db.sql)
        self.tables = system_tables(db.sql)
        self.after_change: list[Callable[[], Any]] = []
        # Called with a collection whose records all went (it was deleted or truncated)
        # once that committed: their files go then.
        self.records_gone: list[Callable[[Collection], Awaitable[None]]] = []
        self.version = ""
        # Held across a whole change (read, check, commit, put in place) and across a
        # reload, so that in this process the registry only ever moves forward: a reload
        # cannot read the rows from before a commit and install them after it.
        self._schema_lock = asyncio.Lock()

    async def load(self) -> None:
        async with self._schema_lock:
            await self._load()

    async def _load(self) -> None:
        # The version is read before the rows. A change committed between the two reads
        # leaves rows newer than the version, and the next check loads them again; the
        # other order could keep rows older than the version, which no check would notice.
        version = await self.stored_version()
        t = self.tables["_collections"]
        async with self.db.read() as conn:
            rows = await conn.fetch_all(sa.select(t.c.definition).order_by(t.c.created, t.c.id))
        self.registry.replace_all([collection_from_stored(orjson.loads(r["definition"])) for r in rows])
        self.version = version

    # -- public operations ---------------------------------------------------------
    async def create(self, data: Any, migrate: bool = True, trusted: bool = False) -> Collection:
        return await self._on_current_schema(lambda: self._create(data, migrate, trusted))

    async def update(self, id_or_name: str, data: Any, migrate: bool = True) -> Collection:
        return await self._on_current_schema(lambda: self._update(id_or_name, data, migrate))

    async def delete(self, id_or_name: str, migrate: bool = True) -> None:
        gone = self.registry.find(id_or_name)
        await self._on_current_schema(lambda: self._delete(id_or_name, migrate))
        if gone is not None:
            for hook in self.records_gone:
                await hook(gone)

    async def _create(self, data: Any, migrate: bool, trusted: bool) -> Collection:
        col = parse_collection(data, None, creating=True, trusted=trusted)
        if isinstance(data, dict) and data.get("id") in (None, ""):
            self._free_generated_id(col)
        await self._check(col, None, "Failed to create collection.", strict=not trusted)
        await self._commit(None, col, f'create collection "{col.name}"', migrate)
        return col

    def _free_generated_id(self, col: Collection) -> None:
        """A generated id already taken (by a collection renamed since, say) gets a number
        after it, in the index names too, as PocketBase does."""
        taken = {c.id for c in self.registry.all()}
        if col.id not in taken:
            return
        base = col.id
        free = next((f"{base}{n}" for n in range(2, 1000) if f"{base}{n}" not in taken), base)
        renamed = []
        for text in col.indexes:
            spec = parse_index(text)
            renamed.append(replace(spec, name=spec.name.replace(base, free)).to_sql() if base in spec.name else text)
        col.id, col.indexes = free, renamed

    async def _update(self, id_or_name: str, data: Any, migrate: bool) -> Collection:
        old = self.registry.get(id_or_name, NOT_FOUND)
        col = parse_collection(data, old, creating=False)
        await self._check(col, old, "Failed to update collection.")
        await self._commit(old, col, f'update collection "{col.name}"', migrate)
        return col

    async def _delete(self, id_or_name: str, migrate: bool) -> None:
        col = self.registry.get(id_or_name, NOT_FOUND)
        if col.system:
            raise BadRequest("System collections cannot be deleted.")
        refs = sorted({c.name for c, _ in self.registry.referencing(col) if c.id != col.id})
        refs += [c.name for c in self.registry.all() if c.is_view and _mentions(c.view_query, col.name)]
        if refs:
            raise BadRequest(
                f"Failed to delete collection probably due to existing reference in {', '.join(refs)}."
            )
        await self._commit(col, None, f'delete collection "{col.name}"', migrate)

    async def truncate(self, id_or_name: str) -> None:
        col = self.registry.get(id_or_name, NOT_FOUND)
        if col.is_view:
            raise BadRequest("View collections cannot be truncated.")
        if [c for c, _ in self.registry.referencing(col) if c.id != col.id]:
            raise BadRequest("The collection is referenced by relation fields; delete those records first.")
        async with self.db.transaction() as conn:
            await conn.execute(sa.delete(self.registry.table(col)))
        for hook in self.records_gone:
            await hook(col)

    async def import_collections(self, items: Any, delete_missing: bool) -> None:
        if not isinstance(items, list) or not items:
            raise ValidationFailed("Failed to import collections.", {
                "collections": FieldError("validation_required", "Cannot be blank")})
        errors: dict[str, Any] = {}
        for i, item in enumerate(items):
            try:
                ref = item.get("id") or item.get("name") if isinstance(item, dict) else None
                existing = self.registry.find(ref) if isinstance(ref, str) else None
                if existing is None:
                    await self.create(item)
                else:
                    await self.update(existing.id, item)
            except (ValidationFailed, BadRequest) as exc:
                errors[str(i)] = FieldError("validation_collection_import", exc.message)
        if delete_missing and not errors:
            keep = {(i.get("id"), i.get("name")) for i in items if isinstance(i, dict)}
            keep_ids = {k[0] for k in keep} | {k[1] for k in keep}
            for col in self.registry.all():
                if not col.system and col.id not in keep_ids and col.name not in keep_ids:
                    await self.delete(col.id)
        if errors:
            raise ValidationFailed("Failed to import collections.", {"collections": errors})

    async def apply_snapshot(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Make the schema match ``after`` (used by migration files); no file is written."""
        await self._on_current_schema(lambda: self._apply_snapshot(before, after))

    async def _apply_snapshot(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        if after is None:
            if before is not None and (col := self.registry.find(before["id"])) is not None:
                await self._commit(col, None, "", migrate=False)
            return
        old = self.registry.find(after["id"]) or self.registry.find(after["name"])
        new = parse_collection(after, old, creating=old is None, trusted=True)
        new.id = after["id"]
        await self._check(new, old, "Failed to apply migration.", strict=False)
        await self._commit(old, new, "", migrate=False)

    async def matching_ids(self, text: str, allowed: tuple[str, ...]) -> set[str]:
        """Ids of collections matching a filter over ``allowed`` columns of ``_collections``."""
        t = self.tables["_collections"]
        cond = self.filters.plain(t, text, allowed)
        async with self.db.read() as conn:
            return {r["id"] for r in await conn.fetch_all(sa.select(t.c.id).where(cond))}

    # -- schema version (other nodes reload when it moves) ------------------------------
    async def _on_current_schema(self, change: Callable[[], Awaitable[T]]) -> T:
        """Make a schema change on top of the stored schema. When another node (or worker)
        changed it since this process loaded it, ``_commit`` notices under a lock and rolls
        back; the schema is reloaded and the change, which reads the registry afresh, is
        made once more. Two moves in a row give up with a 409.

        Changes made by this process run one at a time, each on the registry the previous
        one left."""
        async with self._schema_lock:
            try:
                return await change()
            except _SchemaMoved:
                await self._reload()
            try:
                return await change()
            except _SchemaMoved:
                await self._reload()
                raise Conflict("The schema was changed elsewhere at the same moment; please try again.") from None

    async def reload(self) -> None:
        async with self._schema_lock:
            await self._reload()

    async def _reload(self) -> None:
        await self._load()
        await self.db.schema_changed()

    async def _bump_version(self, conn: Connection, stored: str) -> str:
        """Store a version newer than ``stored`` (read under the row lock), so versions
        follow the order of commits even across nodes whose clocks differ. The caller
        takes it as its own only once the transaction has committed."""
        stamp = str(max(time.time_ns(), int(stored) + 1 if stored.isdigit() else 0))
        await put_param(conn, self.tables["_params"], SCHEMA_VERSION_KEY, stamp)
        notice = self.db.change_notice()
        if notice is not None:  # other nodes hear of it when this commits
            await conn.execute(notice)
        return stamp

    async def stored_version(self) -> str:
        async with self.db.read() as conn:
            return await get_param(conn, self.tables["_params"], SCHEMA_VERSION_KEY) or ""

    async def reload_if_changed(self) -> bool:
        """Reload the registry when another node changed the schema; True if it did.

        The first look takes no lock, so polling never waits for a change in progress
        here; a difference is looked at again under the lock, after which a change this
        process was committing has put its own version in place."""
        if await self.stored_version() == self.version:
            return False
        async with self._schema_lock:
            if await self.stored_version() == self.version:
                return False
            await self._reload()
        return True

    # -- internals -----------------------------------------------------------------
    async def _check(self, col: Collection, old: Collection | None, message: str, strict: bool = True) -> None:
        """Checks that need the other collections or the database. ``strict`` is False for
        definitions Bastion wrote itself (migrations, system collections): the checks
        across auth options, which older versions did not make, are left out."""
        errors: dict[str, Any] = {}
        name_problem = await self._name_problem(col, old)
        if name_problem is not None:
            errors["name"] = name_problem
        if old is None and self.registry.find(col.id) is not None:
            errors["id"] = FieldError("validation_invalid_or_existing_id", "The model id is invalid or already exists.")
        field_errors: dict[str, Any] = {}
        for i, f in enumerate(col.fields):
            if not col.is_view and f.name.lower() in self.db.sql.reserved_columns:
                field_errors[str(i)] = {"name": FieldError(
                    "validation_field_name_reserved",
                    f"{f.name} is a name {self.db.sql.name} keeps for itself; choose another field name")}
            if isinstance(f, RelationField):
                target = self.registry.find(f.collectionId) if f.collectionId != col.id else col
                if target is None and f.collectionId in (col.name,):
                    target = col
                if target is None:
                    field_errors[str(i)] = {"collectionId": FieldError(
                        "validation_field_relation_missing_collection", "The relation collection doesn't exist")}
                elif target.is_view and not col.is_view:
                    field_errors[str(i)] = {"collectionId": FieldError(
                        "validation_relation_field_non_view_base_collection",
                        "Non view collections are not allowed to have a view relation")}
                else:
                    f.collectionId = target.id
        if field_errors:
            errors["fields"] = field_errors
        if col.is_view and "viewQuery" not in errors:
            await self._prepare_view(col, errors)
        if not errors and not col.is_view:
            index_problem = await self._index_name_problem(col, old)
            if index_problem:
                errors["indexes"] = index_problem
        if not errors:
            for rule, text in col.rules.items():
                problem = self.filters.check_rule(text, col) if text else None
                if problem:
                    errors[rule] = FieldError("validation_invalid_rule", f"Invalid rule: {problem}")
        if not errors and col.is_auth and strict:
            errors.update(auth_problems(col, self.filters.check_rule))
        if errors:
            raise ValidationFailed(message, errors)

    async def _name_problem(self, col: Collection, old: Collection | None) -> FieldError | None:
        """PocketBase's checks of a name against what exists: another collection's name
        (in any case) or id, or a table of the database that is no collection's."""
        if not col.name:
            return None
        lowered = col.name.lower()
        others = [c for c in self.registry.all() if old is None or c.id != old.id]
        if any(c.name.lower() == lowered for c in others):
            return FieldError("validation_collection_name_exists", "Collection name must be unique (case insensitive).")
        if any(c.id == col.name for c in others):
            return FieldError("validation_collection_name_id_duplicate",
                              "The name must not match an existing collection id.")
        if old is not None and old.name.lower() == lowered:
            return None
        collections = {c.name.lower() for c in self.registry.all()}
        tables = {t.lower() for t in await self.db.table_names()} | set(self.tables)
        if lowered in tables - collections:
            return FieldError("validation_collection_name_invalid",
                              "The name shouldn't match with an existing internal table.")
        return None

    async def _index_name_problem(self, col: Collection, old: Collection | None) -> dict[str, Any]:
        """The first index whose name another collection's index, or a table, already has,
        or that repeats an earlier index's definition. Index names share one namespace per
        database in SQLite and PostgreSQL; they are checked the same way on every engine,
        as a schema moves between them."""
        others = [c for c in self.registry.all() if c.id != col.id and (old is None or c.id != old.id)]
        used = {parse_index(text).name.lower(): c.name for c in others for text in c.indexes}
        relations = {c.name.lower() for c in self.registry.all()} | {col.name.lower()} | set(self.tables)
        dropped = {parse_index(text).name.lower() for text in old.indexes} if old is not None else set()
        definitions: set[IndexSpec] = set()
        for i, text in enumerate(col.indexes):
            spec = parse_index(text)
            name, lowered = spec.name, spec.name.lower()
            if lowered in used:
                return {str(i): FieldError(
                    "validation_existing_index_name", f"The index name is already used in {used[lowered]} collection.",
                    {"usedTableName": used[lowered]})}
            definition = IndexSpec("", "", spec.unique, spec.columns, spec.where)
            if definition in definitions:
                return {str(i): FieldError(
                    "validation_duplicated_index_definition", "The index definition already exists.")}
            definitions.add(definition)
            if lowered in relations:
                return {str(i): FieldError(
                    "validation_invalid_index_expression",
                    f"Failed to create index {name} - there is already a table named {name}.")}
            # Names an engine gives its own indexes (a table's primary key), on every engine.
            if lowered.startswith("sqlite_") or lowered in ("primary", f"{col.name.lower()}_pkey"):
                return {str(i): FieldError(
                    "validation_invalid_index_expression",
                    f"Failed to create index {name} - the name is reserved for internal use.")}
            if len(name.encode()) > MAX_INDEX_NAME:
                return {str(i): FieldError(
                    "validation_invalid_index_expression",
                    f"Failed to create index {name} - the name is longer than {MAX_INDEX_NAME} bytes.")}
            if lowered not in dropped:
                owner = await self._relation_owner(name)
                if owner is not None:
                    return {str(i): FieldError(
                        "validation_existing_index_name", f"The index name is already used in {owner} collection.",
                        {"usedTableName": owner})}
        return {}

    async def _relation_owner(self, name: str) -> str | None:
        """The table owning the index (or the relation) called ``name`` in the database's
        one namespace for them, if there is one: engine-made indexes such as primary
        keys are in no collection's list."""
        query = self.db.sql.index_owner_query()
        if query is None:  # index names are per table
            return None
        async with self.db.read() as conn:
            row = await conn.fetch_one(query, {"n": name})
        return None if row is None else str(row["owner"])

    async def _prepare_view(self, col: Collection, errors: dict[str, Any]) -> None:
        query = col.view_query.rstrip().rstrip(";").strip()
        engine = self.db.sql
        if len(query) > VIEW_QUERY_MAX or ";" in query or not re.match(r"^(select|with)\b", query, re.I):
            problem: str | None = "Must be a single SELECT statement without semicolons"
        elif view_query.selects_wildcard(query, engine):
            problem = view_query.WILDCARD_MESSAGE
        else:  # looked at before the database runs anything of it
            problem = view_query.unreadable(query, engine, self.registry.all())
        if problem:
            errors["viewQuery"] = FieldError("validation_invalid_view_query", problem)
            return
        col.view_query = query
        try:
            async with self.db.transaction() as conn:
                rows = await conn.fetch_all(sa.text(f"SELECT * FROM ({query}) AS v LIMIT 0"))
                del rows
                names, rewritten, read = await self._view_columns(conn, query)
        except Exception as exc:  # noqa: BLE001 - any database complaint is the user's to see
            errors["viewQuery"] = FieldError("validation_invalid_view_query", f"Invalid query: {_first_line(exc)}")
            return
        problem = view_query.unreadable(query, engine, self.registry.all(), rewritten, read)
        if problem:
            errors["viewQuery"] = FieldError("validation_invalid_view_query", problem)
            return
        if "id" not in names:
            errors["viewQuery"] = FieldError(
                "validation_invalid_view_query", "The query must return an id column")
            return
        col.fields = self._view_fields(col, names)

    async def _view_columns(self, conn: Connection, query: str) -> tuple[list[str], str, list[tuple[str, str]]]:
        """The view's column names, the database's own text of it and the (table,
        column) pairs it reads, where the engine keeps those."""
        probe = f"bastion_probe_{time.time_ns()}"
        # Column names come from a temporary view, which every engine can describe.
        await conn.ddl(f"CREATE VIEW {self.db.sql.quote(probe)} AS {query}")
        try:
            names = await conn.column_names(probe)
            rewritten, reads = await self.db.sql.view_source(conn, probe)
            return names, rewritten, reads
        finally:
            await conn.ddl(f"DROP VIEW {self.db.sql.quote(probe)}")

    def _view_fields(self, col: Collection, names: list[str]) -> list[Field]:
        """The view's fields, typed from its query afresh on every change (as PocketBase
        does: fields sent by the client are not taken). Ids come from type and name, so a
        field keeps its id while both stay."""
        by_name = {c.name.lower(): c for c in self.registry.all() if c.id != col.id}
        out: list[Field] = []
        for spec in view_query.column_fields(col.view_query, self.db.sql, names, by_name):
            field = field_from_dict(spec, {})
            if field is not None:
                out.append(field)
        return out

    async def _commit(self, old: Collection | None, new: Collection | None, title: str, migrate: bool) -> None:
        t = self.tables["_collections"]
        migration_path: Path | None = None
        try:
            async with self.db.transaction() as conn:
                stored = await get_param(conn, self.tables["_params"], SCHEMA_VERSION_KEY, for_update=True) or ""
                if stored != self.version:
                    raise _SchemaMoved
                await self.sync.apply(conn, old, new)
                if old is not None:
                    await conn.execute(sa.delete(t).where(t.c.id == old.id))
                if new is not None:
                    await conn.execute(sa.insert(t).values(
                        id=new.id, name=new.name, type=new.type, system=new.system,
                        definition=orjson.dumps(new.to_dict(secrets=True)).decode(),
                        created=new.created, updated=new.updated,
                    ))
                version = await self._bump_version(conn, stored)
                if migrate and self.files is not None:
                    migration_path = self.files.write_change(
                        title, old.to_dict() if old else None, new.to_dict() if new else None)
                    mt = self.tables["_migrations"]
                    await conn.execute(sa.insert(mt).values(file=migration_path.name, applied=time.time_ns() // 1000))
        except Exception:
            if migration_path is not None:
                migration_path.unlink(missing_ok=True)
            await self.db.schema_changed()
            raise
        # Committed: the registry and the version move together, before the lock is let go.
        self.version = version
        await self.db.schema_changed()
        if old is not None:
            self.registry.remove(old.id)
        if new is not None:
            self.registry.put(new)
        for hook in self.after_change:
            hook()


SCHEMA_VERSION_KEY = "schema_version"
T = TypeVar("T")


class _SchemaMoved(Exception):
    """Raised in a schema commit that finds the stored schema newer than this process's."""


def _mentions(query: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", query, re.I) is not None


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", exc)) or exc.__class__.__name__
    return text.splitlines()[0][:300]

