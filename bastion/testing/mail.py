"""A real SMTP server on 127.0.0.1 that keeps what the App sends.

Needs ``aiosmtpd`` (in Bastion's ``test`` extra)::

    async with catch_mail(app, client) as inbox:
        await client.post("/api/collections/users/request-verification", json={"email": email})
        message = await inbox.wait(1)
        token = token_in(Inbox.body(message))
"""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx

from bastion.adapters.mailer_smtp import SmtpMailer
from bastion.core.app import App
from bastion.testing.servers import free_port


class Inbox:
    """The messages an SMTP server received, oldest first (``aiosmtpd`` handler)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    async def wait(self, count: int, seconds: float = 2.0) -> EmailMessage:
        """The ``count``-th message (from 1), once it has arrived; fails after ``seconds``."""
        for _ in range(max(1, int(seconds / 0.02))):
            if len(self.messages) >= count:
                return self.messages[count - 1]
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")

    @staticmethod
    def body(message: EmailMessage) -> str:
        """The HTML body of ``message``."""
        part = message.get_body(preferencelist=("html",))
        assert part is not None, "the message has no HTML body"
        return str(part.get_content())  # type: ignore[attr-defined]


def token_in(text: str) -> str:
    """The first token (a JWT) in a link of ``text``, as in the App's mail."""
    found = re.search(r"/(eyJ[\w-]+\.[\w-]+\.[\w-]+)", text)
    assert found, f"no token in {text!r}"
    return found.group(1)


@asynccontextmanager
async def catch_mail(app: App, client: httpx.AsyncClient, superuser: dict[str, str] | None = None,
                     app_name: str = "Acme", app_url: str = "https://acme.test") -> AsyncIterator[Inbox]:
    """Start an SMTP server, point ``app`` at it and yield its :class:`Inbox`.

    ``app`` sends mail over SMTP (built with ``mailer=SmtpMailer``, as the kit's apps are).

    The settings change (SMTP on, the app's name and URL) goes through the API as the
    superuser: ``superuser`` headers, by default ``client.su()`` of a
    :class:`~bastion.testing.TestClient`."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        if not isinstance(app.mailer, SmtpMailer):
            raise TypeError("catch_mail needs an App built with mailer=SmtpMailer (as bastion.testing's apps are)")
        headers = superuser if superuser is not None else client.su()  # type: ignore[attr-defined]
        res = await client.patch("/api/settings", headers=headers, json={
            "smtp": {"enabled": True, "host": "127.0.0.1", "port": controller.port},
            "meta": {"appName": app_name, "appURL": app_url}})
        assert res.status_code == 200, res.text
        yield inbox
    finally:
        controller.stop()
