"""The databases the suite runs on (``bastion.testing`` engines), and skipping a test
whose service is missing."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.testing import TemporaryDatabase, engines

ENGINES = engines()


def require_or_skip(reason: str) -> None:
    """Skip the test for ``reason``, or fail it under ``BASTION_TEST_SERVICES=required`` (CI)."""
    if os.environ.get("BASTION_TEST_SERVICES") == "required":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Backend:
    """One engine, by name, as the suite's tests see it."""

    name: str

    def unavailable(self) -> str | None:
        return ENGINES[self.name].unavailable()

    async def create_database(self, name: str, tmp: Path) -> str:
        """An empty database called ``name``; its URL (empty on SQLite: ``tmp/data.db``)."""
        return (await ENGINES[self.name].create(tmp, name)).url

    async def drop_database(self, name: str) -> None:
        await ENGINES[self.name].drop(TemporaryDatabase(self.name, name, "", Path()))


BACKENDS = {name: Backend(name) for name in ENGINES}
