"""Shared fixtures: a fresh Bastion app per test on each reachable database.

``backend`` parametrises tests over sqlite, postgres and mariadb. A backend whose server
cannot be reached is skipped with the reason, unless ``BASTION_TEST_SERVICES=required``
(set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bastion.adapters.database import open_database
from bastion.adapters.store_memory import MemoryStore
from bastion.adapters.web_httpx import HttpxWebClient
from bastion.api.app import HttpOptions, create_asgi
from bastion.core.app import App
from tests.services import BACKENDS, Backend

SUPERUSER_EMAIL = "root@example.com"
SUPERUSER_PASSWORD = "root-password-1"


def require_or_skip(reason: str) -> None:
    if os.environ.get("BASTION_TEST_SERVICES") == "required":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def reachable_backend(name: str) -> Backend:
    """The backend called ``name``; skipped (or failed, in CI) when unreachable."""
    backend = BACKENDS[name]
    problem = backend.unavailable()
    if problem:
        require_or_skip(problem)
    return backend


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return reachable_backend(request.param)


@pytest.fixture(scope="module", params=list(BACKENDS), ids=list(BACKENDS))
def engine(request: pytest.FixtureRequest) -> Backend:
    """``backend`` for a whole module: tests that share one scenario per engine."""
    return reachable_backend(request.param)


@pytest.fixture
async def database_url(backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    name = f"bt_{secrets.token_hex(6)}"
    url = await backend.create_database(name, tmp_path)
    try:
        yield url
    finally:
        await backend.drop_database(name)


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[App]:
    bastion = App(open_database(database_url, tmp_path / "data"), tmp_path / "migrations", web=HttpxWebClient(),
                  store=MemoryStore())
    await bastion.start()
    await bastion.upsert_superuser(SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
    try:
        yield bastion
    finally:
        await bastion.close()


class Client(httpx.AsyncClient):
    """An httpx client bound to the in-process app, holding a superuser token."""

    superuser_token: str = ""

    def su(self) -> dict[str, str]:
        return {"Authorization": self.superuser_token}


@pytest.fixture
async def client(app: App) -> AsyncIterator[Client]:
    asgi = create_asgi(app, HttpOptions(manage_lifespan=False, body_limit=1024 * 1024))
    transport = httpx.ASGITransport(app=asgi)
    async with Client(transport=transport, base_url="http://bastion.test") as c:
        res = await c.post(
            "/api/collections/_superusers/auth-with-password",
            json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
        )
        assert res.status_code == 200, res.text
        c.superuser_token = res.json()["token"]
        yield c
