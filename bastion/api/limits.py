"""Request body size limit, enforced while the body streams in."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.errors import BadRequest, PayloadTooLarge

DEFAULT_BODY_LIMIT = 32 * 1024 * 1024


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int = DEFAULT_BODY_LIMIT):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    if int(value) > self.limit:
                        raise PayloadTooLarge()
                except ValueError:
                    raise BadRequest("Invalid Content-Length header.") from None
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge()
            return message

        await self.app(scope, limited, send)
