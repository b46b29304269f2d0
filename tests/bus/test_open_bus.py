"""Which transport ``open_bus`` picks for a configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.adapters.bus import open_bus
from bastion.adapters.bus_local import SiblingBus
from bastion.adapters.bus_nats import NatsBus
from bastion.adapters.bus_postgres import PostgresBus
from bastion.adapters.bus_redis import RedisBus
from bastion.core.realtime.service import MemoryBus

PG = "postgresql://bob:s3cret@db.example:5433/app"


@pytest.mark.parametrize(("bus_url", "kind"), [
    ("redis://127.0.0.1:6379/0", RedisBus), ("rediss://cache.example:6380", RedisBus),
    ("nats://127.0.0.1:4222", NatsBus), ("tls://nats.example:4222", NatsBus),
])
def test_a_bus_url_picks_its_broker_whatever_the_database(bus_url: str, kind: type, tmp_path: Path) -> None:
    assert isinstance(open_bus(bus_url, PG, tmp_path, 0, "events"), kind)


@pytest.mark.parametrize("database_url", [PG, PG.replace("postgresql", "postgresql+asyncpg"),
                                          PG.replace("postgresql", "postgres")])
def test_postgresql_without_a_bus_url_uses_listen_notify(database_url: str, tmp_path: Path) -> None:
    bus = open_bus("", database_url, tmp_path, 1, "events")
    assert isinstance(bus, PostgresBus)
    assert bus.dsn == PG and bus.channel == "events"


@pytest.mark.parametrize("database_url", [None, "", "mysql://root@127.0.0.1/app"])
def test_workers_without_a_broker_use_sockets_in_their_shared_folder(database_url: str | None,
                                                                      tmp_path: Path) -> None:
    bus = open_bus("", database_url, tmp_path, 3, "events")
    assert isinstance(bus, SiblingBus)
    assert bus.path == tmp_path / "events" / "bus-3.sock"  # one folder per channel


@pytest.mark.parametrize("database_url", [None, "", "mysql://root@127.0.0.1/app", "sqlite:///data.db"])
def test_one_process_without_a_broker_keeps_its_messages_in_memory(database_url: str | None) -> None:
    assert isinstance(open_bus("", database_url, None, 0, "events"), MemoryBus)


@pytest.mark.parametrize("bus_url", ["amqp://guest@127.0.0.1", "kafka://x", "127.0.0.1:6379", "postgresql://x/y"])
def test_an_unknown_bus_url_is_refused_naming_what_works(bus_url: str) -> None:
    with pytest.raises(ValueError, match=r"redis://, rediss://, nats:// or tls://"):
        open_bus(bus_url, None, None, 0, "events")


def test_a_channel_unfit_for_some_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="channel"):
        open_bus("", None, None, 0, "bastion.events")
