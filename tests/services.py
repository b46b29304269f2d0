"""The databases the suite runs on, and how to make a throwaway database on each."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_URL = os.environ.get("BASTION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("BASTION_TEST_MARIADB", "mysql://root@127.0.0.1:3306/test")


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
    name: str

    def unavailable(self) -> str | None:
        if self.name == "postgres" and not _reachable("127.0.0.1", 5432):
            return "PostgreSQL is not reachable on 127.0.0.1:5432"
        if self.name == "mariadb" and not _reachable("127.0.0.1", 3306):
            return "MariaDB is not reachable on 127.0.0.1:3306"
        return None

    async def create_database(self, name: str, tmp: Path) -> str:
        if self.name == "sqlite":
            return ""
        if self.name == "postgres":
            import asyncpg

            conn = await asyncpg.connect(PG_URL.replace("postgresql://", "postgres://"))
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()
            return PG_URL.rsplit("/", 1)[0] + f"/{name}"
        import asyncmy

        conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
        finally:
            conn.close()
        return MYSQL_URL.rsplit("/", 1)[0] + f"/{name}"

    async def drop_database(self, name: str) -> None:
        if self.name == "sqlite":
            return
        if self.name == "postgres":
            import asyncpg

            conn = await asyncpg.connect(PG_URL.replace("postgresql://", "postgres://"))
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
            return
        import asyncmy

        conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


BACKENDS = {name: Backend(name) for name in ("sqlite", "postgres", "mariadb")}


