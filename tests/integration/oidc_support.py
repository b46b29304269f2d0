"""A real OpenID Provider for the tests: node-oidc-provider, run by ``tests/js/oidc/provider.mjs``.

Shared by ``test_oauth2.py`` (Bastion in-process, httpx plays the browser) and
``test_js_sdk.py`` (``bastion serve`` driven by the pocketbase JS SDK). Each module wraps
:func:`install_provider` and :func:`run_provider` in its own fixtures.

The provider is installed once into ``$TMPDIR/bastion-oidc-provider-<hash of
package.json>`` and listens on a free port of 127.0.0.1 with two confidential clients,
PKCE required, and its development login page: any login name is an account with the
email ``<login>@example.com``, verified unless the login starts with ``unverified``.
Without node/npm (or the npm registry) :func:`install_provider` skips with the reason,
unless ``BASTION_TEST_SERVICES=required``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.services import require_or_skip

OIDC_DIR = Path(__file__).resolve().parent.parent / "js" / "oidc"
PACKAGE_JSON = OIDC_DIR / "package.json"
CLIENT = {"client_id": "bastion-app", "client_secret": "bastion-app-secret-0123456789abcdef"}
OTHER = {"client_id": "other-app", "client_secret": "other-app-secret-0123456789abcdef"}
# Registered with the provider for both clients. Nothing listens there: the tests stop at the
# redirect and read the code from its URL.
REDIRECT = "http://127.0.0.1:8090/api/oauth2-redirect"
NPM_TIMEOUT, STARTUP_TIMEOUT, STOP_TIMEOUT = 300.0, 30.0, 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned() -> str:
    return str(json.loads(PACKAGE_JSON.read_text())["dependencies"]["oidc-provider"])


def _installed(folder: Path) -> str | None:
    try:
        return json.loads((folder / "node_modules/oidc-provider/package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def install_provider() -> Path:
    """A folder with node_modules/oidc-provider and provider.mjs (installed with npm once)."""
    npm = shutil.which("npm")
    if not shutil.which("node") or not npm:
        require_or_skip("node and npm are needed for the OpenID provider (not found on PATH)")
    manifest = PACKAGE_JSON.read_bytes()
    cache = Path(tempfile.gettempdir()) / f"bastion-oidc-provider-{hashlib.sha256(manifest).hexdigest()[:16]}"
    if _installed(cache) != _pinned():
        staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}.staging-", dir=cache.parent))
        try:
            (staging / "package.json").write_bytes(manifest)
            try:
                done = subprocess.run(
                    [npm, "install", "--no-audit", "--no-fund", "--no-update-notifier", "--no-package-lock",
                     "--loglevel=error", "--prefix", str(staging)],
                    cwd=staging, capture_output=True, text=True, timeout=NPM_TIMEOUT)
            except subprocess.TimeoutExpired:
                require_or_skip(f"npm install timed out after {NPM_TIMEOUT:.0f}s (is the registry reachable?)")
            if done.returncode != 0:
                require_or_skip(f"npm install of oidc-provider@{_pinned()} failed:\n{done.stderr[-2000:]}")
            shutil.rmtree(cache, ignore_errors=True)
            staging.rename(cache)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    shutil.copy(OIDC_DIR / "provider.mjs", cache / "provider.mjs")
    return cache


@contextmanager
def run_provider(provider_dir: Path, log_dir: Path, redirect_uris: tuple[str, ...] = (REDIRECT,)) -> Iterator[str]:
    """Runs the provider with CLIENT and OTHER registered; yields its issuer URL."""
    port = free_port()
    clients = [{**c, "redirect_uris": list(redirect_uris)} for c in (CLIENT, OTHER)]
    log = log_dir / "provider.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OIDC_PORT": str(port), "OIDC_CLIENTS": json.dumps(clients)}
    with log.open("wb") as out:
        proc = subprocess.Popen(["node", "provider.mjs"], cwd=provider_dir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the OpenID provider exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the OpenID provider did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
