"""Records CRUD: one transaction per write, rules enforced through ``Access`` (the reads
are ``core/records/reads.py``'s)."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableSequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from bastion.core.access import RequestInfo
from bastion.core.auth.passwords import hash_password, verify_password
from bastion.core.auth.ratelimit import Lockout
from bastion.core.errors import BadRequest, BastionError, FieldError, NotFound
from bastion.core.fields import FileField, RelationField
from bastion.core.fields.scalar import AutodateField
from bastion.core.fields.text import TextField
from bastion.core.files.service import NO_STORAGE, FileService
from bastion.core.hooks.records import Hooks, RecordEvent
from bastion.core.ports import Connection, Row
from bastion.core.records.changes import ChangeListener, Sealer, WriteJournal
from bastion.core.records.consistency import check_consistency
from bastion.core.records.input import PreparedRecord, modifier_keys, prepare, rule_body
from bastion.core.records.reads import NOT_FOUND, RecordReads
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection
from bastion.core.schema.system_collections import AUTH_ORIGINS
from bastion.tools.ids import random_string

MAX_CASCADE = 10_000


@dataclass
class RecordService(RecordReads):
    """Reads (``RecordReads``) and writes: one transaction per write."""

    # Counts wrong ``oldPassword`` values (set by the HTTP layer with its store).
    password_guard: Lockout | None = None
    # Stores uploads and deletes dropped files once a write commits (None: no storage).
    files: FileService | None = None
    # Told of every committed change (``core/records/changes.py``).
    listeners: list[ChangeListener] = field(default_factory=list)
    # Given each transaction's changes inside it, just before it commits.
    sealers: list[Sealer] = field(default_factory=list)
    # The app's own code around writes (``core/hooks/records.py``).
    hooks: Hooks = field(default_factory=Hooks)

    # -- writes --------------------------------------------------------------------
    def _sealing(self, col: Collection) -> bool:
        """Whether a sealer may write with a change of ``col`` (then every write of it runs
        in a transaction of its own); a sealer says so with ``wants(col)``, else always."""
        return any(getattr(sealer, "wants", lambda _col: True)(col) for sealer in self.sealers)

    def _writable(self, col: Collection) -> None:
        if col.is_view:
            raise BadRequest("Unsupported collection type.")

    @asynccontextmanager
    async def _tx(self, conn: Connection | None, journal: WriteJournal) -> AsyncIterator[Connection]:
        """The caller's transaction (a batch, which seals its journal itself) or a new one,
        whose journal is sealed just before it commits."""
        if conn is not None:
            yield conn
            return
        async with self.db.transaction() as new:
            yield new
            await journal.seal(new)

    def journal(self) -> WriteJournal:
        """A journal for one transaction's writes (a caller holding its own transaction,
        a batch, passes it to each write and settles it once the transaction ended)."""
        return WriteJournal(self.files.journal() if self.files is not None else None, self.listeners, self.sealers)

    @asynccontextmanager
    async def _settled(self, journal: WriteJournal | None, conn: Connection | None) -> AsyncIterator[WriteJournal]:
        """The journal of a write: the caller's (settled by the caller) or a new one,
        settled here once the write's own transaction ended. A write in the caller's
        transaction (``conn``) needs the caller's journal: only the caller knows when it
        commits."""
        if journal is not None:
            yield journal
            return
        if conn is not None:
            raise ValueError("a write in the caller's transaction needs the caller's journal (records.journal())")
        own = self.journal()
        try:
            yield own
        except BaseException:
            await own.failed()
            raise
        await own.committed()

    async def _store_files(
        self, journal: WriteJournal, col: Collection, record_id: str, prepared: PreparedRecord,
    ) -> None:
        if prepared.errors or not any(f.uploads_of(prepared.values.get(f.name)) for f in col.fields
                                      if isinstance(f, FileField)):
            return
        if journal.files is None or self.files is None:
            raise BadRequest(NO_STORAGE)
        await self.files.store(journal.files, col, record_id, prepared.values)

    async def exists(self, conn: Connection, col: Collection, record_id: str) -> bool:
        return await self._fetch(conn, self.registry.table(col), record_id, None) is not None

    async def create(
        self, info: RequestInfo, col: Collection, body: dict[str, Any], conn: Connection | None = None,
        journal: WriteJournal | None = None,
    ) -> dict[str, Any]:
        """A new record of ``col`` from ``body``; its uploads are stored first and deleted
        again if the write fails (see ``core/files/journal.py``)."""
        self._writable(col)
        if self.hooks.around_write("create", col):
            return await self._hooked(RecordEvent("create", col, info, body), conn, journal)
        async with self._settled(journal, conn) as journal:
            return await self._create(info, col, body, conn, journal)

    async def _create(
        self, info: RequestInfo, col: Collection, body: dict[str, Any], conn: Connection | None,
        journal: WriteJournal,
    ) -> dict[str, Any]:
        rule = self.access.condition(info, col, "createRule", self.registry.table(col))
        prepared = prepare(col, body, None, can_manage=info.is_superuser)
        if rule is not None and modifier_keys(col, body):
            rule = self.access.condition(
                replace(info, body=rule_body(col, body, prepared)), col, "createRule", self.registry.table(col))
        id_field = col.field("id")
        client_id = isinstance(body.get("id"), str) and body["id"] != ""  # (other values are cast, as text)
        if client_id and "id" not in prepared.errors:
            prepared.values["id"] = body["id"]
        elif not prepared.values.get("id"):
            prepared.values["id"] = (
                id_field.autogenerate() if isinstance(id_field, TextField) else random_string(15))
        if col.is_auth:
            prepared.values["tokenKey"] = random_string(50)
            if not info.is_superuser:
                prepared.values["verified"] = False
        await self._hash(prepared)
        await self._store_files(journal, col, prepared.values["id"], prepared)
        table = self.registry.table(col)
        insert = self.registry.insert_returning(col)
        alone = conn is None and rule is None and not self._sealing(col)
        if alone and not self._needs_checks(col, prepared, client_id):
            # Nothing to read before the INSERT and nothing to check after it: one
            # statement, atomic by itself.
            async with self.db.statement() as single:
                row = await single.fetch_one(insert, self._db_values(col, prepared.values))
            assert row is not None
            record = Record(col, row)
            journal.record("create", col, record)
            return self.to_api(col, record, info)
        # The create rule sees the new record before its autodate fields are stamped, as in
        # PocketBase ("created != ''" refuses every create): they are set after the check.
        stamps = {} if rule is None else {
            f.name: prepared.values[f.name] for f in col.fields
            if isinstance(f, AutodateField) and prepared.values.get(f.name)}
        async with self._tx(conn, journal) as conn:
            # A generated id is random enough not to collide: the primary key still guards it.
            await check_consistency(
                self.registry, conn, col, prepared, None, "Failed to create record.", check_id=client_id)
            unstamped = {**prepared.values, **dict.fromkeys(stamps, "")}
            row = await conn.fetch_one(insert, self._db_values(col, unstamped))
            if rule is not None and await self._fetch(conn, table, prepared.values["id"], rule) is None:
                raise BadRequest("Failed to create record.")
            if stamps:
                await conn.execute(table.update().where(table.c.id == prepared.values["id"])
                                   .values(self._db_values(col, stamps)))
                row = {**dict(row or {}), **self._db_values(col, stamps)}
            assert row is not None
            record = Record(col, row)
            journal.record("create", col, record)
        return self.to_api(col, record, info)

    async def update(
        self, info: RequestInfo, col: Collection, record_id: str, body: dict[str, Any],
        conn: Connection | None = None, journal: WriteJournal | None = None,
    ) -> dict[str, Any]:
        """``body`` written over a record of ``col``; files it takes off the record are
        deleted once the write commits."""
        self._writable(col)
        if self.hooks.around_write("update", col):
            return await self._hooked(RecordEvent("update", col, info, body, record_id), conn, journal)
        async with self._settled(journal, conn) as journal:
            return await self._update(info, col, record_id, body, conn, journal)

    async def _update(
        self, info: RequestInfo, col: Collection, record_id: str, body: dict[str, Any],
        conn: Connection | None, journal: WriteJournal,
    ) -> dict[str, Any]:
        table = self.registry.table(col)
        cond = self.access.condition(info, col, "updateRule", table)
        # With modifier keys the rule must see the values they resolve to, which depend on
        # the stored record: read it first, then check the rule against the rewritten body.
        late_rule = cond is not None and bool(modifier_keys(col, body))
        async with self._tx(conn, journal) as conn:
            stored = await self._fetch(conn, table, record_id, None if late_rule else cond, lock=True)
            if stored is None:
                raise NotFound(NOT_FOUND)
            existing = Record(col, stored)
            manage = await self._can_manage(conn, info, col, table, record_id)
            prepared = prepare(col, body, existing, can_manage=manage)
            if late_rule:
                cond = self.access.condition(
                    replace(info, body=rule_body(col, body, prepared)), col, "updateRule", table)
                if await self._fetch(conn, table, record_id, cond) is None:
                    raise NotFound(NOT_FOUND)
            await self._auth_update_checks(manage, col, body, existing, prepared)
            await self._hash(prepared)
            await check_consistency(self.registry, conn, col, prepared, record_id, "Failed to update record.")
            await self._store_files(journal, col, record_id, prepared)
            if journal.files is not None and self.files is not None:
                self.files.drop_removed(journal.files, col, record_id, stored, prepared.values)
            values = self._db_values(col, prepared.values)
            values.pop("id", None)
            row: Row | None = stored
            if values:
                stmt = sa.update(table).where(table.c.id == record_id).values(values)
                if self.db.sql.update_returning:
                    row = await conn.fetch_one(stmt.returning(*table.c))
                else:
                    await conn.execute(stmt)
                    row = await self._fetch(conn, table, record_id, None)
            if col.is_auth and prepared.new_password is not None:
                await self._forget_origins(conn, col, record_id)
            assert row is not None
            record = Record(col, row)
            journal.record("update", col, record, existing)
        return self.to_api(col, record, info)

    async def _forget_origins(self, conn: Connection, col: Collection, record_id: str) -> None:
        """A new password forgets the record's known devices (``_authOrigins``), in the same
        transaction, so the next sign-in from any of them alerts again (as PocketBase)."""
        origins = self.registry.find(AUTH_ORIGINS)
        if origins is None:
            return
        table = self.registry.table(origins)
        await conn.execute(sa.delete(table).where(table.c.collectionRef == col.id, table.c.recordRef == record_id))

    async def _can_manage(
        self, conn: Connection, info: RequestInfo, col: Collection, table: sa.Table, record_id: str
    ) -> bool:
        """Superusers, and callers matching an auth collection's ``manageRule``, may change
        another record's email, verified flag and password (without ``oldPassword``)."""
        if info.is_superuser:
            return True
        rule = col.rule("manageRule") if col.is_auth else None
        if not rule or info.api_key is not None:
            return False
        cond = self.access.condition(info, col, "manageRule", table)
        return await self._fetch(conn, table, record_id, cond) is not None

    async def _auth_update_checks(
        self, manage: bool, col: Collection, body: dict[str, Any], existing: Record,
        prepared: PreparedRecord,
    ) -> None:
        if not col.is_auth:
            return
        if prepared.new_password is not None and not manage:
            # A stolen session must not try passwords as fast as they hash: wrong old
            # passwords count towards the password lockout, per record.
            guard, who = self.password_guard, f"record#{existing['id']}"
            if guard is not None:
                await guard.begin_attempt(col, who)
            old = body.get("oldPassword")
            if not isinstance(old, str) or not await verify_password(existing.get("password", ""), old):
                prepared.errors["oldPassword"] = FieldError(
                    "validation_invalid_old_password", "Missing or invalid old password")
                if guard is not None:
                    await guard.record_failure(col, who)
            elif guard is not None:
                await guard.record_success(col, who)
        if prepared.new_password is not None or "email" in prepared.changed:
            prepared.values["tokenKey"] = random_string(50)

    async def _hash(self, prepared: PreparedRecord) -> None:
        if not prepared.errors:
            for name, plain in prepared.passwords.items():
                prepared.values[name] = await hash_password(plain)

    def _db_values(self, col: Collection, values: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in values.items():
            f = col.field(name)
            if f is not None:
                out[name] = f.to_db(value)
        return out

    def _needs_checks(self, col: Collection, prepared: PreparedRecord, check_id: bool) -> bool:
        """Whether :meth:`_check_consistency` has anything to query or report for a new
        record: errors already found, a client-chosen id, relations, unique indexes."""
        if prepared.errors or check_id:
            return True
        if any(isinstance(f, RelationField) and f.name in prepared.changed for f in col.fields):
            return True
        return any(spec.unique for spec in col.index_specs())

    async def delete(
        self, info: RequestInfo, col: Collection, record_id: str, conn: Connection | None = None,
        journal: WriteJournal | None = None,
    ) -> None:
        """Delete a record (and what cascades from it); the files of every deleted record
        go once the transaction commits."""
        self._writable(col)
        if self.hooks.around_write("delete", col):
            await self._hooked(RecordEvent("delete", col, info, {}, record_id), conn, journal)
            return
        async with self._settled(journal, conn) as journal, self._tx(conn, journal) as conn:
            await self._delete(info, col, record_id, conn, journal)

    async def _delete(
        self, info: RequestInfo, col: Collection, record_id: str, conn: Connection, journal: WriteJournal,
    ) -> None:
        table = self.registry.table(col)
        cond = self.access.condition(info, col, "deleteRule", table)
        if await self._fetch(conn, table, record_id, cond) is None:
            raise NotFound(NOT_FOUND)
        await self._delete_cascade(conn, col, record_id, [MAX_CASCADE], journal)

    async def _hooked(
        self, event: RecordEvent, conn: Connection | None, journal: WriteJournal | None,
    ) -> dict[str, Any]:
        """A write with the app's hooks around it: ``on_record_<action>`` inside the
        transaction (the write itself at the chain's end), ``..._error`` after a failure."""
        col, action = event.collection, event.action
        try:
            async with self._settled(journal, conn) as journal, self._tx(conn, journal) as tx:
                event.conn = tx

                async def write() -> None:
                    if action == "create":
                        event.record = await self._create(event.info, col, event.body, tx, journal)
                        event.record_id = str(event.record["id"])
                    elif action == "update":
                        event.record = await self._update(event.info, col, event.record_id, event.body, tx, journal)
                    else:
                        await self._delete(event.info, col, event.record_id, tx, journal)

                if not await self.hooks.write[action].run(event, col, write):
                    raise BadRequest(f"Failed to {action} record: a hook stopped the write.")
        except BastionError as exc:
            event.error, event.conn = exc, None
            await self.hooks.error[action].run(event, col)
            raise
        return event.record or {}

    async def _delete_cascade(
        self, conn: Connection, col: Collection, record_id: str, budget: MutableSequence[int],
        journal: WriteJournal,
    ) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise BadRequest("Failed to delete record: too many cascading deletes.")
        table = self.registry.table(col)
        if journal.files is not None and FileService.has_files(col):
            journal.files.drop_folder(f"{col.id}/{record_id}/")
        if journal.wants_changes:
            gone = await conn.fetch_one(self.registry.select_by_id(col), {"rid": record_id})
            if gone is not None:
                journal.record("delete", col, Record(col, gone))
        await conn.execute(sa.delete(table).where(table.c.id == record_id))
        for ref_col, f in self.registry.referencing(col):
            if ref_col.is_view:
                continue
            field_name = f.name
            rt = self.registry.table(ref_col)
            column = rt.c[field_name]
            match = self.db.sql.json_array_contains(column, record_id) if f.multi else column == record_id
            for row in await conn.fetch_all(sa.select(rt.c.id, column).where(match)):
                remaining = [v for v in f.values_of(f.from_db(row[field_name])) if v != record_id]
                if not remaining and f.cascadeDelete:
                    await self._delete_cascade(conn, ref_col, row["id"], budget, journal)
                elif not remaining and f.required:
                    raise BadRequest(
                        "Failed to delete record. Make sure that the record is not part of a required "
                        "relation reference.")
                else:
                    new_value = remaining if f.multi else ""
                    before = None
                    if journal.wants_changes:
                        before = await conn.fetch_one(self.registry.select_by_id(ref_col), {"rid": row["id"]})
                    await conn.execute(sa.update(rt).where(rt.c.id == row["id"]).values({field_name: new_value}))
                    if before is not None:
                        changed = await conn.fetch_one(self.registry.select_by_id(ref_col), {"rid": row["id"]})
                        if changed is not None:
                            journal.record("update", ref_col, Record(ref_col, changed), Record(ref_col, before))
