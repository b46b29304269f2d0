"""Email flows of auth collections: verification, password reset, email change, OTP.

Tokens are purpose-bound JWTs (``type`` = verification / passwordReset / emailChange)
signed with the record's ``tokenKey`` plus that purpose's collection secret. A reset or
email change rotates ``tokenKey``, so its token — and every session — stops working once
used. Requests for unknown emails answer exactly like requests for known ones, in the
same time: their emails go out in the background, and an unknown email's OTP is hashed
all the same.

``note_origin`` keeps ``_authOrigins`` (PocketBase's new-device alerts) up to date.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from bastion.core.access import AuthIdentity
from bastion.core.auth import tokens
from bastion.core.auth.passwords import hash_password, verify_password
from bastion.core.auth.ratelimit import Lockout
from bastion.core.errors import (
    BadRequest,
    BastionError,
    FieldError,
    Forbidden,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from bastion.core.fields.structured import PasswordField
from bastion.core.fields.text import EMAIL_RE
from bastion.core.hooks.records import Hooks, MailEvent
from bastion.core.ports import Database, Mailer, Row
from bastion.core.records.changes import WriteJournal
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.core.schema.system_collections import AUTH_ORIGINS, OTPS, SUPERUSERS
from bastion.core.store import Store
from bastion.tools.ids import random_string
from bastion.tools.timeutil import now_string, parse_datetime

log = logging.getLogger("bastion.auth")
COOLDOWN = 120.0
OTP_MAX_ATTEMPTS = 5
OTP_MAX_LIVE = 10
INVALID_OTP = "Invalid or expired OTP."
MAX_ORIGINS = 5  # devices remembered per record, as in PocketBase
ORIGIN_TOUCH = 3600.0  # a known device's `updated` is refreshed at most this often
Settings = Callable[[], dict[str, Any]]


def _field(body: Any, key: str, max_length: int = 255) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("An error occurred while validating the submitted data.", {
            key: FieldError("validation_required", "Cannot be blank")})
    if len(value) > max_length:
        raise ValidationFailed("An error occurred while validating the submitted data.", {
            key: FieldError("validation_length_out_of_range", f"Must be at most {max_length} characters")})
    return value.strip()


def _email(body: Any, key: str = "email") -> str:
    value = _field(body, key)
    if not EMAIL_RE.match(value):
        raise ValidationFailed("An error occurred while validating the submitted data.", {
            key: FieldError("validation_is_email", "Must be a valid email address")})
    return value


def render(template: str, values: dict[str, str], record: dict[str, Any]) -> str:
    """Fill ``{APP_NAME}``-style placeholders and ``{RECORD:field}`` (HTML-escaped)."""
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", html.escape(value))
    return re.sub(r"\{RECORD:(\w+)\}", lambda m: html.escape(str(record.get(m.group(1), ""))), out)


class AuthFlows:
    def __init__(
        self, db: Database, registry: Registry, settings: Settings, mailer: Callable[[], Mailer], *,
        cooldowns: Store | None = None, password_guard: Lockout | None = None,
        journal: Callable[[], WriteJournal] | None = None, hooks: Callable[[], Hooks] | None = None,
    ):
        self.db = db
        self.registry = registry
        self.settings = settings
        self.mailer = mailer
        self._sent: dict[tuple[str, str, str], float] = {}
        # Where the two-minute email cooldowns are counted: the shared Store (Redis when
        # several nodes serve the app), else this process.
        self.cooldowns = cooldowns
        # Counts wrong passwords at confirm-email-change, like sign-ins.
        self.password_guard = password_guard
        self._outbox: set[asyncio.Task[None]] = set()
        # Makes the journal of a write (``RecordService.journal``): its change is heard.
        self.journal = journal
        self.hooks = hooks  # the app's hooks (``on_mailer_send``)

    # -- helpers -------------------------------------------------------------------
    async def _by_email(self, col: Collection, email: str) -> Row | None:
        table = self.registry.table(col)
        async with self.db.read_brief() as conn:
            return await conn.fetch_one(sa.select(table).where(sa.func.lower(table.c.email) == email.lower()).limit(1))

    async def _by_id(self, col: Collection, record_id: str) -> Row | None:
        table = self.registry.table(col)
        async with self.db.read_brief() as conn:
            return await conn.fetch_one(sa.select(table).where(table.c.id == record_id))

    async def _update(self, col: Collection, record_id: str, values: dict[str, Any]) -> None:
        """Write ``values`` over the record; the change is heard once it committed (so a
        new tokenKey, say, unbinds the record's realtime clients)."""
        table = self.registry.table(col)
        journal = self.journal() if self.journal is not None else None
        try:
            async with self.db.transaction() as conn:
                before = None
                if journal is not None and journal.wants_changes:
                    before = await conn.fetch_one(self.registry.select_by_id(col), {"rid": record_id})
                await conn.execute(sa.update(table).where(table.c.id == record_id).values(values))
                if before is not None and journal is not None:
                    after = await conn.fetch_one(self.registry.select_by_id(col), {"rid": record_id})
                    if after is not None:
                        journal.record("update", col, Record(col, after), Record(col, before))
                if journal is not None:
                    await journal.seal(conn)
        except BaseException:
            if journal is not None:
                await journal.failed()
            raise
        if journal is not None:
            await journal.committed()

    def _token(self, col: Collection, record: Row, kind: str, **claims: Any) -> str:
        conf = col.auth[f"{kind}Token"]
        payload = {"id": record["id"], "collectionId": col.id, "type": kind, **claims}
        return tokens.sign(payload, record["tokenKey"] + conf["secret"], conf["duration"])

    async def _check_token(self, col: Collection, token: Any, kind: str) -> tuple[Row, dict[str, Any]]:
        def invalid(
            code: str = "validation_invalid_token", message: str = "Invalid or expired token",
        ) -> ValidationFailed:
            return ValidationFailed("An error occurred while validating the submitted data.", {
                "token": FieldError(code, message)})

        if not isinstance(token, str) or not token or len(token) > 4096:
            raise invalid()
        claims = tokens.unverified_claims(token)
        if not claims or claims.get("type") != kind or not isinstance(claims.get("id"), str):
            raise invalid()
        if claims.get("collectionId") != col.id:
            raise invalid("validation_token_collection_mismatch", "The token belongs to another collection")
        record = await self._by_id(col, claims["id"])
        if record is None or tokens.verify(token, record["tokenKey"] + col.auth[f"{kind}Token"]["secret"]) is None:
            raise invalid()
        return record, claims

    async def _cooling(self, col: Collection, record_id: str, kind: str) -> bool:
        """Whether an email of ``kind`` went to this record less than COOLDOWN seconds
        ago (then no new one is sent); a store that cannot be reached fails open to the
        count of this process."""
        if self.cooldowns is not None:
            try:
                count = await self.cooldowns.incr(f"mailcooldown:{col.id}:{record_id}:{kind}", COOLDOWN)
            except Unavailable:
                log.warning("the store is unreachable: the email cooldown is counted per process")
            else:
                return count.value > 1
        now = time.monotonic()
        key = (col.id, record_id, kind)
        if now - self._sent.get(key, -COOLDOWN) < COOLDOWN:
            return True
        self._sent[key] = now
        if len(self._sent) > 100_000:
            self._sent = {k: v for k, v in self._sent.items() if now - v < COOLDOWN}
        return False

    async def send_test(self, col: Collection, template: str, to: str) -> None:
        """Send one template with sample values (``POST /api/settings/test/email``)."""
        keys = {"verification": "verificationTemplate", "password-reset": "resetPasswordTemplate",
                "email-change": "confirmEmailChangeTemplate", "otp": "otp", "login-alert": "authAlert"}
        if template not in keys:
            raise ValidationFailed("Failed to send the test email.", {"template": FieldError(
                "validation_in_invalid", f"Must be one of {', '.join(keys)}")})
        sample = {"id": "test0000000000", "email": to}
        await self._mail(col, keys[template], sample, to, TOKEN="SAMPLE_TOKEN", OTP="12345678",
                         OTP_ID="SAMPLE_OTP_ID", ALERT_INFO="a sample sign-in")

    async def _mail(
        self, col: Collection, template_key: str, record: Row | dict[str, Any], to: str, **values: str
    ) -> None:
        if template_key in ("otp", "authAlert"):
            template = col.auth[template_key]["emailTemplate"]
        else:
            template = col.auth[template_key]
        meta = self.settings()["meta"]
        placeholders = {"APP_NAME": meta["appName"], "APP_URL": meta["appURL"], **values}
        subject = render(template["subject"], placeholders, dict(record))
        body = render(template["body"], placeholders, dict(record))
        if self.hooks is None or not self.hooks().mail.has(col):
            await self.mailer().send(to, subject, body)
            return
        event = MailEvent(template_key, col, dict(record), to, subject, body)

        async def send() -> None:
            await self.mailer().send(event.to, event.subject, event.html)

        await self.hooks().mail.run(event, col, send)

    def _mail_later(
        self, col: Collection, template_key: str, record: Row | dict[str, Any], to: str, **values: str
    ) -> None:
        """Send in the background, so the answer does not wait on SMTP (nor reveal by its
        timing that there was something to send)."""
        async def send() -> None:
            try:
                await self._mail(col, template_key, dict(record), to, **values)
            except Exception:  # noqa: BLE001 - a mail failure must not vanish silently
                log.exception("sending %s of %s to %s failed", template_key, col.name, to)

        task = asyncio.get_running_loop().create_task(send())
        self._outbox.add(task)
        task.add_done_callback(self._outbox.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for emails still being sent."""
        if self._outbox:
            await asyncio.wait(set(self._outbox), timeout=timeout)

    # -- verification --------------------------------------------------------------
    async def request_verification(self, col: Collection, body: Any) -> None:
        if col.name == SUPERUSERS:
            raise BadRequest("All superusers are verified by default.")
        record = await self._by_email(col, _email(body))
        if record is None or record["verified"] or await self._cooling(col, record["id"], "verification"):
            return
        token = self._token(col, record, "verification", email=record["email"])
        self._mail_later(col, "verificationTemplate", record, record["email"], TOKEN=token)

    async def confirm_verification(self, col: Collection, body: Any) -> None:
        record, claims = await self._check_token(col, _field(body, "token", 4096), "verification")
        if claims.get("email") != record["email"]:
            raise ValidationFailed("An error occurred while validating the submitted data.", {
                "token": FieldError("validation_token_email_mismatch", "The token email doesn't match")})
        if not record["verified"]:
            await self._update(col, record["id"], {"verified": True})

    # -- password reset ------------------------------------------------------------
    async def request_password_reset(self, col: Collection, body: Any) -> None:
        if not col.auth["passwordAuth"]["enabled"]:
            raise BadRequest("The collection is not configured to allow password authentication.")
        record = await self._by_email(col, _email(body))
        if record is None or await self._cooling(col, record["id"], "passwordReset"):
            return
        token = self._token(col, record, "passwordReset", email=record["email"])
        self._mail_later(col, "resetPasswordTemplate", record, record["email"], TOKEN=token)

    async def confirm_password_reset(self, col: Collection, body: Any) -> None:
        record, claims = await self._check_token(col, _field(body, "token", 4096), "passwordReset")
        password = _field(body, "password", 255)
        field = col.field("password")
        try:
            if isinstance(field, PasswordField):  # (an auth collection always has one)
                field.validate_plain(password)
        except FieldError as exc:
            raise ValidationFailed("An error occurred while validating the submitted data.", {
                "password": exc}) from None
        if body.get("passwordConfirm") != password:
            raise ValidationFailed("An error occurred while validating the submitted data.", {
                "passwordConfirm": FieldError("validation_values_mismatch", "Values don't match")})
        values: dict[str, Any] = {"password": await hash_password(password), "tokenKey": random_string(50)}
        if claims.get("email") == record["email"]:
            values["verified"] = True
        await self._update(col, record["id"], values)
        await self.forget_origins(col, record["id"])

    # -- email change --------------------------------------------------------------
    async def request_email_change(self, col: Collection, identity: AuthIdentity | None, body: Any) -> None:
        if identity is None or identity.collection.id != col.id:
            raise Unauthorized("The request requires valid record authorization token.")
        if col.name == SUPERUSERS:
            raise BadRequest("Superusers change their email through the superuser commands.")
        new_email = _email(body, "newEmail")
        taken = await self._by_email(col, new_email)
        if new_email.lower() == str(identity.record.get("email", "")).lower() or taken is not None:
            raise ValidationFailed("An error occurred while validating the submitted data.", {
                "newEmail": FieldError("validation_invalid_new_email", "Invalid new email address")})
        record = await self._by_id(col, identity.id)
        if record is None:
            return
        token = self._token(col, record, "emailChange", email=record["email"], newEmail=new_email)
        await self._mail(col, "confirmEmailChangeTemplate", record, new_email, TOKEN=token)

    async def confirm_email_change(self, col: Collection, body: Any) -> None:
        record, claims = await self._check_token(col, _field(body, "token", 4096), "emailChange")
        guard, who = self.password_guard, f"record#{record['id']}"  # the lock of oldPassword
        if guard is not None:
            await guard.begin_attempt(col, who)
        if not await verify_password(record["password"], _field(body, "password", 255)):
            if guard is not None:
                await guard.record_failure(col, who)
            raise ValidationFailed("An error occurred while validating the submitted data.", {
                "password": FieldError("validation_invalid_password", "Missing or invalid auth record password")})
        if guard is not None:
            await guard.record_success(col, who)
        new_email = claims.get("newEmail")
        if claims.get("email") != record["email"] or not isinstance(new_email, str):
            raise ValidationFailed("An error occurred while validating the submitted data.", {
                "token": FieldError("validation_token_email_mismatch", "The token email doesn't match")})
        if await self._by_email(col, new_email) is not None:
            raise ValidationFailed("An error occurred while validating the submitted data.", {
                "newEmail": FieldError("validation_invalid_new_email", "Invalid new email address")})
        await self._update(col, record["id"], {"email": new_email, "verified": True, "tokenKey": random_string(50)})

    # -- one-time passwords --------------------------------------------------------
    def _otp_table(self) -> sa.Table:
        return self.registry.table(self.registry.get(OTPS))

    async def request_otp(self, col: Collection, body: Any) -> str:
        if not col.auth["otp"]["enabled"]:
            raise Forbidden("The collection is not configured to allow OTP authentication.")
        email = _email(body)
        record = await self._by_email(col, email)
        otp_id = random_string(15, "abcdefghijklmnopqrstuvwxyz0123456789")
        length = max(4, int(col.auth["otp"]["length"]))
        code = random_string(length, "0123456789")
        hashed = await hash_password(code)  # for unknown emails too: the same time
        if record is None:
            return otp_id  # the same answer as for a known email
        table = self._otp_table()
        now = now_string()
        async with self.db.transaction() as conn:
            live = await conn.fetch_all(
                sa.select(table.c.id).where(table.c.collectionRef == col.id, table.c.recordRef == record["id"])
                .order_by(table.c.created.desc()))
            stale = [r["id"] for r in live[OTP_MAX_LIVE - 1:]]
            if stale:
                await conn.execute(sa.delete(table).where(table.c.id.in_(stale)))
            await conn.execute(sa.insert(table).values(
                id=otp_id, collectionRef=col.id, recordRef=record["id"], password=hashed,
                sentTo=record["email"], attempts=0, created=now, updated=now))
        self._mail_later(col, "otp", record, record["email"], OTP=code, OTP_ID=otp_id)
        return otp_id

    async def auth_with_otp(self, col: Collection, body: Any) -> AuthIdentity:
        if not col.auth["otp"]["enabled"]:
            raise Forbidden("The collection is not configured to allow OTP authentication.")
        otp_id, code = _field(body, "otpId"), _field(body, "password", 71)
        table = self._otp_table()
        async with self.db.transaction() as conn:
            stmt = sa.select(table).where(table.c.id == otp_id)
            row = await conn.fetch_one(stmt.with_for_update() if self.db.sql.row_locks else stmt)
            if row is None or row["collectionRef"] != col.id or _expired(row["created"], col.auth["otp"]["duration"]):
                raise BadRequest(INVALID_OTP)
            if not await verify_password(row["password"], code):
                attempts = int(row["attempts"] or 0) + 1
                if attempts >= OTP_MAX_ATTEMPTS:
                    await conn.execute(sa.delete(table).where(table.c.id == otp_id))
                else:
                    await conn.execute(sa.update(table).where(table.c.id == otp_id).values(attempts=attempts))
                failed = True
            else:
                await conn.execute(sa.delete(table).where(table.c.id == otp_id))
                failed = False
        if failed:
            raise BadRequest(INVALID_OTP)
        record = await self._by_id(col, row["recordRef"])
        if record is None:
            raise BadRequest(INVALID_OTP)
        record = dict(record)
        if not record["verified"] and str(record["email"]).lower() == str(row["sentTo"]).lower():
            values: dict[str, Any] = {"verified": True}
            if not col.auth["mfa"]["enabled"]:
                # Whoever registered this email before its owner proved it loses the
                # password they set (as in PocketBase): no pre-hijacked account survives.
                values.update(password=await hash_password(random_string(30)), tokenKey=random_string(50))
            await self._update(col, record["id"], values)
            if "password" in values:
                await self.forget_origins(col, record["id"])
            record.update(values)
        return AuthIdentity(col, record)

    # -- auth origins (new-device alerts) ------------------------------------------
    def _origins(self) -> sa.Table:
        return self.registry.table(self.registry.get(AUTH_ORIGINS))

    async def note_origin(self, identity: AuthIdentity, ip: str, user_agent: str) -> None:
        """Record the device of a completed sign-in; mail ``authAlert`` for a new one.

        The device is PocketBase's fingerprint: MD5 of the client IP and the user agent
        (cut at 200 characters). The first device of a record is not alerted; at most
        ``MAX_ORIGINS`` are kept, the oldest dropped first. Does nothing unless the
        collection's ``authAlert.enabled``.
        """
        col = identity.collection
        if not col.auth["authAlert"]["enabled"] or self.registry.find(AUTH_ORIGINS) is None:
            return
        agent = user_agent if len(user_agent) <= 200 else user_agent[:200] + "..."
        fingerprint = hashlib.md5((ip + agent).encode(), usedforsecurity=False).hexdigest()
        table = self._origins()
        async with self.db.read_brief() as conn:
            rows = await conn.fetch_all(sa.select(table.c.id, table.c.fingerprint, table.c.updated).where(
                table.c.collectionRef == col.id, table.c.recordRef == identity.id).order_by(table.c.created.desc()))
        now = now_string()
        known = next((r for r in rows if r["fingerprint"] == fingerprint), None)
        if known is not None:
            if _expired(known["updated"], int(ORIGIN_TOUCH)):  # no write on every sign-in
                async with self.db.transaction() as conn:
                    await conn.execute(sa.update(table).where(table.c.id == known["id"]).values(updated=now))
            return
        try:
            async with self.db.transaction() as conn:
                dropped = [r["id"] for r in rows[MAX_ORIGINS - 1:]]
                if dropped:
                    await conn.execute(sa.delete(table).where(table.c.id.in_(dropped)))
                await conn.execute(sa.insert(table).values(
                    id=random_string(15, "abcdefghijklmnopqrstuvwxyz0123456789"), collectionRef=col.id,
                    recordRef=identity.id, fingerprint=fingerprint, created=now, updated=now))
        except BastionError as exc:  # e.g. the same new device signing in twice at once
            log.warning("auth origin of %s/%s not recorded: %s", col.name, identity.id, exc.message)
            return
        email = str(identity.record.get("email") or "")
        if rows and email:
            self._mail_later(col, "authAlert", identity.record, email, ALERT_INFO=f"{now} - {ip} {agent}")

    async def forget_origins(self, col: Collection, record_id: str) -> None:
        """Forget a record's devices (after a password change, as PocketBase does)."""
        if self.registry.find(AUTH_ORIGINS) is None:
            return
        table = self._origins()
        async with self.db.transaction() as conn:
            await conn.execute(sa.delete(table).where(table.c.collectionRef == col.id, table.c.recordRef == record_id))


def _expired(created: str, duration: int) -> bool:
    try:
        return time.time() - parse_datetime(created).timestamp() > duration
    except ValueError:
        return True
