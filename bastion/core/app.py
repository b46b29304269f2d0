"""The App: storage, schema registry and services, started and stopped as one."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bastion.core.access import Access, AuthIdentity, RequestInfo
from bastion.core.auth.api_keys import PREFIX as API_KEY_PREFIX
from bastion.core.auth.api_keys import ApiKeyScope, ApiKeyService
from bastion.core.auth.flows import AuthFlows
from bastion.core.auth.mfa import MfaService
from bastion.core.auth.oauth2 import OAuth2Service
from bastion.core.auth.ratelimit import Lockout, LockoutPolicy
from bastion.core.auth.secretbox import SecretBox
from bastion.core.auth.service import AuthService
from bastion.core.errors import BadRequest, BastionError
from bastion.core.events.relay import RelayPolicy
from bastion.core.events.service import Events
from bastion.core.files.service import FileService
from bastion.core.hooks.cron import CronRunner
from bastion.core.hooks.jobs import Jobs
from bastion.core.hooks.records import HookDecorators, Hooks
from bastion.core.hooks.webhooks import JOB, Webhooks
from bastion.core.ports import (
    Alone,
    Database,
    EventBus,
    EventPublisher,
    Mailer,
    MailerFactory,
    Offline,
    Siblings,
    StorageFactory,
    WebClient,
)
from bastion.core.realtime.checks import Checks
from bastion.core.realtime.dispatch import Dispatcher
from bastion.core.realtime.hub import Hub, Limits
from bastion.core.realtime.service import Realtime
from bastion.core.records.batch import BatchService
from bastion.core.records.changes import RecordChange
from bastion.core.records.expand import Expander
from bastion.core.records.filters import Filters
from bastion.core.records.record import Record
from bastion.core.records.service import RecordService
from bastion.core.schema.collections import Collection
from bastion.core.schema.migrations import MigrationFiles
from bastion.core.schema.registry import Registry
from bastion.core.schema.service import CollectionService
from bastion.core.schema.system_collections import (
    API_KEYS,
    AUTH_ORIGINS,
    AUTHENTICATORS,
    EXTERNAL_AUTHS,
    MFAS,
    OTPS,
    SUPERUSERS,
    api_keys_definition,
    auth_origins_definition,
    authenticators_definition,
    external_auths_definition,
    mfas_definition,
    otps_definition,
    superusers_definition,
    users_definition,
)
from bastion.core.schema.tables import system_tables
from bastion.core.settings.service import SettingsService
from bastion.core.store import Store

log = logging.getLogger("bastion")


@dataclass(frozen=True)
class MigrationStatus:
    file: str
    applied: bool


class MigrationContext:
    """What a migration file's ``up``/``down`` receive as ``app``."""

    def __init__(self, app: App):
        self._app = app

    async def apply_snapshot(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        await self._app.collections.apply_snapshot(before, after)

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        async with self._app.db.transaction() as conn:
            await conn.execute(sa.text(sql).bindparams(**(params or {})))


class DroppingMailer:
    """The mailer of an App given none (the CLI gives SMTP): logs and drops messages."""

    def __init__(self, settings: Callable[[], dict[str, Any]] | None = None):
        pass

    async def send(self, to: str, subject: str, html: str) -> None:
        log.warning("no mailer configured; email to %s dropped", to)


class App(HookDecorators):
    def __init__(
        self, db: Database, migrations_dir: Path | None = None, encryption_key: str = "", *,
        web: WebClient | None = None, mailer: MailerFactory = DroppingMailer, store: Store | None = None,
        lockout: LockoutPolicy | None = None, siblings: Siblings | None = None,
        storage: StorageFactory | None = None, clock: Callable[[], float] = time.time,
        bus: EventBus | None = None, realtime: Limits | None = None, webhooks_allow_private: bool = False,
        events: EventPublisher | None = None, events_policy: RelayPolicy | None = None,
    ):
        """The App with its ports, all given here (``cli/`` and ``bastion.testing`` wire them):

        - ``db``: the database;
        - ``web``: the outbound HTTP client OAuth2 sign-ins use (none: providers are
          unreachable and left out of ``auth-methods``);
        - ``mailer``: makes the mailer from a reader of the current settings (default:
          emails are logged and dropped);
        - ``store``: where rate-limit counters, sign-in lockouts and email cooldowns are
          counted, shared by every process that shares it (none: rate limits and
          lockouts are off, cooldowns counted in this process);
        - ``lockout``: when repeated wrong passwords lock an identity;
        - ``siblings``: the other worker processes of this machine, told of each schema
          or settings change (none: this process serves alone);
        - ``storage``: opens the file storage the ``s3`` settings choose (none: uploads
          are refused and every download is a 404);
        - ``clock``: the time lockouts are counted in (seconds);
        - ``bus``: carries committed changes to every process serving realtime
          subscribers (none: this process alone); ``realtime``: its stream limits;
        - ``webhooks_allow_private``: webhooks may be delivered to loopback and private
          addresses (off: public addresses only);
        - ``events``: the broker the outbox relay publishes record events to (none: the
          outbox is off and writes nothing); ``events_policy``: the relay's pacing."""
        self.db = db
        self.store = store
        self.lockout = Lockout(store, lockout, clock=clock)
        self.registry = Registry(db.sql)
        self.files = MigrationFiles(migrations_dir) if migrations_dir else None
        self.filters = Filters(self.registry, db.sql.rules)
        self.access = Access(self.filters)
        self.collections = CollectionService(db, self.registry, self.files, self.filters)
        self.records = RecordService(db, self.registry, self.access, self.filters, password_guard=self.lockout)
        self.auth = AuthService(db, self.registry)
        self.expander = Expander(db, self.registry, self.access, self.records.to_api_rows)
        self.settings = SettingsService(db)
        self.mailer: Mailer = mailer(lambda: self.settings.current)
        self.storage = storage
        self.file_service = FileService(db, self.registry, self.access, lambda: self.settings.current, storage)
        self.records.files = self.file_service
        self.collections.records_gone.append(self.file_service.forget_collection)
        self.api_keys = ApiKeyService(db, self.registry)
        self.mfa = MfaService(db, self.registry, self.filters, lambda: self.settings.current["meta"]["appName"],
                              SecretBox(encryption_key))
        self.flows = AuthFlows(db, self.registry, lambda: self.settings.current, lambda: self.mailer,
                               cooldowns=store, password_guard=self.lockout, journal=self.records.journal,
                               hooks=lambda: self.hooks)
        self.batch = BatchService(db, self.registry, self.records, self.settings)
        self.oauth2 = OAuth2Service(db, self.registry, self.records, web or Offline())
        hub = Hub(realtime)
        dispatcher = Dispatcher(hub, self.registry, Checks(db, self.registry, self.filters), self.records,
                                self.expander, self.api_keys, lambda: self.settings.current)
        self.realtime = Realtime(hub, dispatcher, self.registry, self._identify, bus)
        self.records.listeners.append(self.realtime.committed)
        # The app's own Python code around writes and reads (``core/hooks``), registered
        # with the ``on_...`` decorators this class inherits.
        self.hooks = Hooks()
        self.records.hooks = self.hooks
        self.routes_changed: list[Callable[[], None]] = []  # the web layer, told of new custom routes
        self.records.listeners.append(self._hooks_committed)
        self.events = Events(db, events, self._as_superuser_sees, events_policy)
        if self.events.relay is not None:
            self.records.sealers.append(self.events.outbox.seal)
            self.records.listeners.append(self.events.relay.committed)
        self._tables = system_tables(db.sql)
        self.idempotency = self._tables["_idempotency"]  # answers kept for repeated requests
        # Queues background jobs and runs them (started by the server: ``jobs.run_forever``).
        self.jobs = Jobs(db, self._tables["_jobs"], lambda: {**self.hooks.jobs, JOB: self.webhooks.kind})
        # Record changes to registered endpoints, queued as jobs in each write's transaction.
        self.webhooks_allow_private = webhooks_allow_private
        self.webhooks = Webhooks(db, self._tables["_webhooks"], self.jobs, web or Offline(),
                                 lambda change: self._as_superuser_sees(change.collection, change.record),
                                 lambda: self.webhooks_allow_private)
        self.records.sealers.append(self.webhooks)
        # Runs the hooks' cron jobs, each once per due minute across processes (started
        # by the server: ``crons.run_forever``).
        self.crons = CronRunner(db, self._tables["_params"], lambda: sorted(self.hooks.crons.values(),
                                                                           key=lambda j: j.id))
        # Worker processes of one machine (``bastion serve --workers``) announce each
        # schema or settings change to one another; see ``catch_up``.
        self.siblings: Siblings = siblings or Alone()
        self.collections.after_change.append(self._announce)
        self.settings.after_change.append(self._announce)
        self._catching_up = asyncio.Lock()
        self._heard = False  # another node announced a change (PostgreSQL NOTIFY)

    async def _hooks_committed(self, changes: Sequence[RecordChange]) -> None:
        await self.hooks.committed(changes)

    def use_hooks(self, hooks: Hooks) -> None:
        """Run with ``hooks`` from now on (hook files loaded again, ``serve --dev``); the
        web layer serves their routes from now on too."""
        self.hooks = hooks
        self.records.hooks = hooks
        for changed in self.routes_changed:
            changed()

    async def _identify(self, token: str) -> tuple[AuthIdentity | None, ApiKeyScope | None]:
        """Who a token is, for realtime: an auth record, an API key, or a guest."""
        if token.startswith(API_KEY_PREFIX):
            return None, await self.api_keys.identify(token)
        return (await self.auth.identify(token) if token else None), None

    def _as_superuser_sees(self, col: Collection, record: Record) -> dict[str, Any]:
        """A record as the API shows it to a superuser (hidden fields, secret fields left
        out): what events and webhooks carry."""
        superuser = RequestInfo(auth=AuthIdentity(self.registry.get(SUPERUSERS), {"id": ""}))
        return self.records.to_api(col, record, superuser)

    def _announce(self) -> None:
        self.siblings.announce()

    def _hear_change(self) -> None:
        self._heard = True

    def behind(self) -> bool:
        """Whether a sibling worker or another node announced a change not caught up with."""
        return self._heard or self.siblings.stale()

    async def catch_up(self) -> None:
        """Reload the schema and settings a sibling worker or another node announced a
        change of.

        Called before a request when ``behind()``; requests arriving meanwhile
        wait for the same reload instead of starting their own. If the reload fails
        (the database is unreachable) the announcement stays pending and the next
        request tries again."""
        async with self._catching_up:
            if not self.behind():
                return
            mark, self._heard = self.siblings.mark(), False
            try:
                await self.collections.reload_if_changed()
                await self.settings.reload_if_changed()
            except BaseException:
                self._heard = True  # still behind: the next request tries again
                raise
            self.siblings.caught_up(mark)

    async def start(self, apply_migrations: bool = True) -> list[str]:
        """Create system tables, load the schema, bootstrap, apply pending migrations."""
        await self.db.start()
        async with self.db.transaction() as conn:
            for table in self._tables.values():
                await conn.ddl(sa.schema.CreateTable(table, if_not_exists=True))
                for index in table.indexes:
                    await conn.ddl(sa.schema.CreateIndex(index, if_not_exists=True))
        await self.collections.load()
        await self.settings.load()
        if self.registry.find(SUPERUSERS) is None:
            await self.collections.create(superusers_definition(), migrate=False, trusted=True)
            if self.registry.find("users") is None:
                await self.collections.create(users_definition(), migrate=False, trusted=True)
        for name, definition in ((OTPS, otps_definition), (MFAS, mfas_definition),
                                 (AUTHENTICATORS, authenticators_definition),
                                 (EXTERNAL_AUTHS, external_auths_definition), (AUTH_ORIGINS, auth_origins_definition),
                                 (API_KEYS, api_keys_definition)):
            if self.registry.find(name) is None:
                await self.collections.create(definition(), migrate=False, trusted=True)
        done = await self.migrate_up() if apply_migrations else []
        await self.realtime.start()
        self.events.start()
        return done

    async def watch_schema(self, interval: float = 2.0) -> None:
        """Learn of schema and settings changes made on other nodes: at once where the
        database announces them (PostgreSQL LISTEN/NOTIFY: the next request catches
        up), and by polling the stored versions every ``interval`` everywhere.

        While the database is unreachable this logs once when the checks start failing
        (with the cause) and once when they succeed again, not every ``interval``."""
        listener = asyncio.create_task(self.db.listen_for_changes(self._hear_change))
        try:
            await self._poll_schema(interval)
        finally:
            listener.cancel()

    async def _poll_schema(self, interval: float) -> None:
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.collections.reload_if_changed():
                    log.info("schema changed on another node; reloaded")
                if await self.settings.reload_if_changed():
                    log.info("settings changed on another node; reloaded")
            except BastionError as exc:  # the database is down or busy: keep watching
                if not failing:
                    log.warning("schema version check failed (%s); retrying every %g s", exc, interval)
                failing = True
                continue
            except Exception:  # noqa: BLE001 - anything else is a bug worth its traceback
                log.warning("schema version check failed", exc_info=True)
                continue
            if failing:
                log.info("schema version check works again")
                failing = False

    async def close(self) -> None:
        """Stop: close realtime streams, wait for emails being sent, then close the
        database and the other ports."""
        await self.realtime.close()
        await self.jobs.close()
        await self.flows.drain()
        await self.events.close()
        await self.db.close()
        if self.store is not None:
            await self.store.aclose()
        close_storage = getattr(self.storage, "close", None)
        if close_storage is not None:
            await close_storage()
        self.siblings.close()

    # -- migrations ----------------------------------------------------------------
    async def _applied(self) -> dict[str, int]:
        t = self._tables["_migrations"]
        async with self.db.read() as conn:
            rows = await conn.fetch_all(sa.select(t.c.file, t.c.applied))
        return {r["file"]: r["applied"] for r in rows}

    async def migrate_up(self) -> list[str]:
        if self.files is None:
            return []
        applied = await self._applied()
        done = []
        t = self._tables["_migrations"]
        for mf in self.files.list():
            if mf.name in applied:
                continue
            module = self.files.load(mf.path)
            await module.up(MigrationContext(self))
            async with self.db.transaction() as conn:
                await conn.execute(sa.insert(t).values(file=mf.name, applied=time.time_ns() // 1000))
            done.append(mf.name)
            log.info("applied migration %s", mf.name)
        return done

    async def migrate_down(self, count: int = 1) -> list[str]:
        if self.files is None:
            return []
        applied = await self._applied()
        paths = {mf.name: mf.path for mf in self.files.list()}
        order = sorted(applied, key=lambda name: (applied[name], name), reverse=True)
        t = self._tables["_migrations"]
        reverted = []
        for name in order[:count]:
            if name not in paths:
                raise BadRequest(f"Cannot revert {name}: its file is missing from the migrations folder.")
            module = self.files.load(paths[name])
            await module.down(MigrationContext(self))
            async with self.db.transaction() as conn:
                await conn.execute(sa.delete(t).where(t.c.file == name))
            reverted.append(name)
        return reverted

    async def migration_history(self) -> list[MigrationStatus]:
        applied = await self._applied()
        names = sorted(set(applied) | {mf.name for mf in (self.files.list() if self.files else [])})
        return [MigrationStatus(n, n in applied) for n in names]

    # -- superusers ----------------------------------------------------------------
    async def has_superuser(self) -> bool:
        col = self.registry.get(SUPERUSERS)
        table = self.registry.table(col)
        async with self.db.read() as conn:
            return bool(await conn.scalar(sa.select(sa.func.count()).select_from(table)))

    async def upsert_superuser(self, email: str, password: str) -> str:
        """Create the superuser or set its password; return "created" or "updated"."""
        col = self.registry.get(SUPERUSERS)
        table = self.registry.table(col)
        async with self.db.read() as conn:
            row = await conn.fetch_one(sa.select(table.c.id).where(sa.func.lower(table.c.email) == email.lower()))
        system = RequestInfo(auth=AuthIdentity(col, {"id": ""}))
        body = {"email": email, "password": password, "passwordConfirm": password}
        if row is None:
            await self.records.create(system, col, body)
            return "created"
        await self.records.update(system, col, row["id"], body)
        return "updated"
