"""Shared fixtures: a Bastion app per test, each on a database of its own, on each
reachable engine. The pytest glue over ``bastion.testing``.

``backend`` parametrises tests over sqlite, postgres and mariadb. A backend whose server
cannot be reached is skipped with the reason, unless ``BASTION_TEST_SERVICES=required``
(set by CI), which turns the skip into a failure.

Each engine's database is bootstrapped once per run (system collections, the superuser,
its token) and copied for each test (``bastion.testing.Templates``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bastion.adapters.web_httpx import HttpxWebClient
from bastion.core.app import App
from bastion.testing import (
    Inbox,
    Templates,
    TemporaryDatabase,
    TestClient,
    app_on,
    catch_mail,
    engines,
    test_client,
)
from tests.services import BACKENDS, Backend, require_or_skip


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


@pytest.fixture(scope="session")
async def templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Templates]:
    """Each engine's bootstrapped database, built on first use and copied per test."""
    made = Templates(tmp_path_factory.mktemp("templates"), engines())
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def database(backend: Backend, templates: Templates,
                   tmp_path: Path) -> AsyncIterator[tuple[TemporaryDatabase, str]]:
    """A copy of the backend's template (SQLite: ``tmp_path/data/data.db``), and the
    superuser's token, valid on it."""
    copy, token = await templates.copy(backend.name, tmp_path)
    try:
        yield copy, token
    finally:
        await templates.discard(copy)


@pytest.fixture
def database_url(database: tuple[TemporaryDatabase, str]) -> str:
    """The test's database URL: empty on SQLite, whose file is ``tmp_path/data/data.db``."""
    return database[0].url


@pytest.fixture
async def app(database: tuple[TemporaryDatabase, str], tmp_path: Path) -> AsyncIterator[App]:
    """A started App on the test's database, holding the superuser ``SUPERUSER_EMAIL``."""
    bastion = app_on(database[0], tmp_path, web=HttpxWebClient())
    await bastion.start()
    try:
        yield bastion
    finally:
        await bastion.close()


@pytest.fixture
async def client(app: App, database: tuple[TemporaryDatabase, str]) -> AsyncIterator[TestClient]:
    """An httpx client on ``app`` holding the superuser's token (``client.su()``)."""
    async with test_client(app, superuser_token=database[1]) as c:
        yield c


@pytest.fixture
async def inbox(app: App, client: TestClient) -> AsyncIterator[Inbox]:
    """An SMTP server on 127.0.0.1 receiving the app's mail (app name "Acme")."""
    async with catch_mail(app, client) as box:
        yield box


# Modules that take longest (real servers, the PocketBase binary, timed attacks) run
# first, so that no worker is left with one of them alone at the end of a parallel run.
SLOW_FIRST = ("tests/compat/", "tests/robustness/", "tests/integration/",
              "tests/security/test_attack_exhaustion.py", "tests/api/test_filter_properties.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)),
                    len(SLOW_FIRST))

    items.sort(key=rank)  # stable: each module keeps its order


# -- pytest-xdist: the workers' counts of compared requests, summed in the main process --
WORKER_COUNTS = {"compared": 0, "recorded": 0}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    for key, value in getattr(node, "workeroutput", {}).get("compat_counts", {}).items():
        WORKER_COUNTS[key] += value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.compat.counts import summary

    line = summary(WORKER_COUNTS)
    if line:
        terminalreporter.write_line(line)
