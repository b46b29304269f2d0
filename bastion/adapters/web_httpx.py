"""Outbound HTTP through httpx: ``core.ports.WebClient`` for OAuth2 providers.

httpx is imported on the first request, so a server that never talks to a provider
does not load it. Every httpx failure becomes ``WebError`` here; core never sees an
httpx exception.
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.core.ports import WebError, WebResponse


class HttpxWebClient:
    """One short-lived client per request, redirects not followed, the body read in
    chunks and given up on as soon as it passes ``limit``."""

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None, timeout: float, limit: int,
    ) -> WebResponse:
        import httpx

        try:
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
                client.stream(method, url, headers=headers, content=content) as resp,
            ):
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise WebError(f"response larger than {limit} bytes")
                return WebResponse(resp.status_code, bytes(body))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise WebError(repr(exc)) from exc
