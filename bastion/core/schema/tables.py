"""SQLAlchemy tables: the system tables and one table per collection."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bastion.core.fields import Field, StorageKind
from bastion.core.ports import DatabaseEngine
from bastion.core.schema.collections import Collection


def system_tables(sql: DatabaseEngine) -> dict[str, sa.Table]:
    """``_collections``, ``_params``, ``_migrations``, ``_jobs``, ``_webhooks``,
    ``_idempotency`` and ``_outbox`` (events waiting for the relay,
    ``core/events/outbox.py``) for the dialect in use."""
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
        # Background jobs (``core/hooks/jobs.py``): queued, running, done or failed.
        "_jobs": sa.Table(
            "_jobs", meta,
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("payload", text(), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("maxAttempts", sa.Integer, nullable=False),
            sa.Column("runAt", sa.String(32), nullable=False),
            sa.Column("lockedUntil", sa.String(32), nullable=True),
            sa.Column("lastError", text(), nullable=True),
            sa.Column("created", sa.String(32), nullable=False),
            sa.Column("updated", sa.String(32), nullable=False),
            sa.Index("idx__jobs_due", "state", "runAt"),
            **opts,
        ),
        # Endpoints told of record changes (``core/hooks/webhooks.py``).
        "_webhooks": sa.Table(
            "_webhooks", meta,
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("url", sa.String(2048), nullable=False),
            sa.Column("collections", text(), nullable=False),  # JSON list of names or ids; [] for all
            sa.Column("actions", text(), nullable=False),  # JSON list of create, update, delete
            sa.Column("secrets", text(), nullable=False),  # JSON list: the current secret, and the previous
            sa.Column("enabled", sa.Boolean, nullable=False),
            sa.Column("failures", sa.Integer, nullable=False),  # deliveries given up on in a row
            sa.Column("maxFailures", sa.Integer, nullable=False),
            sa.Column("created", sa.String(32), nullable=False),
            sa.Column("updated", sa.String(32), nullable=False),
            **opts,
        ),
        # Answers kept for requests repeated with an Idempotency-Key (``api/idempotency.py``).
        "_idempotency": sa.Table(
            "_idempotency", meta,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("status", sa.Integer, nullable=False),  # 0 while the first request runs
            sa.Column("body", text(), nullable=True),
            sa.Column("contentType", sa.String(100), nullable=True),
            sa.Column("created", sa.String(32), nullable=False),
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
