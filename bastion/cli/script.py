"""The App of a data folder or database, for a plain Python script (``bastion.open_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bastion.adapters.hook_files import load_hooks
from bastion.cli.config import Config
from bastion.cli.runner import build_app
from bastion.core.app import App


@asynccontextmanager
async def open_app(data_dir: str | Path = "bastion_data", database_url: str = "", *,
                   hooks_dir: str | Path | None = None, hooks: bool = True) -> AsyncIterator[App]:
    """The App ``bastion serve --dir data_dir --database-url database_url`` serves, started,
    with its hook files loaded (``hooks=False``: without them), closed on exit. Its
    writes go through the same rules-free services, journals, hooks and events as the
    server's; pending migrations are not applied (``bastion migrate up`` does that)::

        async with open_app("bastion_data") as app:
            users = app.registry.get("users")
            ...
    """
    config = Config(data_dir=Path(data_dir), database_url=database_url,
                    hooks_dir=Path(hooks_dir) if hooks_dir is not None else None)
    app = build_app(config)
    if hooks:
        load_hooks(app, config.hooks)
    await app.start(apply_migrations=False)
    try:
        yield app
    finally:
        await app.close()
