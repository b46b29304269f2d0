"""Static configuration, read once from flags and ``BASTION_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str = ""
    migrations_dir: Path | None = None
    hooks_dir: Path | None = None  # the app's hook files (cli/hooks.py)
    dev: bool = False  # reload the hook files when they change
    http: str = "127.0.0.1:8090"
    origins: tuple[str, ...] = ("*",)
    body_limit: int = 32 * 1024 * 1024  # multipart bodies
    json_body_limit: int = 2 * 1024 * 1024  # every other body (JSON, urlencoded); at most body_limit
    query_timeout: float = 10.0  # every SQL statement, on every engine (0: no limit)
    shutdown_grace: float = 10.0
    read_timeout: float = 10.0  # request headers, and each chunk of a body, must arrive within this
    sqlite_busy_timeout: float = 10.0  # wait for another process's SQLite write lock, then 503
    redis_url: str = ""  # rate limits and sign-in lockout shared through Redis; empty: in memory
    encryption_key: str = ""  # seals TOTP secrets at rest (AES-256-GCM); empty: stored as they are
    workers: int = 1  # processes sharing the listening socket (cli/workers.py)
    bus_url: str = ""  # redis:// or nats://: realtime events between nodes; empty: PostgreSQL, siblings or none
    bus_channel: str = "bastion_events"  # the bus's channel: one per app sharing a broker
    webhooks_allow_private: bool = False  # deliver webhooks to loopback and private addresses too
    realtime_max_clients: int = 20_000  # realtime streams one process holds (then 503)
    realtime_max_per_ip: int = 500  # realtime streams from one address (then 429)
    realtime_idle: float = 300.0  # seconds a stream may go without a message
    realtime_lifetime: float = 1800.0  # seconds a stream lasts at most
    events_broker: str = ""  # memory, redis:// or nats://: the outbox of record events on; empty: off
    events_stream: str = "bastion_events"  # the Redis stream or JetStream stream events go to

    @property
    def migrations(self) -> Path:
        return self.migrations_dir or self.data_dir.resolve().parent / "bastion_migrations"

    @property
    def hooks(self) -> Path:
        return self.hooks_dir or self.data_dir.resolve().parent / "bastion_hooks"

    def host_port(self) -> tuple[str, int]:
        host, _, port = self.http.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--http must look like 127.0.0.1:8090, got {self.http!r}")
        return host.strip("[]"), int(port)


# The options every command shares.
DirOpt = Annotated[Path, typer.Option("--dir", envvar="BASTION_DIR", help="Data folder (SQLite file, files, logs).")]
DbOpt = Annotated[str, typer.Option(
    "--database-url", envvar="BASTION_DATABASE_URL",
    help="postgresql://... or mysql://... (MariaDB); empty for SQLite in --dir.")]
MigOpt = Annotated[Path | None, typer.Option(
    "--migrations-dir", envvar="BASTION_MIGRATIONS_DIR",
    help="Migration files folder (default: bastion_migrations beside --dir).")]
