"""Running one piece of work against a started App, with errors written for a person."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from bastion.adapters.database import open_database
from bastion.adapters.mailer_smtp import SmtpMailer
from bastion.adapters.web_httpx import HttpxWebClient
from bastion.cli.config import Config
from bastion.core.app import App
from bastion.core.errors import BastionError

T = TypeVar("T")


def build_app(config: Config) -> App:
    db = open_database(config.database_url, config.data_dir, config.query_timeout, config.sqlite_busy_timeout)
    app = App(db, config.migrations, config.encryption_key, web=HttpxWebClient())
    app.mailer = SmtpMailer(lambda: app.settings.current)
    return app


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (a dependency): a faster event loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(config: Config, work: Callable[[App], Awaitable[T]], apply_migrations: bool = True) -> T:
    async def main() -> T:
        app = build_app(config)
        try:
            await app.start(apply_migrations=apply_migrations)
            return await work(app)
        finally:
            await app.close()

    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main())
    except BastionError as exc:
        typer.secho(f"Error: {exc.message}", fg="red", err=True)
        for key, value in exc.data.items():
            typer.secho(f"  {key}: {getattr(value, 'message', value)}", fg="red", err=True)
        raise typer.Exit(1) from None
    except (OSError, ValueError) as exc:
        typer.secho(f"Error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
