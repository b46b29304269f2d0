"""OAuth2 / OpenID Connect sign-in for auth collections (PocketBase's flow).

``auth-methods`` lists each enabled provider with an authorization URL; the client comes
back to ``auth-with-oauth2`` with the ``code`` and its ``codeVerifier``. The server
exchanges them, reads the user (``oauth2_providers``) and then signs in the record linked
in ``_externalAuths``, else links the caller's own record, else the record with the same
email (only when the provider asserts it verified that email), else signs up a new record
through the normal create pipeline with ``@request.context = "oauth2"``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bastion.core.access import AuthIdentity, RequestInfo
from bastion.core.auth.oauth2_providers import (
    ExternalUser,
    Provider,
    ProviderClient,
    ProviderError,
    providers,
    safe_redirect,
)
from bastion.core.auth.passwords import hash_password
from bastion.core.errors import BadRequest, Conflict, FieldError, Forbidden, ValidationFailed
from bastion.core.fields import FileField
from bastion.core.ports import Connection, Database, Row, WebClient
from bastion.core.records.changes import WriteJournal
from bastion.core.records.record import Record
from bastion.core.records.service import RecordService
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.core.schema.system_collections import AUTH_ORIGINS, EXTERNAL_AUTHS, SUPERUSERS
from bastion.tools.ids import ID_ALPHABET, random_string
from bastion.tools.timeutil import format_datetime, now_string

log = logging.getLogger("bastion.oauth2")

INVALID_DATA = "An error occurred while loading the submitted data."
TOKEN_FAILED, USER_FAILED = "Failed to fetch OAuth2 token.", "Failed to fetch OAuth2 user."


@dataclass(frozen=True)
class SignIn:
    identity: AuthIdentity
    meta: dict[str, Any]


class OAuth2Service:
    def __init__(self, db: Database, registry: Registry, records: RecordService, web: WebClient):
        self.db = db
        self.registry = registry
        self.records = records
        self.client = ProviderClient(web)

    async def methods(self, col: Collection) -> dict[str, Any]:
        """The ``oauth2`` part of ``auth-methods``; providers that cannot start are skipped."""
        if not col.auth.get("oauth2", {}).get("enabled"):
            return {"enabled": False, "providers": []}
        out = []
        for provider in providers(col).values():
            try:
                out.append(self.client.authorization(await self.client.resolve(provider)))
            except ProviderError as exc:
                log.warning("OAuth2 provider %s of %s skipped: %s", provider.name, col.name, exc)
        return {"enabled": True, "providers": out}

    # -- auth-with-oauth2 ------------------------------------------------------------------
    async def authenticate(
        self, col: Collection, body: dict[str, Any], info: RequestInfo,
        per_account: Callable[[str], Awaitable[None]] | None = None,
    ) -> SignIn:
        """Exchange the code, read the user, sign in (or up) the record. ``per_account`` is
        awaited with ``"<provider>:<account id>"`` before any record is touched (the
        per-identity limit)."""
        if not col.auth.get("oauth2", {}).get("enabled"):
            raise Forbidden("The collection is not configured to allow OAuth2 authentication.")
        provider, code, verifier, redirect, create_data = _form(body, providers(col))
        try:
            p = await self.client.resolve(provider)
            token = await self.client.token(p, code, verifier, redirect)
        except ProviderError as exc:
            log.warning("OAuth2 %s token exchange failed: %s", provider.name, exc)
            raise BadRequest(TOKEN_FAILED) from None
        try:
            user = self.client.user(p, await self.client.raw_user(p, token, verifier))
        except ProviderError as exc:
            log.warning("OAuth2 %s user fetch failed: %s", provider.name, exc)
            raise BadRequest(USER_FAILED) from None
        if per_account is not None:
            await per_account(f"{p.name}:{user.id}")
        record, is_new = await self.sign_in(col, p.name, user, info, create_data)
        expires = token.get("expires_at")
        meta = {
            "id": user.id, "name": user.name, "username": user.username, "email": user.email,
            "avatarURL": user.avatar_url, "avatarUrl": user.avatar_url,
            "accessToken": token["access_token"], "refreshToken": str(token.get("refresh_token") or ""),
            "expiry": format_datetime(datetime.fromtimestamp(expires, UTC)) if isinstance(expires, int) else "",
            "rawUser": user.raw, "isNew": is_new,
        }
        return SignIn(AuthIdentity(col, record), meta)

    # -- records and links ------------------------------------------------------------------
    def _links(self) -> sa.Table:
        return self.registry.table(self.registry.get(EXTERNAL_AUTHS))

    async def sign_in(
        self, col: Collection, provider: str, user: ExternalUser, info: RequestInfo, create_data: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """The record ``user`` signs in to (and whether it is new), linked to the account."""
        try:
            return await self._sign_in(col, provider, user, info, create_data)
        except (Conflict, ValidationFailed):
            # A simultaneous first sign-in of the same account may have created the record
            # and its link between our lookup and our write: look again, and sign in to it.
            if not await self._linked(col, provider, user.id):
                raise
            return await self._sign_in(col, provider, user, info, create_data)

    async def _linked(self, col: Collection, provider: str, provider_id: str) -> bool:
        links = self._links()
        async with self.db.read() as conn:
            return await conn.fetch_one(sa.select(links.c.id).where(
                links.c.collectionRef == col.id, links.c.provider == provider,
                links.c.providerId == provider_id)) is not None

    async def _row(self, col: Collection, column: str, value: str) -> Row | None:
        table = self.registry.table(col)
        cond = sa.func.lower(table.c.email) == value.lower() if column == "email" else table.c[column] == value
        async with self.db.read() as conn:
            return await conn.fetch_one(sa.select(table).where(cond).limit(1))

    async def _sign_in(
        self, col: Collection, provider: str, user: ExternalUser, info: RequestInfo, create_data: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        links = self._links()
        async with self.db.read() as conn:
            link = await conn.fetch_one(sa.select(links).where(
                links.c.collectionRef == col.id, links.c.provider == provider, links.c.providerId == user.id))
        record = await self._row(col, "id", str(link["recordRef"])) if link else None
        if link is not None and record is None:  # the record was deleted: drop its stale link
            async with self.db.transaction() as conn:
                await conn.execute(sa.delete(links).where(links.c.id == link["id"]))
            link = None
        by_email = False
        if record is None and info.auth is not None and info.auth.collection.id == col.id:
            record = await self._row(col, "id", info.auth.id)
        if record is None and user.email and user.email_verified:
            record = await self._row(col, "email", user.email)
            by_email = record is not None
        if record is None:
            return await self._sign_up(col, provider, user, info, create_data), True
        return await self._attach(col, provider, user, record["id"], by_email, link is not None), False

    async def _attach(
        self, col: Collection, provider: str, user: ExternalUser, record_id: str, by_email: bool, linked: bool
    ) -> dict[str, Any]:
        """Link ``user`` to the record (verifying it, or taking it over from whoever
        registered the email first); the record row is locked, so simultaneous sign-ins
        of one account take turns and each sees what the one before did."""
        table = self.registry.table(col)
        stmt = sa.select(table).where(table.c.id == record_id)
        journal = self.records.journal()  # the record's update is heard once it committed
        try:
            result = await self._attach_in(stmt, col, provider, user, record_id, (by_email, linked), journal)
        except BaseException:
            await journal.failed()
            raise
        await journal.committed()
        return result

    async def _attach_in(
        self, stmt: sa.Select[Any], col: Collection, provider: str, user: ExternalUser, record_id: str,
        how: tuple[bool, bool], journal: WriteJournal,
    ) -> dict[str, Any]:
        table, links = self.registry.table(col), self._links()
        by_email, linked = how
        async with self.db.transaction() as conn:
            record = await conn.fetch_one(stmt.with_for_update() if self.db.sql.row_locks else stmt)
            if record is None:
                raise BadRequest("Failed to authenticate.")
            values: dict[str, Any] = {}
            if by_email and not record["verified"]:
                # Someone may have registered this email before its owner: lock them out.
                values = {"password": await hash_password(random_string(30)), "tokenKey": random_string(50)}
            if not record["verified"] and user.email_verified and str(record["email"]).lower() == user.email.lower():
                values["verified"] = True
            if "tokenKey" in values:
                await conn.execute(sa.delete(links).where(
                    links.c.collectionRef == col.id, links.c.recordRef == record_id))
                origins = self.registry.table(self.registry.get(AUTH_ORIGINS))
                await conn.execute(sa.delete(origins).where(
                    origins.c.collectionRef == col.id, origins.c.recordRef == record_id))
                linked = False
            if values:
                await conn.execute(sa.update(table).where(table.c.id == record_id).values(values))
                journal.record("update", col, Record(col, {**dict(record), **values}), Record(col, record))
            if not linked:
                await self._link(conn, col, record_id, provider, user.id)
            await journal.seal(conn)
        return {**dict(record), **values}

    async def _link(self, conn: Connection, col: Collection, record_id: str, provider: str, provider_id: str) -> None:
        links = self._links()
        taken = await conn.fetch_one(sa.select(links.c.providerId).where(
            links.c.collectionRef == col.id, links.c.recordRef == record_id, links.c.provider == provider))
        if taken is not None and taken["providerId"] == provider_id:
            return  # linked a moment ago by a simultaneous sign-in of the same account
        if taken is not None:
            raise BadRequest(f"The record is already linked to another {provider} account.")
        now = now_string()
        await conn.execute(sa.insert(links).values(
            id=random_string(15, ID_ALPHABET), collectionRef=col.id, recordRef=record_id,
            provider=provider, providerId=provider_id, created=now, updated=now))

    async def _sign_up(
        self, col: Collection, provider: str, user: ExternalUser, info: RequestInfo, create_data: dict[str, Any]
    ) -> dict[str, Any]:
        if col.name == SUPERUSERS:  # never, whatever the rules say
            raise BadRequest("Failed to authenticate.")
        payload = {**create_data, "email": user.email}
        if not payload.get("password"):
            payload["password"] = payload["passwordConfirm"] = random_string(30)
        mapped = col.auth.get("oauth2", {}).get("mappedFields") or {}
        for key, value in (("id", user.id), ("name", user.name), ("username", user.username),
                           ("avatarURL", user.avatar_url)):
            target = mapped.get(key)
            if not isinstance(target, str) or not target or not value or target in payload:
                continue
            f = col.field(target)
            if f is None or isinstance(f, FileField):  # avatars are not downloaded yet
                continue
            if key == "username" and await self._row(col, target, value) is not None:
                continue  # taken: leave it to the createData or the field's default
            payload[target] = value
        create = RequestInfo(auth=info.auth, method="POST", context="oauth2", headers=info.headers,
                             query=info.query, body=payload)
        table = self.registry.table(col)
        journal = self.records.journal()  # settled once the sign-up's own transaction ended
        try:
            async with self.db.transaction() as conn:
                created = await self.records.create(create, col, payload, conn, journal)
                if user.email_verified:  # the stored email is the provider's (payload["email"])
                    await conn.execute(sa.update(table).where(table.c.id == created["id"]).values(verified=True))
                    if journal.wants_changes:
                        row = await conn.fetch_one(self.registry.select_by_id(col), {"rid": created["id"]})
                        if row is not None:
                            journal.amend(col, Record(col, row))
                await self._link(conn, col, created["id"], provider, user.id)
                await journal.seal(conn)
        except BaseException:
            await journal.failed()
            raise
        await journal.committed()
        row = await self._row(col, "id", created["id"])
        assert row is not None
        return dict(row)


def _form(body: dict[str, Any], enabled: dict[str, Provider]) -> tuple[Provider, str, str, str, dict[str, Any]]:
    errors: dict[str, Any] = {}
    name = body.get("provider")
    code = body.get("code")
    verifier = body.get("codeVerifier") or ""
    redirect = body.get("redirectURL") or body.get("redirectUrl") or ""
    create_data = body.get("createData") or {}
    for key, value, limit in (("provider", name, 100), ("code", code, 4096), ("redirectURL", redirect, 2048)):
        if not isinstance(value, str) or not value.strip():
            errors[key] = FieldError("validation_required", "Cannot be blank")
        elif len(value) > limit:
            errors[key] = FieldError("validation_length_out_of_range", f"Must be at most {limit} characters")
    if "provider" not in errors and name not in enabled:
        errors["provider"] = FieldError("validation_invalid_provider",
                                        f"Provider with name {str(name)[:100]!r} is missing or is not enabled",
                                        {"name": str(name)[:100]})
    if "redirectURL" not in errors and not safe_redirect(redirect):
        errors["redirectURL"] = FieldError("validation_invalid_url", "Must be an absolute http or https URL")
    if not isinstance(verifier, str) or len(verifier) > 128:
        errors["codeVerifier"] = FieldError("validation_invalid_value", "Must be a string of at most 128 characters")
    if not isinstance(create_data, dict):
        errors["createData"] = FieldError("validation_invalid_value", "Must be an object")
    if errors:
        raise ValidationFailed(INVALID_DATA, errors)
    return enabled[str(name)], str(code), str(verifier), str(redirect), create_data
