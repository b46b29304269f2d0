"""Outbound HTTP through httpx: ``core.ports.WebClient`` for OAuth2 providers.

httpx is imported on the first request, so a server that never talks to a provider
does not load it. Every httpx failure becomes ``WebError`` here; core never sees an
httpx exception.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

from bastion.core.ports import WebError, WebResponse


class HttpxWebClient:
    """One short-lived client per request, redirects not followed, the body read in
    chunks and given up on as soon as it passes ``limit``."""

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None, timeout: float, limit: int, public_only: bool = False,
    ) -> WebResponse:
        import httpx

        extensions: dict[str, Any] = {}
        try:
            if public_only:
                url, headers, extensions = await _pinned(httpx.URL(url), dict(headers or {}))
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
                client.stream(method, url, headers=headers, content=content, extensions=extensions) as resp,
            ):
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise WebError(f"response larger than {limit} bytes")
                return WebResponse(resp.status_code, bytes(body))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise WebError(repr(exc)) from exc


async def _pinned(url: Any, headers: dict[str, str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` with its host replaced by the one address it is connected to, after every
    address the host resolves to was checked to be public; the Host header and TLS name
    stay the host's, so the request and the certificate check are unchanged."""
    host = url.host
    if not host or url.scheme not in ("http", "https"):
        raise WebError(f"not an http(s) URL: {url}")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebError(f"cannot resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            raise WebError(f"{host} resolves to {address}, which is not a public address")
    if not addresses:
        raise WebError(f"{host} resolves to no address")
    pinned = url.copy_with(host=str(addresses[0]))
    default_port = url.port is None
    headers = {**headers, "Host": host if default_port else f"{host}:{port}"}
    return str(pinned), headers, ({"sni_hostname": host} if url.scheme == "https" else {})
