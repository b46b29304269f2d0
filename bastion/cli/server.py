"""Running the ASGI app under uvicorn with a graceful, bounded shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer
import uvicorn

from bastion.adapters.store_memory import MemoryStore
from bastion.api.app import HttpOptions, create_asgi
from bastion.cli.config import Config
from bastion.cli.http_protocol import guarded_protocol
from bastion.core.app import App
from bastion.core.store import Store


async def serve_forever(app: App, config: Config, host: str, port: int) -> None:
    store: Store = MemoryStore()
    if config.redis_url:
        from bastion.adapters.store_redis import RedisStore  # loads redis only when asked for

        store = RedisStore(config.redis_url)
    asgi = create_asgi(app, HttpOptions(
        body_limit=config.body_limit, read_timeout=config.read_timeout, origins=list(config.origins),
        manage_lifespan=False, store=store))
    base = f"http://{host}:{port}"
    typer.echo(f"Bastion serving on {base}  (database: {app.db.url_for_display})")
    typer.echo(f"  REST API:  {base}/api/")
    typer.echo(f"  API docs:  {base}/api/docs")
    if not await app.has_superuser():
        dir_flag = f" --dir {config.data_dir}" if not config.database_url else ""
        typer.secho(
            "\nThere is no superuser yet. Create one with:\n"
            f"  bastion superuser upsert EMAIL PASSWORD{dir_flag}\n",
            fg="yellow",
        )
    server = uvicorn.Server(uvicorn.Config(
        asgi, host=host, port=port, lifespan="off", http=guarded_protocol(config.read_timeout),
        ws="none",  # no WebSocket routes (realtime is server-sent events, as in PocketBase)
        access_log=False, log_level="warning",
        timeout_graceful_shutdown=max(1, round(config.shutdown_grace)), proxy_headers=False,
        server_header=False, timeout_keep_alive=5,
    ))
    # Stop on SIGINT/SIGTERM by draining requests (bounded by the grace period) and then
    # exit normally, rather than re-raising the signal as uvicorn does by default.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, server)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    watcher = asyncio.create_task(app.watch_schema())
    try:
        await server.serve()
    finally:
        watcher.cancel()
        await store.aclose()
    typer.echo("Bastion stopped.")


def _stop(server: uvicorn.Server) -> None:
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True
