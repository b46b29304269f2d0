"""The bus over PostgreSQL's LISTEN/NOTIFY, two buses standing for two processes."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from bastion.adapters.bus import open_bus
from bastion.adapters.bus_postgres import PostgresBus
from bastion.adapters.db_postgres import asyncpg_dsn
from bastion.core.ports import EventBus
from tests.bus.helpers import BusContract, Inbox, channel_name, resumed, settle, unreachable
from tests.services import ENGINES, require_or_skip


def postgres_url() -> str:
    """The suite's PostgreSQL server (its administrative database: LISTEN needs no table)."""
    maker = ENGINES["postgres"]
    problem = maker.unavailable()
    if problem:
        require_or_skip(problem)
    return maker.admin_url  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def url() -> str:
    return postgres_url()


class TestPostgresBus(BusContract):
    @pytest.fixture(autouse=True)
    def _server(self, url: str) -> None:
        # the SQLAlchemy form, as the configuration gives it
        self.url = url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def make(self, channel: str) -> EventBus:
        bus = open_bus("", self.url, None, 0, channel)
        assert isinstance(bus, PostgresBus)
        return bus


async def test_delivery_resumes_after_the_listening_connections_are_killed(
        url: str, caplog: pytest.LogCaptureFixture) -> None:
    channel = channel_name()
    buses = [PostgresBus(asyncpg_dsn(url), channel) for _ in range(2)]
    inboxes = [Inbox(), Inbox()]
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for bus, inbox in zip(buses, inboxes, strict=True):
            await bus.start(inbox)
        with caplog.at_level(logging.INFO, logger="bastion.bus"):
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                f"bastion-bus-{channel}-listen")
            assert killed == 2
            await resumed(buses[0], inboxes)
        assert "listening on PostgreSQL failed" in caplog.text
        assert "listening on PostgreSQL works again" in caplog.text
    finally:
        await admin.close()
        for bus in buses:
            await bus.close()


async def test_publishing_to_an_unreachable_server_logs_and_does_not_raise(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = PostgresBus("postgresql://postgres@127.0.0.1:1/postgres", channel_name())
    await unreachable(bus, caplog, "publishing on PostgreSQL failed", "listening on PostgreSQL failed")


async def test_a_notification_that_is_not_a_frame_is_ignored(url: str, caplog: pytest.LogCaptureFixture) -> None:
    channel = channel_name()
    bus, inbox = PostgresBus(asyncpg_dsn(url), channel), Inbox()
    await bus.start(inbox)
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        with caplog.at_level(logging.WARNING, logger="bastion.bus"):
            await admin.execute("SELECT pg_notify($1, 'not base64!'), pg_notify($1, 'c2hvcnQ=')", channel)
            await settle(bus, inbox)
        assert inbox.messages == [b"settled"]
        assert "is not Bastion's" in caplog.text
    finally:
        await admin.close()
        await bus.close()
