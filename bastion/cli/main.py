"""``bastion`` — serve, manage superusers and run migrations."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bastion import __version__
from bastion.cli.config import Config, DbOpt, DirOpt, MigOpt
from bastion.cli.files import files_cli
from bastion.core.auth.secretbox import MIN_KEY_LENGTH

if TYPE_CHECKING:
    from bastion.core.app import App

T = TypeVar("T")

cli = typer.Typer(
    name="bastion", no_args_is_help=True, add_completion=False,
    help="Bastion: a backend in one package, speaking the PocketBase Web API.",
)
superuser_cli = typer.Typer(no_args_is_help=True, help="Manage superuser accounts.")
migrate_cli = typer.Typer(no_args_is_help=True, help="Apply, revert, list and create migrations.")
cli.add_typer(superuser_cli, name="superuser")
cli.add_typer(migrate_cli, name="migrate")
cli.add_typer(files_cli, name="files")

DEFAULT_DIR = Path("bastion_data")
MAX_WORKERS = 64


def _run(config: Config, work: Callable[[App], Awaitable[T]], apply_migrations: bool = True) -> T:
    # Imported here: the supervisor of ``serve --workers`` never loads the App.
    from bastion.cli.runner import run

    return run(config, work, apply_migrations)


def _config(data_dir: Path, database_url: str, migrations_dir: Path | None, **extra: Any) -> Config:
    return Config(data_dir=data_dir, database_url=database_url, migrations_dir=migrations_dir, **extra)


@cli.command()
def serve(
    data_dir: DirOpt = DEFAULT_DIR,
    database_url: DbOpt = "",
    migrations_dir: MigOpt = None,
    http: Annotated[str, typer.Option(envvar="BASTION_HTTP", help="Address to listen on.")] = "127.0.0.1:8090",
    origins: Annotated[str, typer.Option(
        envvar="BASTION_ORIGINS", help="Allowed CORS origins, comma separated.")] = "*",
    body_limit: Annotated[int, typer.Option(
        envvar="BASTION_BODY_LIMIT", help="Max request body in bytes (multipart/form-data).")] = 32 * 1024 * 1024,
    json_body_limit: Annotated[int, typer.Option(
        envvar="BASTION_JSON_BODY_LIMIT", min=1,
        help="Max request body in bytes for every other content type (JSON, urlencoded forms); at most --body-limit.",
    )] = 2 * 1024 * 1024,
    query_timeout: Annotated[float, typer.Option(
        envvar="BASTION_QUERY_TIMEOUT",
        help="Max seconds per SQL statement, on every database (then 503); 0: no limit.")] = 10.0,
    shutdown_grace: Annotated[float, typer.Option(
        envvar="BASTION_SHUTDOWN_GRACE", help="Seconds to drain requests on stop.")] = 10.0,
    redis_url: Annotated[str, typer.Option(
        envvar="BASTION_REDIS_URL",
        help="redis://host:6379/0 to share rate limits and sign-in lockout between nodes; empty: per process.")] = "",
    read_timeout: Annotated[float, typer.Option(
        envvar="BASTION_READ_TIMEOUT",
        help="Seconds a client may take to send request headers, and between two body chunks (then 408).")] = 10.0,
    sqlite_busy_timeout: Annotated[float, typer.Option(
        envvar="BASTION_SQLITE_BUSY_TIMEOUT",
        help="Seconds a SQLite write waits for a lock held by another process (then 503).")] = 10.0,
    encryption_key: Annotated[str, typer.Option(
        envvar="BASTION_ENCRYPTION_KEY", show_default=False,
        help="At least 32 characters: TOTP secrets are stored encrypted with it (AES-256-GCM). "
        "Keep it: without it they cannot be read.",
    )] = "",
    workers: Annotated[int, typer.Option(
        envvar="BASTION_WORKERS", min=0, max=MAX_WORKERS,
        help="Processes serving requests on the one address (use up to one per CPU core); "
        "0: one per core this process may run on.",
    )] = 1,
    hooks_dir: Annotated[Path | None, typer.Option(
        envvar="BASTION_HOOKS_DIR",
        help="Folder of the app's hook files (*.py with a setup(app) function; default: bastion_hooks "
        "beside --dir).")] = None,
    dev: Annotated[bool, typer.Option(
        "--dev", envvar="BASTION_DEV", help="Load the hook files again when one changes.")] = False,
    webhooks_allow_private: Annotated[bool, typer.Option(
        "--webhooks-allow-private", envvar="BASTION_WEBHOOKS_ALLOW_PRIVATE",
        help="Deliver webhooks to loopback, private and link-local addresses too (off: public ones only).",
    )] = False,
    bus_url: Annotated[str, typer.Option(
        envvar="BASTION_BUS_URL",
        help="redis://... or nats://... carrying realtime events between nodes; empty: PostgreSQL's "
        "LISTEN/NOTIFY on PostgreSQL, else between the --workers of this machine only.")] = "",
    bus_channel: Annotated[str, typer.Option(
        envvar="BASTION_BUS_CHANNEL",
        help="The bus channel (letters, digits, _): give each app sharing one broker its own.")] = "bastion_events",
    realtime_max_clients: Annotated[int, typer.Option(
        envvar="BASTION_REALTIME_MAX_CLIENTS", min=1,
        help="Realtime streams one process holds; more are answered 503.")] = 20_000,
    realtime_max_per_ip: Annotated[int, typer.Option(
        envvar="BASTION_REALTIME_MAX_PER_IP", min=1,
        help="Realtime streams one address may hold per process; more are answered 429.")] = 500,
    realtime_idle: Annotated[float, typer.Option(
        "--realtime-idle-timeout", envvar="BASTION_REALTIME_IDLE_TIMEOUT", min=0.1,
        help="Seconds a realtime stream may go without a message before it is closed.")] = 300.0,
    realtime_lifetime: Annotated[float, typer.Option(
        "--realtime-max-lifetime", envvar="BASTION_REALTIME_MAX_LIFETIME", min=0.1,
        help="Seconds after which a realtime stream is closed in any case (clients reconnect).")] = 1800.0,
    events_broker: Annotated[str, typer.Option(
        envvar="BASTION_EVENTS_BROKER",
        help="Turns on the outbox of record events and publishes them to: memory (Python consumers in "
        "this process), redis://... (Redis Streams) or nats://... (NATS JetStream); empty: off.")] = "",
    events_stream: Annotated[str, typer.Option(
        envvar="BASTION_EVENTS_STREAM",
        help="The Redis stream or JetStream stream events go to (letters, digits, _).")] = "bastion_events",
) -> None:
    """Start the HTTP server (API at /api/, docs at /api/docs)."""
    if workers == 0:
        workers = min(MAX_WORKERS, len(os.sched_getaffinity(0)))
    config = _config(
        data_dir, database_url, migrations_dir, http=http,
        origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
        body_limit=body_limit, json_body_limit=json_body_limit, query_timeout=query_timeout,
        shutdown_grace=shutdown_grace,
        redis_url=redis_url, read_timeout=read_timeout, sqlite_busy_timeout=sqlite_busy_timeout,
        encryption_key=encryption_key, workers=workers, hooks_dir=hooks_dir, dev=dev,
        bus_url=bus_url, bus_channel=bus_channel, webhooks_allow_private=webhooks_allow_private,
        realtime_max_clients=realtime_max_clients, realtime_max_per_ip=realtime_max_per_ip,
        realtime_idle=realtime_idle, realtime_lifetime=realtime_lifetime,
        events_broker=events_broker, events_stream=events_stream,
    )
    try:
        host, port = config.host_port()
        if not re.fullmatch(r"[A-Za-z0-9_]{1,60}", bus_channel):
            raise ValueError("--bus-channel must be 1 to 60 letters, digits or underscores")
        if not re.fullmatch(r"[A-Za-z0-9_]{1,60}", events_stream):
            raise ValueError("--events-stream must be 1 to 60 letters, digits or underscores")
        if events_broker and events_broker != "memory" and not re.match(r"(redis|rediss|nats|tls)://", events_broker):
            raise ValueError("--events-broker must be memory, redis://... or nats://...")
        if encryption_key and len(encryption_key) < MIN_KEY_LENGTH:
            raise ValueError(f"--encryption-key must be at least {MIN_KEY_LENGTH} characters long")
    except ValueError as exc:
        typer.secho(f"Error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if workers > 1:
        from bastion.cli.workers import serve_workers

        raise typer.Exit(serve_workers(config, host, port))
    from bastion.cli.server import serve_forever

    _run(config, lambda app: serve_forever(app, config, host, port))


@superuser_cli.command("upsert")
def superuser_upsert(
    email: str, password: str, data_dir: DirOpt = DEFAULT_DIR, database_url: DbOpt = "",
    migrations_dir: MigOpt = None,
) -> None:
    """Create a superuser, or set the password of an existing one."""
    outcome = _run(_config(data_dir, database_url, migrations_dir), lambda app: app.upsert_superuser(email, password))
    typer.echo(f"Superuser {email} {outcome}.")


superuser_cli.command("create", help="Same as upsert.")(superuser_upsert)


@migrate_cli.command("up")
def migrate_up(data_dir: DirOpt = DEFAULT_DIR, database_url: DbOpt = "", migrations_dir: MigOpt = None) -> None:
    """Apply every pending migration file."""
    done = _run(_config(data_dir, database_url, migrations_dir), lambda app: app.migrate_up(), apply_migrations=False)
    typer.echo("\n".join(f"Applied {name}" for name in done) or "No pending migrations.")


@migrate_cli.command("down")
def migrate_down(
    count: Annotated[int, typer.Argument(help="How many of the last applied migrations to revert.", min=1)] = 1,
    data_dir: DirOpt = DEFAULT_DIR, database_url: DbOpt = "", migrations_dir: MigOpt = None,
) -> None:
    """Revert the last applied migration(s)."""
    done = _run(
        _config(data_dir, database_url, migrations_dir), lambda app: app.migrate_down(count), apply_migrations=False)
    typer.echo("\n".join(f"Reverted {name}" for name in done) or "Nothing to revert.")


@migrate_cli.command("history")
def migrate_history(data_dir: DirOpt = DEFAULT_DIR, database_url: DbOpt = "", migrations_dir: MigOpt = None) -> None:
    """List migrations, applied and pending."""
    rows = _run(
        _config(data_dir, database_url, migrations_dir), lambda app: app.migration_history(), apply_migrations=False)
    if not rows:
        typer.echo("No migrations yet.")
    for row in rows:
        typer.echo(f"{'applied' if row.applied else 'pending'}  {row.file}")


@migrate_cli.command("create")
def migrate_create(name: str, data_dir: DirOpt = DEFAULT_DIR, migrations_dir: MigOpt = None) -> None:
    """Write a blank migration file to fill in."""
    if not re.match(r"^[\w -]{1,60}$", name):
        typer.secho("Error: the name may use letters, digits, spaces, - and _ (max 60).", fg="red", err=True)
        raise typer.Exit(2)
    from bastion.core.schema.migrations import MigrationFiles

    path = MigrationFiles(_config(data_dir, "", migrations_dir).migrations).write_blank(name)
    typer.echo(f"Created {path}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bastion {__version__}")
        raise typer.Exit()


@cli.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """Bastion: a backend in one package, speaking the PocketBase Web API."""


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    cli()
