"""What a write must not break, checked in its transaction before it is made: a
client-chosen id free (and, for auth records, free across every auth collection),
every related record present, and every unique index kept. All problems are gathered
into one validation error."""

from __future__ import annotations

import sqlalchemy as sa

from bastion.core.errors import FieldError, ValidationFailed
from bastion.core.fields import RelationField
from bastion.core.ports import Connection
from bastion.core.records.input import PreparedRecord
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry


async def check_consistency(
    registry: Registry, conn: Connection, col: Collection, prepared: PreparedRecord, self_id: str | None, message: str,
    check_id: bool = True,
) -> None:
    errors = prepared.errors
    table = registry.table(col)
    if self_id is None and check_id and "id" not in errors:
        if await conn.fetch_one(sa.select(table.c.id).where(table.c.id == prepared.values["id"])):
            errors["id"] = FieldError("validation_not_unique", "Value must be unique")
        elif col.is_auth and await _auth_id_taken(registry, conn, col, prepared.values["id"]):
            errors["id"] = FieldError("validation_invalid_auth_id", "Invalid or duplicated auth record id.")
    for f in col.fields:
        if not isinstance(f, RelationField) or f.name in errors or f.name not in prepared.changed:
            continue
        ids = f.values_of(prepared.values.get(f.name))
        if ids:
            target = registry.find(f.collectionId)
            found: set[str] = set()
            if target is not None:
                tt = registry.table(target)
                rows = await conn.fetch_all(sa.select(tt.c.id).where(tt.c.id.in_(ids)))
                found = {r["id"] for r in rows}
            if set(ids) - found:
                errors[f.name] = FieldError(
                    "validation_missing_rel_records", "Failed to find all relation records with the provided ids")
    await _check_unique(conn, col, table, prepared, self_id)
    if errors:
        raise ValidationFailed(message, errors)

async def _auth_id_taken(registry: Registry, conn: Connection, col: Collection, record_id: str) -> bool:
    """Whether another auth collection holds ``record_id``: rules compare
    ``@request.auth.id`` alone, so an auth id must be unique across all of them."""
    for other in registry.all():
        if other.is_auth and other.id != col.id:
            t = registry.table(other)
            if await conn.fetch_one(sa.select(t.c.id).where(t.c.id == record_id)):
                return True
    return False

async def _check_unique(
    conn: Connection, col: Collection, table: sa.Table, prepared: PreparedRecord, self_id: str | None
) -> None:
    values = prepared.values
    for spec in col.index_specs():
        if not spec.unique:
            continue
        names = [c.name for c in spec.columns]
        if any(n in prepared.errors or n not in values for n in names):
            continue
        if self_id is not None and not (set(names) & prepared.changed) and "tokenKey" not in names:
            continue
        if spec.where is not None and spec.where.op == "!=" and values[spec.where.column] == spec.where.value:
            continue
        conds = []
        for c in spec.columns:
            column = table.c[c.name]
            f = col.field(c.name)
            v = values[c.name] if f is None else f.to_db(values[c.name])
            # An auth email is unique whatever its case: sign-in matches it without case.
            nocase = c.nocase or (col.is_auth and c.name == "email")
            conds.append(sa.func.lower(column) == str(v).lower() if nocase else column == v)
        stmt = sa.select(table.c.id).where(*conds)
        if self_id is not None:
            stmt = stmt.where(table.c.id != self_id)
        if await conn.fetch_one(stmt.limit(1)):
            for n in names:
                prepared.errors[n] = FieldError("validation_not_unique", "Value must be unique")
