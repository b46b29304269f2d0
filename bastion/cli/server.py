"""Running the ASGI app under uvicorn with a graceful, bounded shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from functools import partial
from typing import Any

import typer
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from bastion.adapters.hook_files import reload_on_change
from bastion.api.app import HttpOptions, create_asgi
from bastion.cli.config import Config
from bastion.cli.gc_tuning import freeze_long_lived
from bastion.cli.http_protocol import guarded_protocol
from bastion.cli.runner import WorkerPlace
from bastion.core.app import App

# Requests that change nothing, answered by reads alone: when their client goes away
# there is nobody to answer, so they are cancelled (and their statements interrupted).
CANCELLABLE_METHODS = frozenset({"GET", "HEAD"})
# How long a stopping server keeps taking what is already on its way (seconds).
SETTLE = 0.05


class CancelWhenGone(HttpToolsProtocol):
    """Cancels a GET or HEAD whose client disconnected before the answer was complete.

    uvicorn only marks the request as disconnected and lets the handler run on, so a
    client could start a long read, hang up, and leave the query holding a database
    connection until it ends. Here the handler's task is cancelled at once; the
    cancellation reaches the statement (the SQLite adapter interrupts it, asyncpg cancels
    it on the server). Writes are left to finish: their outcome must not depend on
    whether the client stayed. Costs one coroutine frame per GET, nothing per statement.
    """

    _answering: tuple[asyncio.Task[Any], RequestResponseCycle] | None = None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if cycle.scope["method"] in CANCELLABLE_METHODS:
            app = partial(self._run_cancellable, app, cycle)
        super()._start_asgi_task(cycle, app)

    async def _run_cancellable(self, app: Any, cycle: RequestResponseCycle, scope: Any, receive: Any,
                               send: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._answering = (task, cycle)
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            if not cycle.disconnected:  # the server is stopping: let uvicorn see it
                raise
            # Cancelled here because the client left: nobody to answer, nothing to log.
        finally:
            if self._answering is not None and self._answering[0] is task:
                self._answering = None

    def connection_lost(self, exc: Exception | None) -> None:
        answering = self._answering
        super().connection_lost(exc)
        if answering is not None and not answering[1].response_complete:
            answering[1].disconnected = True
            answering[0].cancel()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, letting the event loop take what is already on its way before
    it stops listening: a connection the kernel queued, or one accepted whose request is
    not read yet, would otherwise be reset (or closed as idle) while it is in flight."""

    app: App | None = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await asyncio.sleep(SETTLE)  # accept callbacks run, then their first reads
        if self.app is not None:  # realtime streams end now, so their clients reconnect elsewhere
            self.app.realtime.hub.close_all("the server is stopping")
        await super().shutdown(sockets)


def http_protocol(read_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's ``http=`` class: headers within ``read_timeout`` (``http_protocol``), and
    reads cancelled when their client disconnects (:class:`CancelWhenGone`)."""
    return type("BastionHttpProtocol", (CancelWhenGone, guarded_protocol(read_timeout)), {})


def print_banner(config: Config, host: str, port: int, database: str) -> None:
    base = f"http://{host}:{port}"
    workers = f", {config.workers} workers" if config.workers > 1 else ""
    typer.echo(f"Bastion serving on {base}  (database: {database}{workers})")
    typer.echo(f"  REST API:  {base}/api/")
    typer.echo(f"  API docs:  {base}/api/docs")


async def print_superuser_hint(app: App, config: Config) -> None:
    if not await app.has_superuser():
        dir_flag = f" --dir {config.data_dir}" if not config.database_url else ""
        typer.secho(
            "\nThere is no superuser yet. Create one with:\n"
            f"  bastion superuser upsert EMAIL PASSWORD{dir_flag}\n",
            fg="yellow",
        )


async def serve_forever(app: App, config: Config, host: str, port: int, place: WorkerPlace | None = None) -> None:
    """Serve until SIGINT or SIGTERM; ``place`` makes this one worker of ``--workers``
    (its App built for it: ``runner.build_app``)."""
    asgi = create_asgi(app, HttpOptions(
        body_limit=config.body_limit, json_body_limit=config.json_body_limit, read_timeout=config.read_timeout,
        origins=list(config.origins), manage_lifespan=False))
    if place is None:
        print_banner(config, host, port, app.db.url_for_display)
        await print_superuser_hint(app, config)
    server = DrainingServer(uvicorn.Config(
        asgi, host=host, port=port, lifespan="off", http=http_protocol(config.read_timeout),
        ws="none",  # no WebSocket routes (realtime is server-sent events, as in PocketBase)
        access_log=False, log_level="warning",
        timeout_graceful_shutdown=max(1, round(config.shutdown_grace)), proxy_headers=False,
        server_header=False, timeout_keep_alive=5,
    ))
    # Stop on SIGINT/SIGTERM by draining requests (bounded by the grace period) and then
    # exit normally, rather than re-raising the signal as uvicorn does by default. A
    # worker leaves SIGINT (Ctrl-C reaches the whole process group) to its supervisor,
    # which passes the stop on as one SIGTERM.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM,) if place is not None else (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, server)
    server.app = app
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    watcher = asyncio.create_task(app.watch_schema())
    freezer = asyncio.create_task(freeze_long_lived())
    cron = asyncio.create_task(app.crons.run_forever())
    jobs = asyncio.create_task(app.jobs.run_forever())
    reloader = asyncio.create_task(reload_on_change(app, config.hooks)) if config.dev else None
    try:
        await server.serve(sockets=[place.sock] if place is not None else None)
    finally:
        watcher.cancel()
        freezer.cancel()
        cron.cancel()
        jobs.cancel()
        if reloader is not None:
            reloader.cancel()
    if place is None:
        typer.echo("Bastion stopped.")


def _stop(server: uvicorn.Server) -> None:
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True
