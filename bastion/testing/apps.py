"""Apps on throwaway databases, bootstrapped once per engine and copied for each test.

Starting an App on an empty database creates the system collections, and creating the
superuser hashes its password (argon2, deliberately slow). :class:`Templates` does that
once per engine, signs the superuser in once, and then gives each caller a copy of that
database: every App is on a database of its own, and starts in a fraction of the time.
The superuser's token stays valid in every copy, since the copy holds the same record and
the same signing secrets.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bastion.adapters.database import open_database
from bastion.adapters.files import storage_factory
from bastion.adapters.mailer_smtp import SmtpMailer
from bastion.adapters.store_memory import MemoryStore
from bastion.core.app import App
from bastion.testing.client import SUPERUSER_EMAIL, SUPERUSER_PASSWORD, test_client
from bastion.testing.databases import DatabaseMaker, TemporaryDatabase, engines, unique_name


@dataclass(frozen=True)
class Template:
    """A bootstrapped database: system collections and the superuser, and its token."""

    database: TemporaryDatabase
    superuser_token: str


def app_on(database: TemporaryDatabase, folder: Path, **ports: Any) -> App:
    """An App (not yet started) on ``database``, with migrations in ``folder / "migrations"``.

    Its ports are a serving App's (SMTP mail, which stays off until the settings turn it
    on, see :func:`~bastion.testing.catch_mail`; rate limits and lockouts counted in
    memory; files in the database's data folder, under ``storage``, as ``bastion serve
    --dir`` keeps them) unless ``ports`` (``App``'s keyword arguments) say otherwise."""
    given: dict[str, Any] = {"mailer": SmtpMailer, "store": MemoryStore(),
                             "storage": storage_factory(database.data_dir / "storage"), **ports}
    return App(open_database(database.url, database.data_dir), folder / "migrations", **given)


@asynccontextmanager
async def started(app: App, superuser: bool = True) -> AsyncIterator[App]:
    """Start ``app`` (bootstrap included), create the superuser when asked, close it after."""
    await app.start()
    try:
        if superuser:
            await app.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
        yield app
    finally:
        await app.close()


async def _all(jobs: list[Awaitable[TemporaryDatabase | None]]) -> list[TemporaryDatabase | None]:
    """Run ``jobs`` at once; raise the first failure once all have finished."""
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)  # type: ignore[arg-type]  # no exception is left


class Templates:
    """One bootstrapped database per engine, built on first use, copied for each App.

    On PostgreSQL and MariaDB copies are made ``batch`` at a time and dropped ``batch``
    at a time (see :meth:`discard`): the server does a few at once in about the time of
    one. The next batch is made in the background (a task on the running event loop)
    once half of the current one is used. ``folder`` holds the SQLite template; call
    :meth:`close` at the end to drop the databases left on the servers."""

    def __init__(self, folder: Path, available: dict[str, DatabaseMaker] | None = None, batch: int = 6) -> None:
        self.folder = folder
        self.engines = available or engines()
        self.batch = batch
        self._built: dict[str, Template] = {}
        self._ready: dict[str, list[TemporaryDatabase]] = {}
        self._used: dict[str, list[TemporaryDatabase]] = {}
        self._filling: dict[str, asyncio.Future[None]] = {}

    async def template(self, engine: str) -> Template:
        """The template of ``engine``, built now if it is the first call."""
        if engine not in self._built:
            self._built[engine] = await self._build(self.engines[engine])
        return self._built[engine]

    async def _build(self, engine: DatabaseMaker) -> Template:
        where = self.folder / f"template-{engine.name}"
        database = await engine.create(where / "data", unique_name("bt_tpl"))
        async with started(app_on(database, where)) as app, test_client(app) as client:
            token = client.superuser_token
        return Template(database, token)

    async def copy(self, engine: str, folder: Path) -> tuple[TemporaryDatabase, str]:
        """A new database on ``engine`` copied from its template, and the superuser token.

        On SQLite the copy is ``folder / "data" / "data.db"``."""
        template = await self.template(engine)
        maker = self.engines[engine]
        if not maker.copies_in_batches:
            return await maker.copy(template.database, folder / "data"), template.superuser_token
        ready = self._ready.setdefault(engine, [])
        filling = self._filling.get(engine)
        if filling is not None and (filling.done() or not ready):
            del self._filling[engine]
            await filling  # its copies are in ``ready`` now (or its failure is raised here)
        if not ready:
            await self._fill(maker, template)
        database = ready.pop()
        if len(ready) <= self.batch // 2 and engine not in self._filling:
            self._filling[engine] = asyncio.ensure_future(self._fill(maker, template))
        return replace(database, data_dir=folder / "data"), template.superuser_token

    async def _fill(self, maker: DatabaseMaker, template: Template) -> None:
        made = await _all([maker.copy(template.database, self.folder) for _ in range(self.batch)])
        self._ready.setdefault(maker.name, []).extend(db for db in made if db is not None)

    async def discard(self, database: TemporaryDatabase) -> None:
        """Drop a copy, now or with the next few (nothing may use it any more)."""
        maker = self.engines[database.engine]
        if not maker.copies_in_batches:
            await maker.drop(database)
            return
        used = self._used.setdefault(database.engine, [])
        used.append(database)
        if len(used) >= self.batch:
            await self._drop(maker, used)

    @staticmethod
    async def _drop(maker: DatabaseMaker, databases: list[TemporaryDatabase]) -> None:
        doomed = list(databases)
        databases.clear()
        await _all([_dropped(maker, database) for database in doomed])

    async def close(self) -> None:
        """Drop every database still held: templates, unused copies, discarded ones."""
        for filling in self._filling.values():
            await asyncio.gather(filling, return_exceptions=True)
        self._filling.clear()
        for pending in (self._ready, self._used):
            for engine, databases in pending.items():
                await self._drop(self.engines[engine], databases)
        for engine, template in self._built.items():
            await self.engines[engine].drop(template.database)
        self._built.clear()


async def _dropped(maker: DatabaseMaker, database: TemporaryDatabase) -> None:
    await maker.drop(database)


@asynccontextmanager
async def temporary_app(engine: str = "sqlite", folder: Path | None = None,
                        templates: Templates | None = None, **ports: Any) -> AsyncIterator[App]:
    """A started App on a database of its own, with a superuser; dropped on exit.

    ``engine`` is ``sqlite``, ``postgres`` or ``mariadb``. ``folder`` holds the SQLite file
    and the migrations folder (a temporary directory when omitted). With ``templates`` the
    database is a copy of that engine's template, which is much faster when many apps are
    made; without, it is bootstrapped from empty. ``ports`` are ``App``'s keyword arguments
    (``store=``, ``lockout=``, ``mailer=`` ...), as in :func:`app_on`.

    The superuser signs in with ``SUPERUSER_EMAIL`` / ``SUPERUSER_PASSWORD``::

        async with temporary_app("postgres") as app, test_client(app) as client:
            res = await client.get("/api/collections", headers=client.su())
    """
    maker = (templates.engines if templates else engines())[engine]
    with tempfile.TemporaryDirectory(prefix="bastion-test-") as scratch:
        where = folder or Path(scratch)
        if templates is not None:
            database, _token = await templates.copy(engine, where)
        else:
            database = await maker.create(where / "data")
        try:
            async with started(app_on(database, where, **ports), superuser=templates is None) as app:
                yield app
        finally:
            await (templates.discard(database) if templates else maker.drop(database))
