"""An HTTP client bound to an in-process App, and helpers to sign in through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bastion.api.app import HttpOptions, create_asgi
from bastion.core.app import App

SUPERUSER_EMAIL = "root@example.com"
SUPERUSER_PASSWORD = "root-password-1"
USER_PASSWORD = "password-1"


class TestClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that sends its requests to an App in the same process.

    No socket is opened: requests go straight to the ASGI application. ``su()`` gives the
    headers of the superuser signed in by :func:`test_client` (or by
    :meth:`sign_in_superuser`)."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    superuser_token: str = ""

    def su(self) -> dict[str, str]:
        """Headers authorising a request as the superuser."""
        return {"Authorization": self.superuser_token}

    async def sign_in_superuser(self, email: str = SUPERUSER_EMAIL, password: str = SUPERUSER_PASSWORD) -> str:
        """Sign the superuser in with its password; keep and return its token."""
        res = await sign_in(self, email, password, collection="_superusers")
        assert res.status_code == 200, res.text
        self.superuser_token = res.json()["token"]
        return self.superuser_token


def asgi_for(app: App, body_limit: int = 1024 * 1024) -> Any:
    """The ASGI application serving ``app`` (rate limits counted in the App's store).

    The App's lifespan is the caller's (it is already started)."""
    return create_asgi(app, HttpOptions(manage_lifespan=False, body_limit=body_limit))


@asynccontextmanager
async def test_client(app: App, superuser_token: str | None = None,
                      base_url: str = "http://bastion.test") -> AsyncIterator[TestClient]:
    """A :class:`TestClient` on ``app`` holding a superuser token.

    Pass ``superuser_token`` when one is known (a copied template's, see
    :class:`~bastion.testing.Templates`); otherwise the superuser signs in with
    ``SUPERUSER_EMAIL`` and ``SUPERUSER_PASSWORD``."""
    transport = httpx.ASGITransport(app=asgi_for(app))
    async with TestClient(transport=transport, base_url=base_url) as client:
        if superuser_token is None:
            await client.sign_in_superuser()
        else:
            client.superuser_token = superuser_token
        yield client


test_client.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


async def create_user(client: httpx.AsyncClient, email: str = "u@example.com", password: str = USER_PASSWORD,
                      collection: str = "users", **fields: Any) -> dict[str, Any]:
    """Create an auth record through the API (as a guest) and return it as the API shows it."""
    res = await client.post(f"/api/collections/{collection}/records", json={
        "email": email, "password": password, "passwordConfirm": password, **fields})
    assert res.status_code == 200, res.text
    result: dict[str, Any] = res.json()
    return result


async def sign_in(client: httpx.AsyncClient, email: str = "u@example.com", password: str = USER_PASSWORD,
                  collection: str = "users") -> httpx.Response:
    """The response to a password sign-in (whatever its status)."""
    return await client.post(f"/api/collections/{collection}/auth-with-password",
                             json={"identity": email, "password": password})


async def token_for(client: httpx.AsyncClient, email: str, password: str = USER_PASSWORD,
                    collection: str = "users") -> tuple[str, dict[str, str]]:
    """Create a user with ``email`` and sign it in: its record id, and headers carrying its
    token."""
    await create_user(client, email, password, collection)
    res = await sign_in(client, email, password, collection)
    assert res.status_code == 200, res.text
    body = res.json()
    return body["record"]["id"], {"Authorization": body["token"]}
