"""Bastion as real processes: ``bastion serve`` on a free port, and one-off commands."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BASTION = [sys.executable, "-m", "bastion.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``bastion ARGS...`` in ``cwd`` and return what it printed and its exit code."""
    return subprocess.run([*BASTION, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_until_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 30) -> bool:
    """Whether ``url``/api/health answered 200 within ``seconds``; raises when the
    process exits first (with its log)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


class Server:
    """``bastion serve ARGS...`` running in ``cwd`` on a free port, healthy once built.

    ``url`` is its address, ``log`` the file its output goes to; :meth:`stop` sends
    SIGTERM and returns the exit code."""

    def __init__(self, cwd: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [*BASTION, "serve", "--http", f"127.0.0.1:{self.port}", *args], cwd=cwd,
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if not wait_until_healthy(self.proc, self.url, self.log):
            self.stop()
            raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
