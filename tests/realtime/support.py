"""Subscribers held in the test's own process: a realtime client of the App's hub,
subscribed as the API does, whose events are read from its outbox once the change
pipeline settled (``Realtime.settled``)."""

from __future__ import annotations

import json
from typing import Any

from bastion.core.app import App

IP = "127.0.0.1"


class Subscriber:
    def __init__(self, app: App, token: str = "", ip: str = IP):
        self.app = app
        self.token = token
        self.ip = ip
        self.client = app.realtime.hub.connect(ip)

    async def subscribe(self, *topics: str, token: str | None = None) -> None:
        await self.app.realtime.set_subscriptions(self.client.id, self.ip, self.token if token is None else token,
                                                  list(topics))

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        """The events received since the last call: (event name, data)."""
        await self.app.realtime.settled()
        out = []
        for block in self.client.take().decode().split("\n\n"):
            if not block:
                continue
            lines = dict(line.split(":", 1) for line in block.split("\n"))
            assert lines["id"] == self.client.id
            out.append((lines["event"], json.loads(lines["data"])))
        return out

    async def ids(self, action: str | None = None) -> list[str]:
        return [d["record"]["id"] for _, d in await self.events() if action is None or d["action"] == action]

    def close(self) -> None:
        self.app.realtime.hub.disconnect(self.client)


def options(**query: str) -> str:
    return "?options=" + json.dumps({"query": query})
