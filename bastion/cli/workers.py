"""``bastion serve --workers N``: N processes serving one address, and their supervisor.

Python runs one request at a time per process, so one process uses one CPU core. The
supervisor prepares the database once (migrations, system collections), opens the
listening socket and starts N worker processes that accept on it; the kernel hands each
new connection to one of them. Each worker is a whole Bastion with its own pools. They
share what must be shared:

* schema and settings changes: a change made by one worker is announced through a
  memory-mapped mark (``adapters.siblings``) and every worker catches up before its
  next request, so no request sees a schema older than one already answered;
* rate-limit counters, the sign-in lockout and email cooldowns: in Redis with
  ``--redis-url``, otherwise in a SQLite file of the supervisor's (``adapters.store_sqlite``).

A worker that dies is replaced; one that keeps dying at start (a database that cannot be
reached, say) makes the supervisor stop everything and exit with an error instead of
restarting it forever. SIGINT or SIGTERM to the supervisor stops every worker with one
SIGTERM each: they drain their requests within ``--shutdown-grace``; a second signal
makes them stop at once.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import typer

from bastion.adapters.siblings import create_mark_file
from bastion.cli.config import Config
from bastion.cli.runner import run
from bastion.cli.server import WorkerPlace, print_banner, print_superuser_hint, serve_forever

log = logging.getLogger("bastion.workers")

# A worker dying more often than this within a minute is not a crash to recover from
# but a fault to report (per worker slot).
MAX_RESTARTS_PER_MINUTE = 5
# How long past the grace period a worker may take to exit before it is killed.
EXIT_MARGIN = 5.0


def serve_workers(config: Config, host: str, port: int) -> int:
    """Run the supervisor until it is stopped; return the process exit code."""

    sock = _listen(host, port)

    async def prepare(app: Any) -> None:
        print_banner(config, host, port, app.db.url_for_display)
        await print_superuser_hint(app, config)

    shared = Path(tempfile.mkdtemp(prefix="bastion-workers-"))
    try:
        run(config, prepare)  # migrations and bootstrap, once, before any worker starts
        create_mark_file(WorkerPlace(0, sock, shared).mark_file)
        return Supervisor(config, sock, shared).run()
    finally:
        sock.close()
        shutil.rmtree(shared, ignore_errors=True)
        typer.echo("Bastion stopped.")


def _listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        typer.secho(f"Error: cannot listen on {host}:{port}: {exc.strerror or exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, config: Config, sock: socket.socket, shared: Path,
                 target: Callable[[Config, WorkerPlace], None] | None = None):
        self.config = config
        self.target = target or worker_main
        self.sock = sock
        self.shared = shared
        self.procs: dict[int, BaseProcess] = {}
        self.starts: dict[int, deque[float]] = {}
        self.stopping = False
        self.signals = 0
        self._context = multiprocessing.get_context("spawn")

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for index in range(self.config.workers):
                self._start(index)
            failed = self._watch()
            self._stop_all()
            return 1 if failed else 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, index: int) -> None:
        starts = self.starts.setdefault(index, deque())
        starts.append(time.monotonic())
        proc = self._context.Process(
            target=self.target, name=f"bastion-worker-{index}",
            args=(self.config, WorkerPlace(index, self.sock, self.shared)))
        proc.start()
        self.procs[index] = proc

    def _watch(self) -> bool:
        """Replace workers that die until asked to stop; True when one kept dying."""
        while not self.stopping:
            sentinels = [p.sentinel for p in self.procs.values()]
            multiprocessing.connection.wait(sentinels, timeout=1.0)
            for index, proc in list(self.procs.items()):
                if proc.is_alive() or self.stopping:
                    continue
                starts = self.starts[index]
                while starts and starts[0] < time.monotonic() - 60:
                    starts.popleft()
                if len(starts) >= MAX_RESTARTS_PER_MINUTE:
                    typer.secho(f"Error: worker {index} exited {len(starts)} times within a minute "
                                f"(last exit code {proc.exitcode}); stopping. See the errors above.",
                                fg="red", err=True)
                    return True
                log.warning("worker %d (pid %s) exited with code %s; starting another",
                            index, proc.pid, proc.exitcode)
                self._start(index)
        return False

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Each signal is passed on at once: the first makes the workers drain, a second
        # (Ctrl-C pressed twice) makes them stop without waiting.
        self.stopping = True
        self.signals += 1
        self._signal_workers()

    def _signal_workers(self) -> None:
        for proc in self.procs.values():
            if proc.pid is not None and proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    def _stop_all(self) -> None:
        if not self.signals:  # stopping because a worker kept dying
            self._signal_workers()
        deadline = time.monotonic() + self.config.shutdown_grace + EXIT_MARGIN
        for proc in self.procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
        for index, proc in self.procs.items():
            if proc.is_alive():
                log.warning("worker %d (pid %s) did not stop in time; killing it", index, proc.pid)
                proc.kill()
                proc.join()


def worker_main(config: Config, place: WorkerPlace) -> None:
    """The entry point of a worker process (started by ``Supervisor`` with spawn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor passes Ctrl-C on as SIGTERM
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s[w{place.index}]: %(message)s")
    host, port = config.host_port()
    try:
        run(config, lambda app: serve_forever(app, config, host, port, place), apply_migrations=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
