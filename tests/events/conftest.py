"""Apps with the outbox on, over the test's database (on each engine), and the helpers
the event tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.web_httpx import HttpxWebClient
from bastion.core.app import App
from bastion.core.events.relay import RelayPolicy
from bastion.core.ports import EventPublisher
from bastion.testing import TemporaryDatabase, TestClient, app_on, test_client

WAIT_S = 15.0  # generous: a busy 2-core machine runs other suites at the same time
FAST = RelayPolicy(batch=50, poll=0.05, lease=2.0, backoff_max=0.3)

MakeApp = Callable[..., Awaitable[App]]


@pytest.fixture
async def make_app(database: tuple[TemporaryDatabase, str], tmp_path: Path) -> AsyncIterator[MakeApp]:
    """Starts Apps on the test's database (each another process, as it were), with the
    outbox publishing to the publisher given; closes them after the test."""
    made: list[App] = []
    async with AsyncExitStack() as stack:
        async def make(publisher: EventPublisher | None, policy: RelayPolicy = FAST) -> App:
            folder = tmp_path / f"app{len(made)}"
            app = app_on(database[0], folder, web=HttpxWebClient(), events=publisher, events_policy=policy)
            await app.start()
            stack.push_async_callback(app.close)
            made.append(app)
            return app

        yield make


@pytest.fixture
def client_of(database: tuple[TemporaryDatabase, str]) -> Callable[[App], Any]:
    """An httpx client on an app, holding the superuser's token."""
    return lambda app: test_client(app, superuser_token=database[1])


async def make_notes(client: TestClient) -> None:
    body = {"name": "notes", "listRule": "", "viewRule": "", "createRule": "title != 'refused'",
            "updateRule": "", "deleteRule": "",
            "fields": [{"name": "title", "type": "text"}, {"name": "secret", "type": "text", "hidden": True}]}
    res = await client.post("/api/collections", headers=client.su(), json=body)
    assert res.status_code == 200, res.text


async def until(condition: Callable[[], Any], seconds: float = WAIT_S) -> None:
    deadline = time.monotonic() + seconds
    while not await _true(condition()):
        assert time.monotonic() < deadline, f"not true within {seconds} s"
        await asyncio.sleep(0.02)


async def _true(value: Any) -> bool:
    return bool(await value) if isinstance(value, Awaitable) else bool(value)
