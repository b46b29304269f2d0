"""SQLAlchemy tables: the system tables and one table per collection."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bastion.core.fields import Field, StorageKind
from bastion.core.ports import DatabaseEngine
from bastion.core.schema.collections import Collection


def system_tables(sql: DatabaseEngine) -> dict[str, sa.Table]:
    """``_collections``, ``_params``, ``_migrations`` and ``_outbox`` (events waiting for
    the relay, ``core/events/outbox.py``) for the dialect in use."""
    meta = sa.MetaData()
    opts = sql.table_options()
    text = sql.text_type
    return {
        "_collections": sa.Table(
            "_collections", meta,
            sa.Column("id", sa.String(255), primary_key=True),
            sa.Column("name", sa.String(255), nullable=False, unique=True),
            sa.Column("type", sa.String(16), nullable=False),
            sa.Column("system", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("definition", text(), nullable=False),
            sa.Column("created", sa.String(32), nullable=False),
            sa.Column("updated", sa.String(32), nullable=False),
            **opts,
        ),
        "_params": sa.Table(
            "_params", meta,
            sa.Column("id", sa.String(255), primary_key=True),
            sa.Column("value", text(), nullable=True),
            sa.Column("created", sa.String(32), nullable=False),
            sa.Column("updated", sa.String(32), nullable=False),
            **opts,
        ),
        "_migrations": sa.Table(
            "_migrations", meta,
            sa.Column("file", sa.String(255), primary_key=True),
            sa.Column("applied", sa.BigInteger, nullable=False),
            **opts,
        ),
        "_outbox": sa.Table(
            "_outbox", meta,
            # BigInteger autoincrement is a plain INTEGER on SQLite (its rowid).
            sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                      autoincrement=True),
            sa.Column("eventId", sa.String(64), nullable=False, unique=True),
            sa.Column("collectionId", sa.String(255), nullable=False),
            sa.Column("collectionName", sa.String(255), nullable=False),
            sa.Column("recordId", sa.String(255), nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("envelope", text(), nullable=False),
            sa.Column("created", sa.String(32), nullable=False),
            sa.Column("published", sa.String(32), nullable=True, index=True),
            **opts,
        ),
    }


def column_for(f: Field, sql: DatabaseEngine, with_default: bool = True) -> sa.Column[Any]:
    default = f.server_default() if with_default else None
    if f.storage is StorageKind.ID:
        return sa.Column(f.name, sa.String(255), primary_key=True)
    return sa.Column(
        f.name,
        f.column_type(sql),
        nullable=f.nullable,
        server_default=sa.text(default.replace(":", "\\:")) if default is not None else None,
    )


def build_table(col: Collection, sql: DatabaseEngine) -> sa.Table:
    """The table (or view) of a collection; column names are field names."""
    meta = sa.MetaData()
    columns = [column_for(f, sql) for f in col.fields]
    if col.is_view:
        columns = [sa.Column(f.name, f.column_type(sql)) for f in col.fields]
    return sa.Table(col.name, meta, *columns, **sql.table_options())
