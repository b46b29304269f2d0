"""Scoped API keys (service tokens), beyond PocketBase.

A superuser creates a key limited to some collections and actions, optionally expiring;
the secret is shown once and stored as a SHA-256 hash (the secret is 40 random
characters, so a fast hash is enough and lookups stay cheap). A request sending
``Authorization: Bearer bk_<id>_<secret>`` then bypasses collection rules, but only for
those collections and actions; it can never touch the schema, settings or other keys.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import FieldError, NotFound, ValidationFailed
from bastion.core.ports import Database, Row
from bastion.core.schema.registry import Registry
from bastion.core.schema.system_collections import API_KEYS
from bastion.tools.ids import ALNUM, random_string
from bastion.tools.timeutil import now_string, parse_datetime

PREFIX = "bk_"
ACTIONS = ("list", "view", "create", "update", "delete")
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
FAILED = "Failed to create the API key."


@dataclass(frozen=True)
class ApiKeyScope:
    id: str
    name: str
    collections: frozenset[str]  # collection ids, or {"*"}
    actions: frozenset[str]

    def allows(self, collection_id: str, action: str) -> bool:
        return action in self.actions and ("*" in self.collections or collection_id in self.collections)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyService:
    def __init__(self, db: Database, registry: Registry):
        self.db = db
        self.registry = registry

    def _table(self) -> sa.Table:
        return self.registry.table(self.registry.get(API_KEYS))

    async def create(self, body: Any, created_by: str) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        body = body if isinstance(body, dict) else {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 255:
            errors["name"] = FieldError("validation_required", "Give the key a name (1-255 characters)")
        collections = self._collections(body.get("collections"), errors)
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or any(a not in ACTIONS for a in actions):
            errors["actions"] = FieldError("validation_invalid_value", f"A non-empty list of {', '.join(ACTIONS)}")
        expires = body.get("expires") or ""
        if expires:
            try:
                when = parse_datetime(str(expires))
                if when.timestamp() <= time.time():
                    raise ValueError
                expires = when.strftime("%Y-%m-%d %H:%M:%S.000Z")
            except ValueError:
                errors["expires"] = FieldError("validation_invalid_date", "Must be a date in the future")
        if errors:
            raise ValidationFailed(FAILED, errors)
        key_id, secret = random_string(15, ID_ALPHABET), random_string(40, ALNUM)
        now = now_string()
        row = dict(id=key_id, name=str(name).strip(), hash=_digest(secret), collections=collections,
                   actions=sorted(set(actions)), expires=expires, revoked=False, createdBy=created_by,
                   lastUsed="", created=now, updated=now)
        async with self.db.transaction() as conn:
            await conn.execute(sa.insert(self._table()).values(row))
        return {**self._public(row), "key": f"{PREFIX}{key_id}_{secret}"}

    def _collections(self, raw: Any, errors: dict[str, Any]) -> list[str]:
        if raw == ["*"]:
            return ["*"]
        if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
            errors["collections"] = FieldError("validation_invalid_value", 'A non-empty list of collections, or ["*"]')
            return []
        ids = []
        for ref in raw:
            col = self.registry.find(ref)
            if col is None or col.system:
                errors["collections"] = FieldError("validation_invalid_value", f"Unknown collection {ref[:60]!r}")
                return []
            ids.append(col.id)
        return sorted(set(ids))

    @staticmethod
    def _public(row: Row | dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "name", "collections", "actions", "expires", "revoked", "createdBy", "lastUsed", "created")
        return {k: row[k] for k in keys}

    async def list(self) -> list[dict[str, Any]]:
        t = self._table()
        async with self.db.read() as conn:
            rows = await conn.fetch_all(sa.select(t).order_by(t.c.created.desc()))
        return [self._public(r) for r in rows]

    async def revoke(self, key_id: str) -> None:
        t = self._table()
        async with self.db.transaction() as conn:
            if not await conn.execute(sa.update(t).where(t.c.id == key_id).values(revoked=True, updated=now_string())):
                raise NotFound("The requested resource wasn't found.")

    async def identify(self, token: str) -> ApiKeyScope | None:
        """The scope of a presented key, or None (unknown, revoked, expired or malformed)."""
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        key_id, _, secret = token[len(PREFIX):].partition("_")
        if len(key_id) != 15 or not secret:
            return None
        t = self._table()
        async with self.db.read() as conn:
            row = await conn.fetch_one(sa.select(t).where(t.c.id == key_id))
        if row is None or row["revoked"] or not hmac.compare_digest(row["hash"], _digest(secret)):
            return None
        if row["expires"] and parse_datetime(row["expires"]).timestamp() <= time.time():
            return None
        return ApiKeyScope(row["id"], row["name"], frozenset(row["collections"] or []), frozenset(row["actions"] or []))
