"""``/api/realtime``: PocketBase's server-sent events.

``GET`` opens a stream: ``PB_CONNECT`` first, then the events of the client's
subscriptions (``core/realtime``). ``POST`` replaces the subscriptions of a client and
binds it to the request's auth. The stream ends after ``idle`` seconds without a message
and after ``lifetime`` seconds in any case (5 and 30 minutes), when the client reads too
slowly, and when the server stops; clients then reconnect, as PocketBase's SDKs do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bastion.api.http import app_of, no_content, read_body, request_token
from bastion.api.openapi import body_schema
from bastion.api.ratelimit import client_ip
from bastion.api.routing import Endpoint
from bastion.core.errors import FieldError, ValidationFailed
from bastion.core.realtime.client import Client
from bastion.core.realtime.hub import Hub
from bastion.core.realtime.topics import CLIENT_ID_LENGTH, MAX_TOPIC_LENGTH, MAX_TOPICS

log = logging.getLogger("bastion.realtime")

HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"),
           (b"x-accel-buffering", b"no")]


class Stream(Response):
    """The open stream of one client, written as its outbox fills."""

    def __init__(self, hub: Hub, client: Client):
        super().__init__()
        self.hub = hub
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client, limits = self.client, self.hub.limits
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(lambda _: client.close(client.closed or "disconnected"))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "more_body": True,
                        "body": client.frame("PB_CONNECT", b'{"clientId":"' + client.id.encode() + b'"}')})
            await self._pump(send, limits.idle, time.monotonic() + limits.lifetime)
        except OSError:  # the client went away mid-write
            client.close("disconnected")
        finally:
            watcher.cancel()
            self.hub.disconnect(client)
            if client.closed not in ("disconnected", "idle", "lifetime"):
                log.info("realtime client %s closed: %s", client.id, client.closed)
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send, idle: float, end: float) -> None:
        client = self.client
        deadline = min(time.monotonic() + idle, end)
        while True:
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    await client.wake.wait()
            except TimeoutError:
                client.close("lifetime" if time.monotonic() >= end else "idle")
                return
            client.wake.clear()
            if client.closed:
                return
            data = client.take()
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
                deadline = min(time.monotonic() + idle, end)


async def _until_disconnect(receive: Receive) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass


async def connect(request: Request) -> Response:
    app = app_of(request)
    client = app.realtime.hub.connect(client_ip(request.scope, app.settings.current))
    return Stream(app.realtime.hub, client)


async def set_subscriptions(request: Request) -> Response:
    app = app_of(request)
    client_id, topics = _subscription_form(await read_body(request))
    await app.realtime.set_subscriptions(client_id, client_ip(request.scope, app.settings.current),
                                         request_token(request), topics)
    return no_content()


def _subscription_form(body: dict[str, Any]) -> tuple[str, list[str]]:
    """``clientId`` and ``subscriptions``, validated as PocketBase does."""
    client_id, topics = body.get("clientId", ""), body.get("subscriptions") or []
    if not isinstance(client_id, str) or not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise ValidationFailed("", {})
    errors: dict[str, Any] = {}
    low, high = CLIENT_ID_LENGTH
    if not client_id:
        errors["clientId"] = FieldError("validation_required", "Cannot be blank.")
    elif len(client_id) > high:
        errors["clientId"] = FieldError("validation_length_out_of_range",
                                        f"The length must be between {low} and {high}.", {"max": high, "min": low})
    if len(topics) > MAX_TOPICS:
        errors["subscriptions"] = FieldError("validation_length_too_long",
                                             f"The length must be no more than {MAX_TOPICS}.",
                                             {"max": MAX_TOPICS, "min": 0})
    else:
        long = {str(i): FieldError("validation_length_too_long",
                                   f"The length must be no more than {MAX_TOPIC_LENGTH}.",
                                   {"max": MAX_TOPIC_LENGTH, "min": 0})
                for i, t in enumerate(topics) if len(t) > MAX_TOPIC_LENGTH}
        if long:
            errors["subscriptions"] = long
    if errors:
        raise ValidationFailed("", errors)
    return client_id, topics


# One event of the stream (``data`` is JSON: ``{"clientId"}`` first, then ``{"action", "record"}``).
SSE_EVENT = body_schema("id", "event", "data")
SUBSCRIBE = body_schema("clientId", "subscriptions", subscriptions={"type": "array", "items": {"type": "string"}})
routes = [
    Endpoint("GET", "/api/realtime", connect, "Open a realtime stream (server-sent events)",
             description="Sends PB_CONNECT with the clientId, then one event per matching subscription.",
             errors=(429, 503), responses={200: {"description": "An event stream", "content": {
                 "text/event-stream": {"schema": SSE_EVENT}}}}),
    Endpoint("POST", "/api/realtime", set_subscriptions, "Replace a realtime client's subscriptions",
             request=SUBSCRIBE, errors=(400, 403, 404), response=None),
]
