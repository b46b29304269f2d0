"""Unclean request paths are redirected to their clean form, as PocketBase's router does.

A path with an empty segment (``//``), a ``.`` or a ``..`` segment is answered, whatever
the method and whether a route exists, with ``307 Temporary Redirect`` to the cleaned path
(query kept): ``/api//health`` goes to ``/api/health``, ``/api/x/../health`` to
``/api/health``; a trailing slash stays. The path is cleaned as sent, still
percent-encoded, so ``%2e%2e`` is not a ``..`` segment. The redirect comes before CORS,
security headers and routing, bare as PocketBase's; GET and HEAD get a small HTML body
with the link, other methods none (a client repeats the request, body included, at the
new address).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_HTML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})


def clean_path(path: str) -> str:
    """``path`` without empty, ``.`` and ``..`` segments; a trailing slash is kept."""
    parts: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def needs_cleaning(raw: bytes) -> bool:
    return b"//" in raw or b"/." in raw


class CleanPathMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if not raw or not needs_cleaning(raw) or not raw.startswith(b"/"):
            await self.app(scope, receive, send)
            return
        path = raw.decode("latin-1")
        cleaned = clean_path(path)
        if cleaned == path:
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        location = cleaned + ("?" + query if query else "")
        headers = [(b"location", location.encode("latin-1"))]
        body = b""
        if scope["method"] in ("GET", "HEAD"):
            body = f'<a href="{location.translate(_HTML_ESCAPES)}">Temporary Redirect</a>.\n\n'.encode("latin-1")
            headers.append((b"content-type", b"text/html; charset=utf-8"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 307, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
