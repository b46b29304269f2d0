"""Real-client test: the official ``pocketbase`` JS SDK against a ``bastion serve`` subprocess.

``tests/js/sdk_crud.mjs`` authenticates as a superuser, creates a collection with most field
types, runs records CRUD (modifiers, validation errors, 404s) and refreshes its token.
``tests/js/sdk_query.mjs`` seeds two related collections and checks list queries (filter,
sort, expand, fields, skipTotal), getFullList/getFirstListItem, ``pb.filter`` binding, list
rules for guests and users, batch, cursor pages and aggregates. ``tests/js/sdk_files.mjs``
uploads files as an app does (FormData, and plain objects holding ``File`` values, into
single, multiple and protected ``file`` fields; the PNG is made by the script), fetches them
and their thumbs through ``pb.files.getURL``, runs the ``f+``/``f-``/clear modifiers,
protected files with ``pb.files.getToken()`` and batch uploads, and checks the 404s of files
that are gone. This module installs the pinned SDK from ``tests/js/package.json`` with npm,
starts one real server per backend on a free port (SQLite, PostgreSQL and MariaDB), creates
the superuser through the CLI and runs each script with node against it.

``tests/js/sdk_auth.mjs`` runs every sign-in flow through the SDK (password and refresh,
verification, password reset, email change, OTP, MFA, impersonation, OAuth2 code flow) on a
server of its own (SQLite only: the flows are database-agnostic, and the script changes the
SMTP settings and the ``users`` auth options). The test starts an SMTP server (aiosmtpd) on
127.0.0.1 that writes each message it receives as a JSON file into a temporary folder, which
the script polls for tokens and codes, and a real OpenID provider (node-oidc-provider, see
``oidc_support.py``) whose login page the script fills in with fetch.

The SDK is installed once into ``$TMPDIR/bastion-js-sdk-<hash of package.json>`` and reused
by later runs (delete that folder to force a reinstall). Without node/npm, the npm registry or
PostgreSQL the tests skip with the reason, unless ``BASTION_TEST_SERVICES=required``, which
turns each skip into a failure.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.integration.oidc_support import CLIENT, REDIRECT, install_provider, run_provider
from tests.services import BACKENDS

JS_DIR = Path(__file__).resolve().parent.parent / "js"
PACKAGE_JSON = JS_DIR / "package.json"
SCRIPT = JS_DIR / "sdk_crud.mjs"
QUERY_SCRIPT = JS_DIR / "sdk_query.mjs"
AUTH_SCRIPT = JS_DIR / "sdk_auth.mjs"
FILES_SCRIPT = JS_DIR / "sdk_files.mjs"
HARNESS = JS_DIR / "harness.mjs"  # imported by every script

SUPERUSER_EMAIL = "sdk-root@example.com"
SUPERUSER_PASSWORD = "sdk-root-password-1"

NODE_TIMEOUT = 60.0
NPM_TIMEOUT = 300.0
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def require_or_skip(reason: str) -> None:
    if os.environ.get("BASTION_TEST_SERVICES") == "required":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def _tail(text: str | bytes | None, lines: int = 60) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join((text or "").splitlines()[-lines:])


# --------------------------------------------------------------------------- SDK install


def _pinned_version() -> str:
    return json.loads(PACKAGE_JSON.read_text())["dependencies"]["pocketbase"]


def _installed_version(folder: Path) -> str | None:
    try:
        manifest = folder / "node_modules" / "pocketbase" / "package.json"
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def sdk_dir() -> Path:
    """A folder with ``node_modules/pocketbase`` installed from tests/js/package.json."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        require_or_skip("node and npm are needed for the JS SDK test (not found on PATH)")
    manifest = PACKAGE_JSON.read_bytes()
    digest = hashlib.sha256(manifest).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"bastion-js-sdk-{digest}"
    if _installed_version(cache) == _pinned_version():
        return cache

    staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}.staging-", dir=cache.parent))
    try:
        (staging / "package.json").write_bytes(manifest)
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-update-notifier",
                 "--no-package-lock", "--loglevel=error", "--prefix", str(staging)],
                cwd=staging, capture_output=True, text=True, timeout=NPM_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            require_or_skip(
                f"npm install timed out after {NPM_TIMEOUT:.0f}s (is the npm registry reachable?)"
            )
        if done.returncode != 0:
            require_or_skip(
                f"npm install of pocketbase@{_pinned_version()} failed:\n{_tail(done.stderr, 20)}"
            )
        installed = _installed_version(staging)
        assert installed == _pinned_version(), f"npm installed pocketbase {installed}"
        try:
            staging.rename(cache)  # atomic publish; a concurrent run may have won the race
        except OSError:
            if _installed_version(cache) != _pinned_version():
                shutil.rmtree(cache, ignore_errors=True)
                staging.rename(cache)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bastion_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("bastion")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("bastion")
    if found:
        return [found]
    return [sys.executable, "-c", "from bastion.cli.main import main; main()"]


def _server_env() -> dict[str, str]:
    # BASTION_* variables would override the flags we rely on (e.g. BASTION_DATABASE_URL).
    return {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


class Server:
    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self.dirs = ["--dir", str(root / "data"), "--migrations-dir", str(root / "migrations")]
        if database_url:
            self.dirs += ["--database-url", database_url]
        self.proc: subprocess.Popen[bytes] | None = None

    def log_tail(self) -> str:
        try:
            return _tail(self.log.read_text(errors="replace"))
        except OSError:
            return "(no server log)"

    name = "bastion serve"

    def command(self) -> list[str]:
        """The server's command line, without ``serve`` and what follows it."""
        return _bastion_cmd()

    def environment(self) -> dict[str, str]:
        return _server_env()

    def start(self) -> None:
        with self.log.open("ab") as log:  # a restarted server's log follows the first one's
            self.proc = subprocess.Popen(
                [*self.command(), "serve", *self.dirs, "--http", f"127.0.0.1:{self.port}", *self.serve_flags()],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), cwd=self.root,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.name} not healthy after {STARTUP_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def serve_flags(self) -> list[str]:
        return ["--shutdown-grace", "2"]

    def upsert_superuser(self, email: str, password: str) -> None:
        done = subprocess.run(
            [*self.command(), "superuser", "upsert", email, password, *self.dirs],
            capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
            env=self.environment(), cwd=self.root,
        )
        assert done.returncode == 0, f"superuser upsert failed:\n{done.stdout}\n{done.stderr}"

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


# Module-scoped: one database and one server per backend, shared by every test below
# (pytest groups the tests by backend). Each script cleans up after itself.
@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    backend = BACKENDS[request.param]
    problem = backend.unavailable()
    if problem:
        require_or_skip(problem)
    name = f"bt_sdk_{secrets.token_hex(6)}"
    url = asyncio.run(backend.create_database(name, tmp_path_factory.mktemp(f"db-{request.param}")))
    try:
        yield url
    finally:
        asyncio.run(backend.drop_database(name))


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("server"), database_url)
    try:
        srv.start()
        srv.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
        yield srv
    finally:
        srv.stop()  # always stop the server (before the database is dropped)


# --------------------------------------------------------------------------- test


def test_pocketbase_js_sdk_crud(sdk_dir: Path, server: Server) -> None:
    node = shutil.which("node")
    assert node
    script = _place(sdk_dir, SCRIPT)
    try:
        done = subprocess.run(
            [node, str(script), server.url, SUPERUSER_EMAIL, SUPERUSER_PASSWORD],
            capture_output=True, text=True, timeout=NODE_TIMEOUT, cwd=sdk_dir,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"sdk_crud.mjs timed out after {NODE_TIMEOUT:.0f}s\nstdout:\n{_tail(exc.stdout)}\n"
            f"stderr:\n{_tail(exc.stderr)}\nserver log:\n{server.log_tail()}"
        )
    finally:
        script.unlink(missing_ok=True)

    report = (
        f"exit {done.returncode}\nstdout:\n{_tail(done.stdout)}\nstderr:\n{_tail(done.stderr)}\n"
        f"server log:\n{server.log_tail()}"
    )
    if done.returncode != 0:
        pytest.fail(f"sdk_crud.mjs failed: {report}", pytrace=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, report
    result = json.loads(lines[-1])
    assert result["ok"] is True, report
    assert result["checks"] >= 200, report


def _place(sdk_dir: Path, source: Path) -> Path:
    """A copy of ``source`` next to the installed node_modules (ESM resolves bare imports
    from the script's own folder; one file per run, safe with concurrent runs), with the
    shared harness beside it (replaced atomically)."""
    staged = sdk_dir / f".{HARNESS.name}.{secrets.token_hex(4)}"
    shutil.copyfile(HARNESS, staged)
    os.replace(staged, sdk_dir / HARNESS.name)
    script = sdk_dir / f"{source.stem}.{secrets.token_hex(4)}.mjs"
    shutil.copyfile(source, script)
    return script


def _run_script(
    sdk_dir: Path, server: Server, source: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """Runs ``source`` with node against ``server`` (``env`` added to the environment);
    returns its JSON summary and a report."""
    node = shutil.which("node")
    assert node
    script = _place(sdk_dir, source)
    try:
        done = subprocess.run(
            [node, str(script), server.url, SUPERUSER_EMAIL, SUPERUSER_PASSWORD],
            capture_output=True, text=True, timeout=NODE_TIMEOUT, cwd=sdk_dir,
            env={**os.environ, **env} if env else None,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{source.name} timed out after {NODE_TIMEOUT:.0f}s\nstdout:\n{_tail(exc.stdout)}\n"
            f"stderr:\n{_tail(exc.stderr)}\nserver log:\n{server.log_tail()}"
        )
    finally:
        script.unlink(missing_ok=True)

    report = (
        f"exit {done.returncode}\nstdout:\n{_tail(done.stdout)}\nstderr:\n{_tail(done.stderr)}\n"
        f"server log:\n{server.log_tail()}"
    )
    if done.returncode != 0:
        pytest.fail(f"{source.name} failed: {report}", pytrace=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, report
    return json.loads(lines[-1]), report


def test_pocketbase_js_sdk_query(sdk_dir: Path, server: Server) -> None:
    """``tests/js/sdk_query.mjs``: filter/sort/expand/fields, getFullList, getFirstListItem,
    pb.filter binding, list rules for guests and users, batch, cursor pages, aggregates."""
    result, report = _run_script(sdk_dir, server, QUERY_SCRIPT)
    assert result["ok"] is True, report
    assert result["checks"] >= 400, report


def test_pocketbase_js_sdk_files(sdk_dir: Path, server: Server) -> None:
    """``tests/js/sdk_files.mjs``: uploads with FormData and plain objects, getURL with
    thumbs and downloads, attachments+/attachments-/clear, protected files with file
    tokens, batch uploads, and 404s once a file, its record or its collection is gone."""
    result, report = _run_script(sdk_dir, server, FILES_SCRIPT)
    assert result["ok"] is True, report
    assert result["checks"] >= 300, report


# --------------------------------------------------------------------------- auth flows


class MaildirHandler:
    """aiosmtpd handler: each message becomes ``<n>.eml`` (raw) and ``<n>.json`` in ``folder``.

    The JSON (written last, atomically) is what the script reads: the envelope, the headers
    and the decoded bodies, ``{"mailFrom", "rcptTos", "from", "to", "subject", "html", "text"}``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.count += 1  # the controller's single event loop delivers one message at a time
        name = f"{self.count:06d}"
        (self.folder / f"{name}.eml").write_bytes(envelope.content)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        html_part = message.get_body(preferencelist=("html",))
        text_part = message.get_body(preferencelist=("plain",))
        summary = {
            "mailFrom": envelope.mail_from,
            "rcptTos": list(envelope.rcpt_tos),
            "from": str(message["From"] or ""),
            "to": str(message["To"] or ""),
            "subject": str(message["Subject"] or ""),
            "html": html_part.get_content() if html_part is not None else "",
            "text": text_part.get_content() if text_part is not None else "",
        }
        partial = self.folder / f".{name}.json.partial"
        partial.write_text(json.dumps(summary))
        os.replace(partial, self.folder / f"{name}.json")
        return "250 Message accepted for delivery"


@pytest.fixture
def maildir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An SMTP server on 127.0.0.1 filing messages into a folder: yields (folder, port)."""
    folder = tmp_path / "maildir"
    folder.mkdir()
    controller = Controller(MaildirHandler(folder), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield folder, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def oidc_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_provider(install_provider(), tmp_path_factory.mktemp("oidc")) as url:
        yield url


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own on SQLite: the auth script changes SMTP settings and auth options."""
    root = tmp_path / "auth-server"
    root.mkdir()
    srv = Server(root, "")
    try:
        srv.start()
        srv.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
        yield srv
    finally:
        srv.stop()


def test_pocketbase_js_sdk_auth(
    sdk_dir: Path, sqlite_server: Server, maildir: tuple[Path, int], oidc_issuer: str
) -> None:
    """``tests/js/sdk_auth.mjs``: authWithPassword/authRefresh, verification, password reset,
    email change (tokens read from the emails), OTP, MFA, impersonate, OAuth2 code flow."""
    folder, smtp_port = maildir
    env = {
        "BASTION_MAILDIR": str(folder),
        "BASTION_SMTP_HOST": "127.0.0.1",
        "BASTION_SMTP_PORT": str(smtp_port),
        "BASTION_OIDC_ISSUER": oidc_issuer,
        "BASTION_OIDC_CLIENT_ID": CLIENT["client_id"],
        "BASTION_OIDC_CLIENT_SECRET": CLIENT["client_secret"],
        "BASTION_OIDC_REDIRECT": REDIRECT,
    }
    result, report = _run_script(sdk_dir, sqlite_server, AUTH_SCRIPT, env=env)
    mails = sorted(p.name for p in folder.glob("*.json"))
    report += f"\nmaildir: {mails}"
    assert result["ok"] is True, report
    assert result["sections"] == [
        "password", "verification", "passwordReset", "emailChange", "otp", "mfa", "impersonate", "oauth2",
    ], report
    assert result["checks"] >= 350, report
    # one verification, one reset, one email change and five OTP messages: nothing more (the
    # script also checks that unknown emails and cooldowns send nothing)
    assert result["mails"] == len(mails) == 8, report
