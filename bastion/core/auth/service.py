"""Auth tokens for records of auth collections, and password sign-in."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bastion.core.access import AuthIdentity
from bastion.core.auth import tokens
from bastion.core.auth.mfa import totp_enrolled
from bastion.core.auth.passwords import hash_password, needs_rehash, verify_password
from bastion.core.errors import BadRequest, FieldError, Forbidden, ValidationFailed
from bastion.core.ports import Connection, Database
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry

MAX_TOKEN = 4096


@dataclass
class AuthService:
    db: Database
    registry: Registry
    verified: tokens.VerifiedTokens = field(default_factory=tokens.VerifiedTokens)

    def token_for(
        self, col: Collection, record: dict[str, Any], refreshable: bool = True, duration: int | None = None
    ) -> str:
        conf = col.auth["authToken"]
        claims = {"id": record["id"], "collectionId": col.id, "type": "auth", "refreshable": refreshable}
        return tokens.sign(claims, record["tokenKey"] + conf["secret"], duration or conf["duration"])

    def file_token(self, identity: AuthIdentity) -> str:
        """A short-lived token for protected files (``fileToken.duration``), as PocketBase
        issues: signed with the record's token key, so it dies with its sessions."""
        col, record = identity.collection, identity.record
        conf = col.auth["fileToken"]
        claims = {"id": record["id"], "collectionId": col.id, "type": "file"}
        return tokens.sign(claims, record["tokenKey"] + conf["secret"], conf["duration"])

    async def by_id(self, col: Collection, record_id: str) -> AuthIdentity | None:
        if not isinstance(record_id, str) or not 0 < len(record_id) <= 255 or "\x00" in record_id:
            return None
        table = self.registry.table(col)
        async with self.db.read_brief() as conn:
            row = await conn.fetch_one(sa.select(table).where(table.c.id == record_id))
        return AuthIdentity(col, dict(row)) if row is not None else None

    async def identify(self, token: str, conn: Connection | None = None, kind: str = "auth") -> AuthIdentity | None:
        """The record a token of ``kind`` (``auth`` or ``file``) authenticates, or None
        (invalid tokens make a guest). With ``conn`` the record is read on it (the
        request's own read connection)."""
        if not token or len(token) > MAX_TOKEN:
            return None
        claims = self.verified.claims(token)
        if not claims or claims.get("type") != kind:
            return None
        col = self.registry.find(str(claims.get("collectionId", "")))
        if col is None or not col.is_auth or not isinstance(claims.get("id"), str):
            return None
        async with nullcontext(conn) if conn is not None else self.db.read_brief() as conn:
            row = await conn.fetch_one(self.registry.select_by_id(col), {"rid": claims["id"]})
        if row is None:
            return None
        if not self.verified.verify(token, row["tokenKey"] + col.auth[f"{kind}Token"]["secret"]):
            return None
        return AuthIdentity(col, dict(row))

    async def with_password(self, col: Collection, body: Any) -> AuthIdentity:
        if not col.auth["passwordAuth"]["enabled"]:
            raise Forbidden("The collection is not configured to allow password authentication.")
        identity, password, field = credentials(body)
        fields = col.auth["passwordAuth"]["identityFields"]
        if field:
            if field not in fields:
                raise ValidationFailed("An error occurred while validating the submitted data.", {
                    "identityField": FieldError("validation_in_invalid", "Must be a valid value")})
            candidates = [field]
        else:
            candidates = sorted(fields, key=lambda f: f != "email")
            if "@" not in identity:
                candidates = [f for f in candidates if f != "email"]
        table = self.registry.table(col)
        enrolled = totp_enrolled(self.registry, col, table)
        select = sa.select(table) if enrolled is None else sa.select(table, enrolled)
        row = None
        async with self.db.read_brief() as conn:
            for name in candidates:
                if name not in table.c:
                    continue
                column = table.c[name]
                # The exact value first: it can use the (partial) unique index; then the
                # case-insensitive match PocketBase's NOCASE index gives.
                row = await conn.fetch_one(select.where(column == identity, column != "").limit(1))
                if row is None and name == "email":
                    cond = sa.func.lower(column) == identity.lower()
                    row = await conn.fetch_one(select.where(cond).limit(1))
                if row is not None:
                    break
        stored = row["password"] if row is not None else ""
        if not await verify_password(stored, password) or row is None:
            raise BadRequest("Failed to authenticate.")
        record = dict(row)
        if needs_rehash(stored):
            record["password"] = await hash_password(password)
            async with self.db.transaction() as conn:
                await conn.execute(
                    sa.update(table).where(table.c.id == record["id"]).values(password=record["password"]))
        return AuthIdentity(col, record)


def credentials(body: Any) -> tuple[str, str, str]:
    errors: dict[str, Any] = {}
    if not isinstance(body, dict):
        body = {}
    values = {}
    for key in ("identity", "password"):
        v = body.get(key)
        if not isinstance(v, str) or not v:
            errors[key] = FieldError("validation_required", "Cannot be blank")
        elif len(v) > 255:
            errors[key] = FieldError("validation_length_out_of_range", "The length must be between 1 and 255")
        values[key] = v if isinstance(v, str) else ""
    field = body.get("identityField") or ""
    if not isinstance(field, str):
        errors["identityField"] = FieldError("validation_invalid_value", "Must be a string")
        field = ""
    if errors:
        raise ValidationFailed("An error occurred while validating the submitted data.", errors)
    return values["identity"], values["password"], field
