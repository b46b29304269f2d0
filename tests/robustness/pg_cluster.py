"""A private, throwaway PostgreSQL cluster that a test may stop and start at will.

The shared server on 5432 serves everybody else's tests and must never be restarted, so
fault tests run their own: ``initdb`` in a temporary folder owned by the ``postgres`` OS
user, a free TCP port on 127.0.0.1, the unix socket inside that folder, trust auth, and
``pg_ctl`` to stop and start it. Everything is removed on ``destroy``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("BASTION_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


def unavailable_reason() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"no initdb in {PG_BIN} (set BASTION_TEST_PG_BIN)"
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"no {OS_USER!r} OS user to run a private PostgreSQL cluster"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != OS_USER:
        return f"running a private cluster needs root or the {OS_USER!r} user"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "runuser is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One cluster: ``create()``, then ``start()`` / ``stop()`` as often as needed."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        entry = pwd.getpwnam(OS_USER)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []
        res = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout,
                             cwd=self.root, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"})
        if res.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({res.returncode}):\n{res.stdout}{res.stderr}\n{log[-2000:]}")
        return res

    def create(self) -> PgCluster:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "shared_buffers = 16MB\nmax_connections = 60\n"
            )
        return self

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def is_running(self) -> bool:
        return self.pid() is not None

    def pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def destroy(self) -> None:
        """Stop the cluster (fast, then immediate, then SIGKILL by PID) and remove its folder."""
        for mode in ("fast", "immediate"):
            if not self.is_running():
                break
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop(mode)
        pid = self.pid()
        if pid is not None:
            os.kill(pid, 9)
            time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)
