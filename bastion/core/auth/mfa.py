"""Multi-factor sign-in (PocketBase's MFA) and TOTP authenticators (beyond PocketBase).

MFA applies when the collection enables it (and its ``mfa.rule``, if any, matches the
record) or when the record has a confirmed TOTP authenticator. The first factor then
answers 401 ``{"mfaId": ...}``; a *different* second factor sent with that ``mfaId``
completes the sign-in. TOTP codes follow RFC 6238 (30 s steps, one step of drift);
each code works once, and ten single-use recovery codes (argon2-hashed) replace a lost
device.

Guessing a six-digit code is the weak spot, so every code check -- sign-in
(``auth-with-totp``), ``totp/confirm`` and ``totp/disable`` -- goes through one
``TotpGuard``: the same per-record window and lockout, whichever endpoint is guessed at.
The service's checking methods take the guard as an argument, so none can skip it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pyotp
import sqlalchemy as sa

from bastion.core.access import AuthIdentity, RequestInfo
from bastion.core.auth.passwords import hash_password, verify_password
from bastion.core.auth.ratelimit import IdentityLimiter, Lockout
from bastion.core.auth.secretbox import SecretBox
from bastion.core.errors import BadRequest, FieldError, ValidationFailed
from bastion.core.ports import Database, Row
from bastion.core.records.filters import Filters
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.core.schema.system_collections import AUTHENTICATORS, MFAS
from bastion.tools.ids import random_string
from bastion.tools.timeutil import now_string, parse_datetime

RECOVERY_CODES = 10
TOTP_PURPOSE = "totp-secret"  # what a sealed secret is bound to
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
# Key of a record row read with ``totp_enrolled``: whether it has a confirmed authenticator
# (not a field name: field names cannot start with "@").
TOTP_FLAG = "@totp"
# The settings.identityRateLimits tag of every TOTP code check (sign-in, confirm, disable).
TOTP_TAG = "authWithTOTP"
T = TypeVar("T")


@dataclass(frozen=True)
class TotpGuard:
    """What every TOTP or recovery code check passes, per record: the ``authWithTOTP``
    window of ``settings.identityRateLimits`` (counted before the check, so parallel
    guesses cannot slip past it) and a lockout with backoff (``Lockout``, counting wrong
    codes). A right code clears both: only the holder of the secret can do that."""

    window: IdentityLimiter
    lockout: Lockout

    async def attempt(self, identity: AuthIdentity, check: Callable[[], Awaitable[T]]) -> T:
        """Run ``check`` unless the record is locked or over its window; a
        ``ValidationFailed`` from it (a wrong code) counts towards the lockout."""
        col, who = identity.collection, f"record#{identity.id}"
        await self.lockout.begin_attempt(col, "totp#" + who)
        await self.window.hit(col, TOTP_TAG, who)
        try:
            result = await check()
        except ValidationFailed:
            await self.lockout.record_failure(col, "totp#" + who)
            raise
        await self.lockout.record_success(col, "totp#" + who)
        await self.window.forget(col, TOTP_TAG, who)
        return result


def totp_enrolled(registry: Registry, col: Collection, table: sa.Table) -> sa.Label[Any] | None:
    """A column to read with the record in its first-factor lookup, so that the MFA gate
    needs no query of its own when MFA is off (or its rule does not match)."""
    found = registry.find(AUTHENTICATORS)
    if found is None:
        return None
    auth = registry.table(found)
    return sa.exists().where(
        auth.c.collectionRef == col.id, auth.c.recordRef == table.c.id, auth.c.confirmed == sa.true(),
    ).label(TOTP_FLAG)


class MfaRequired(Exception):
    """The first factor passed; answer 401 ``{"mfaId": ...}`` (not the error shape)."""

    def __init__(self, mfa_id: str):
        super().__init__(mfa_id)
        self.mfa_id = mfa_id


class MfaService:
    def __init__(self, db: Database, registry: Registry, filters: Filters, app_name: Any,
                 box: SecretBox | None = None):
        self.db = db
        self.registry = registry
        self.filters = filters
        self.app_name = app_name  # callable → the app name shown in authenticator apps
        self.box = box or SecretBox()  # TOTP secrets are sealed with it when it has a key

    def _table(self, name: str) -> sa.Table:
        return self.registry.table(self.registry.get(name))

    # -- the MFA gate --------------------------------------------------------------
    async def gate(self, identity: AuthIdentity, method: str, mfa_id: str | None) -> None:
        """Raise MfaRequired after a first factor; check and consume a second one."""
        col = identity.collection
        enrolled = identity.record.pop(TOTP_FLAG, None)
        if mfa_id:
            await self._complete(identity, method, mfa_id)
            return
        if not await self._applies(identity, method, None if enrolled is None else bool(enrolled)):
            return
        table = self._table(MFAS)
        new_id, now = random_string(15, ID_ALPHABET), now_string()
        async with self.db.transaction() as conn:
            await conn.execute(sa.insert(table).values(
                id=new_id, collectionRef=col.id, recordRef=identity.id, method=method, created=now, updated=now))
        raise MfaRequired(new_id)

    async def _applies(self, identity: AuthIdentity, method: str, enrolled: bool | None) -> bool:
        """The collection's MFA (enabled, rule empty or matching) or the record's own
        authenticator. ``enrolled`` is the latter when the first factor read it already;
        it is looked up only when the collection's MFA does not decide."""
        col = identity.collection
        conf = col.auth["mfa"]
        if conf["enabled"]:
            rule = (conf.get("rule") or "").strip()
            if not rule:
                return True
            table = self.registry.table(col)
            info = RequestInfo(auth=identity, context=method)
            cond = self.filters.compile(rule, info, col, table)
            async with self.db.read() as conn:
                if await conn.fetch_one(sa.select(table.c.id).where(table.c.id == identity.id, cond)) is not None:
                    return True
        if enrolled is not None:
            return enrolled
        return await self.authenticator(col, identity.id, confirmed=True) is not None

    async def _complete(self, identity: AuthIdentity, method: str, mfa_id: str) -> None:
        row = await self._pending(identity.collection, mfa_id)
        if row["recordRef"] != identity.id:
            raise BadRequest("Invalid MFA session.")
        if row["method"] == method:
            raise BadRequest("A different authentication method is required.")
        await self._delete_pending(mfa_id)

    async def _pending(self, col: Collection, mfa_id: str) -> Row:
        table = self._table(MFAS)
        async with self.db.read_brief() as conn:
            row = await conn.fetch_one(sa.select(table).where(table.c.id == str(mfa_id)[:255]))
        if row is None or row["collectionRef"] != col.id or _older_than(row["created"], col.auth["mfa"]["duration"]):
            raise BadRequest("Invalid or expired MFA session.")
        return row

    async def _delete_pending(self, mfa_id: str) -> None:
        table = self._table(MFAS)
        async with self.db.transaction() as conn:
            await conn.execute(sa.delete(table).where(table.c.id == mfa_id))

    async def pending_identity(self, col: Collection, mfa_id: str) -> AuthIdentity:
        """The record a pending MFA sign-in belongs to (for a second factor like TOTP)."""
        row = await self._pending(col, mfa_id)
        table = self.registry.table(col)
        async with self.db.read_brief() as conn:
            record = await conn.fetch_one(sa.select(table).where(table.c.id == row["recordRef"]))
        if record is None:
            raise BadRequest("Invalid MFA session.")
        return AuthIdentity(col, dict(record))

    # -- TOTP authenticators -------------------------------------------------------
    async def authenticator(self, col: Collection, record_id: str, confirmed: bool | None = None) -> Row | None:
        table = self._table(AUTHENTICATORS)
        stmt = sa.select(table).where(table.c.collectionRef == col.id, table.c.recordRef == record_id)
        if confirmed is not None:
            stmt = stmt.where(table.c.confirmed == sa.true() if confirmed else table.c.confirmed == sa.false())
        async with self.db.read_brief() as conn:
            return await conn.fetch_one(stmt)

    async def enroll(self, identity: AuthIdentity) -> dict[str, str]:
        if await self.authenticator(identity.collection, identity.id, confirmed=True) is not None:
            raise BadRequest("An authenticator is already active; disable it first.")
        secret = pyotp.random_base32()
        table = self._table(AUTHENTICATORS)
        now = now_string()
        async with self.db.transaction() as conn:
            await conn.execute(sa.delete(table).where(
                table.c.collectionRef == identity.collection.id, table.c.recordRef == identity.id))
            await conn.execute(sa.insert(table).values(
                id=random_string(15, ID_ALPHABET), collectionRef=identity.collection.id, recordRef=identity.id,
                secret=self.box.seal(secret, TOTP_PURPOSE), confirmed=False, lastCounter=0, recoveryCodes=[],
                created=now, updated=now))
        label = str(identity.record.get("email") or identity.id)
        uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=str(self.app_name()))
        return {"secret": secret, "otpauthURL": uri}

    async def confirm(self, identity: AuthIdentity, code: Any, guard: TotpGuard) -> list[str]:
        """Activate the enrolled authenticator with a first code; its recovery codes."""
        return await guard.attempt(identity, lambda: self._confirm(identity, code))

    async def _confirm(self, identity: AuthIdentity, code: Any) -> list[str]:
        row = await self.authenticator(identity.collection, identity.id, confirmed=False)
        if row is None:
            raise BadRequest("Start with totp/enroll.")
        counter = _matching_counter(self.box.open(row["secret"], TOTP_PURPOSE), code, int(row["lastCounter"] or 0))
        if counter is None:
            raise _invalid_code()
        codes = [random_string(10, ID_ALPHABET) for _ in range(RECOVERY_CODES)]
        hashes = [await hash_password(c) for c in codes]
        await self._update(row["id"], confirmed=True, lastCounter=counter, recoveryCodes=hashes)
        return codes

    async def verify(self, identity: AuthIdentity, code: Any, guard: TotpGuard) -> None:
        """Accept a current TOTP code (once) or an unused recovery code; else 400."""
        await guard.attempt(identity, lambda: self._verify(identity, code))

    async def _verify(self, identity: AuthIdentity, code: Any) -> None:
        row = await self.authenticator(identity.collection, identity.id, confirmed=True)
        if row is None:
            raise BadRequest("No authenticator is active for this account.")
        counter = _matching_counter(self.box.open(row["secret"], TOTP_PURPOSE), code, int(row["lastCounter"] or 0))
        if counter is not None:
            await self._update(row["id"], lastCounter=counter)
            return
        hashes = list(row["recoveryCodes"] or [])
        if isinstance(code, str) and len(code) == 10:
            for i, hashed in enumerate(hashes):
                if await verify_password(hashed, code):
                    await self._update(row["id"], recoveryCodes=hashes[:i] + hashes[i + 1:])
                    return
        raise _invalid_code()

    async def disable(self, identity: AuthIdentity, code: Any, guard: TotpGuard) -> None:
        """Remove the record's authenticator, given a current TOTP or recovery code."""
        await self.verify(identity, code, guard)
        table = self._table(AUTHENTICATORS)
        async with self.db.transaction() as conn:
            await conn.execute(sa.delete(table).where(
                table.c.collectionRef == identity.collection.id, table.c.recordRef == identity.id))

    async def _update(self, row_id: str, **values: Any) -> None:
        table = self._table(AUTHENTICATORS)
        async with self.db.transaction() as conn:
            await conn.execute(sa.update(table).where(table.c.id == row_id).values(updated=now_string(), **values))


def _invalid_code() -> ValidationFailed:
    return ValidationFailed("Invalid or expired authenticator code.", {
        "code": FieldError("validation_invalid_code", "Invalid or expired code")})


def _matching_counter(secret: str, code: Any, last: int) -> int | None:
    """The time step whose code matches (±1 step), if newer than the last one used."""
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // totp.interval
    for step in (now, now - 1, now + 1):
        if step > last and totp.at(step * totp.interval) == code:
            return step
    return None


def _older_than(created: str, seconds: int) -> bool:
    try:
        return time.time() - parse_datetime(created).timestamp() > seconds
    except ValueError:
        return True
