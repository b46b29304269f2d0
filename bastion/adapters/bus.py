"""Pick the ``core.ports.EventBus`` transport for a configuration."""

from __future__ import annotations

from pathlib import Path

from bastion.adapters.bus_frames import check_channel
from bastion.core.ports import EventBus
from bastion.core.realtime.service import MemoryBus

_POSTGRES = ("postgres://", "postgresql://", "postgresql+asyncpg://")


def open_bus(bus_url: str, database_url: str | None, shared: Path | None, index: int, channel: str) -> EventBus:
    """The bus for this process.

    * ``bus_url`` ``redis://`` or ``rediss://``: Redis pub/sub; ``nats://`` or ``tls://``: NATS;
    * no ``bus_url`` and a PostgreSQL ``database_url``: the database's LISTEN/NOTIFY;
    * no ``bus_url`` and ``shared``, the folder of ``bastion serve --workers``: Unix
      datagram sockets between the workers, ``index`` being this worker's number;
    * otherwise this process alone, in memory.

    ``channel`` names the stream of messages (1 to 63 letters, digits, ``_`` or ``-``):
    buses on different channels do not hear each other."""
    check_channel(channel)
    if bus_url.startswith(("redis://", "rediss://")):
        from bastion.adapters.bus_redis import RedisBus

        return RedisBus(bus_url, channel)
    if bus_url.startswith(("nats://", "tls://")):
        from bastion.adapters.bus_nats import NatsBus

        return NatsBus(bus_url, channel)
    if bus_url:
        raise ValueError(
            f"Unsupported bus URL {bus_url.split('://')[0]!r}://...: use redis://, rediss://, nats:// or tls://, "
            "or leave it empty to use PostgreSQL's LISTEN/NOTIFY (on PostgreSQL) or the workers' own sockets.")
    if database_url and database_url.startswith(_POSTGRES):
        from bastion.adapters.bus_postgres import PostgresBus
        from bastion.adapters.db_postgres import asyncpg_dsn

        return PostgresBus(asyncpg_dsn(database_url), channel)
    if shared is not None:
        from bastion.adapters.bus_local import SiblingBus

        folder = shared / channel
        folder.mkdir(mode=0o700, exist_ok=True)
        return SiblingBus(folder, index)
    return MemoryBus()
