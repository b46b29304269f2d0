"""Running one piece of work against a started App, with errors written for a person."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer

from bastion.adapters.database import open_database
from bastion.adapters.events import open_publisher
from bastion.adapters.files import storage_factory
from bastion.adapters.hook_files import HookFileError, load_hooks
from bastion.adapters.mailer_smtp import SmtpMailer
from bastion.adapters.siblings import MappedSiblings
from bastion.adapters.store_memory import MemoryStore
from bastion.adapters.web_httpx import HttpxWebClient
from bastion.cli.config import Config
from bastion.core.app import App
from bastion.core.errors import BastionError
from bastion.core.ports import EventBus
from bastion.core.realtime.hub import Limits
from bastion.core.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerPlace:
    """What one process of ``--workers N`` is given by the supervisor."""

    index: int
    sock: socket.socket  # the listening socket, shared by every worker
    shared: Path  # a folder of the supervisor's: the siblings' mark and the shared store

    @property
    def mark_file(self) -> Path:
        return self.shared / "mark"

    @property
    def store_file(self) -> Path:
        return self.shared / "store.db"


def build_app(config: Config, place: WorkerPlace | None = None) -> App:
    """The App for ``config`` with every port wired; ``place`` makes it one worker of
    ``--workers`` (its siblings and their shared store)."""
    db = open_database(config.database_url, config.data_dir, config.query_timeout, config.sqlite_busy_timeout)
    return App(db, config.migrations, config.encryption_key, web=HttpxWebClient(), mailer=SmtpMailer,
               store=_store(config, place), storage=storage_factory(config.data_dir / "storage"),
               siblings=MappedSiblings(place.mark_file) if place is not None else None,
               bus=_bus(config, place), webhooks_allow_private=config.webhooks_allow_private,
               events=open_publisher(config.events_broker, config.events_stream),
               realtime=Limits(config.realtime_max_clients, config.realtime_max_per_ip, config.realtime_idle,
                               config.realtime_lifetime))


def _bus(config: Config, place: WorkerPlace | None) -> EventBus | None:
    """The realtime event bus: the one ``--bus-url`` names; PostgreSQL's own; the
    siblings' of ``--workers``; none for one process on SQLite or MySQL."""
    if not config.bus_url and not config.database_url.startswith("postgres") and place is None:
        return None
    from bastion.adapters.bus import open_bus

    return open_bus(config.bus_url, config.database_url or None, place.shared if place is not None else None,
                    place.index if place is not None else 0, config.bus_channel)


def _store(config: Config, place: WorkerPlace | None) -> Store:
    if config.redis_url:
        from bastion.adapters.store_redis import RedisStore  # loads redis only when asked for

        return RedisStore(config.redis_url)
    if place is not None:  # the workers of one machine count together
        from bastion.adapters.store_sqlite import SqliteStore

        return SqliteStore(place.store_file)
    return MemoryStore()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (a dependency): a faster event loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(
    config: Config, work: Callable[[App], Awaitable[T]], apply_migrations: bool = True,
    place: WorkerPlace | None = None,
) -> T:
    async def main() -> T:
        app = build_app(config, place)
        load_hooks(app, config.hooks)
        try:
            await app.start(apply_migrations=apply_migrations)
            return await work(app)
        finally:
            await app.close()

    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main())
    except HookFileError as exc:
        typer.secho(f"Error in a hook file: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    except BastionError as exc:
        typer.secho(f"Error: {exc.message}", fg="red", err=True)
        for key, value in exc.data.items():
            typer.secho(f"  {key}: {getattr(value, 'message', value)}", fg="red", err=True)
        raise typer.Exit(1) from None
    except (OSError, ValueError) as exc:
        typer.secho(f"Error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
