"""``bastion serve --workers N``: N processes serving one address, and their supervisor.

Python runs one request at a time per process, so one process uses one CPU core. The
supervisor opens the listening socket, has the database prepared once (migrations,
system collections) and starts N worker processes that accept on that socket; the
kernel hands each new connection to one of them. Each worker is a whole Bastion with
its own pools (``cli/worker.py``). They share what must be shared:

* schema and settings changes: a change made by one worker is announced through a
  memory-mapped mark (``adapters.siblings``) and every worker catches up before its
  next request, so no request sees a schema older than one already answered;
* rate-limit counters, the sign-in lockout and email cooldowns: in Redis with
  ``--redis-url``, otherwise in a SQLite file of the supervisor's (``adapters.store_sqlite``).

The supervisor itself loads neither the App nor the web stack (the preparation runs in
a child process too), so it stays small. A worker that dies is replaced; one that keeps
dying at start (a database that cannot be reached, say) makes the supervisor stop
everything and exit with an error instead of restarting it forever. SIGINT or SIGTERM to
the supervisor stops every worker with one SIGTERM each: they drain their requests
within ``--shutdown-grace``; a second signal makes them stop at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from bastion.adapters.siblings import create_mark_file
from bastion.cli.config import Config

log = logging.getLogger("bastion.workers")

# A worker slot dying this often within a minute is not a crash to recover from but a
# fault to report.
MAX_RESTARTS_PER_MINUTE = 5
# How long past the grace period a worker may take to exit before it is killed.
EXIT_MARGIN = 5.0
POLL_INTERVAL = 0.2
PAYLOAD_VARIABLE = "BASTION_WORKER_PAYLOAD"  # what a worker is told (cli/worker.py)


def serve_workers(config: Config, host: str, port: int) -> int:
    """Run the supervisor until it is stopped; return the process exit code."""
    sock = _listen(host, port)
    shared = Path(tempfile.mkdtemp(prefix="bastion-workers-"))
    try:
        create_mark_file(shared / "mark")
        command, env = worker_command(config, sock, shared)
        prepared = subprocess.run([*command, "--prepare"], env=env, check=False)
        if prepared.returncode != 0:
            return prepared.returncode
        return Supervisor(config, sock, command, env).run()
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
    return sock


def worker_command(config: Config, sock: socket.socket, shared: Path) -> tuple[list[str], dict[str, str]]:
    """The command line of a worker process (``cli/worker.py``, its index appended) and its
    environment. The configuration travels in the environment, not on the command line,
    which every user of the machine can read (``ps``): it may hold the database password,
    the Redis URL and the encryption key."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    payload = json.dumps({"config": settings, "fd": sock.fileno(), "shared": str(shared)})
    return [sys.executable, "-m", "bastion.cli.worker"], {**os.environ, PAYLOAD_VARIABLE: payload}


class Supervisor:
    def __init__(self, config: Config, sock: socket.socket, command: list[str], env: dict[str, str] | None = None):
        self.config = config
        self.sock = sock
        self.command = command
        self.env = env
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.starts: dict[int, deque[float]] = {}
        self.stopping = False
        self.signals = 0

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
        self.starts.setdefault(index, deque()).append(time.monotonic())
        # The worker ignores SIGINT (Ctrl-C reaches the whole process group): the
        # supervisor passes a stop on as one SIGTERM.
        self.procs[index] = subprocess.Popen(
            [*self.command, str(index)], pass_fds=(self.sock.fileno(),), env=self.env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))

    def _watch(self) -> bool:
        """Replace workers that die until asked to stop; True when one kept dying."""
        while not self.stopping:
            time.sleep(POLL_INTERVAL)
            for index, proc in list(self.procs.items()):
                if proc.poll() is None or self.stopping:
                    continue
                starts = self.starts[index]
                while starts and starts[0] < time.monotonic() - 60:
                    starts.popleft()
                if len(starts) >= MAX_RESTARTS_PER_MINUTE:
                    typer.secho(f"Error: worker {index} exited {len(starts)} times within a minute "
                                f"(last exit code {proc.returncode}); stopping. See the errors above.",
                                fg="red", err=True)
                    return True
                log.warning("worker %d (pid %s) exited with code %s; starting another",
                            index, proc.pid, proc.returncode)
                self._start(index)
        return False

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Each signal is passed on at once: the first makes the workers drain, a second
        # (Ctrl-C pressed twice) makes them stop without waiting.
        self.stopping = True
        self.signals += 1
        # The workers stop listening as they drain; with the supervisor's copy of the
        # socket closed too, new connections are refused rather than left in its queue.
        self.sock.close()
        self._signal_workers()

    def _signal_workers(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    def _stop_all(self) -> None:
        if not self.signals:  # stopping because a worker kept dying
            self.sock.close()
            self._signal_workers()
        deadline = time.monotonic() + self.config.shutdown_grace + EXIT_MARGIN
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        for index, proc in self.procs.items():
            if proc.poll() is None:
                log.warning("worker %d (pid %s) did not stop in time; killing it", index, proc.pid)
                proc.kill()
                proc.wait()


def config_from(settings: dict[str, Any]) -> Config:
    """The worker's side of ``worker_command``."""
    paths = {"data_dir", "migrations_dir"}
    values: dict[str, Any] = {k: Path(v) if k in paths and v is not None else v for k, v in settings.items()}
    values["origins"] = tuple(values.get("origins", ()))
    return Config(**values)

