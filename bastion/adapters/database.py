"""Pick the Database adapter for a URL."""

from __future__ import annotations

from pathlib import Path

from bastion.adapters.db_base import QUERY_TIMEOUT_S, SqlDatabase


def open_database(
    url: str | None, data_dir: Path, query_timeout: float = QUERY_TIMEOUT_S, sqlite_busy_timeout: float = 10.0,
) -> SqlDatabase:
    """SQLite in ``data_dir`` when ``url`` is empty, else PostgreSQL or MariaDB/MySQL.

    ``query_timeout`` seconds bound every SQL statement on each of them (0: no limit)."""
    if not url or url.startswith("sqlite"):
        from bastion.adapters.db_sqlite import SqliteDatabase

        path = data_dir / "data.db"
        if url and url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///"):])
        return SqliteDatabase(path, busy_timeout=sqlite_busy_timeout, query_timeout=query_timeout)
    if url.startswith(("postgres://", "postgresql://", "postgresql+asyncpg://")):
        from bastion.adapters.db_postgres import PostgresDatabase

        return PostgresDatabase(url, query_timeout=query_timeout)
    if url.startswith(("mysql://", "mariadb://", "mysql+asyncmy://")):
        from bastion.adapters.db_mysql import MysqlDatabase

        return MysqlDatabase(url, query_timeout=query_timeout)
    raise ValueError(
        f"Unsupported database URL {url.split('://')[0]!r}://...: "
        "use postgresql://, mysql:// (MariaDB) or leave it empty for SQLite."
    )
