"""``/api/files``: downloads of record files (thumbs included) and file tokens.

A download answers as PocketBase's does, and as a careful static file server would:
``ETag`` and ``Last-Modified`` with 304 answers, one byte range (206, or 416 when it
cannot be met), ``?download=1`` for an attachment, and headers that keep a file from
running in the app's origin: only images, audio, video and PDF are shown inline (SVG
and HTML never are), and every answer is sandboxed by ``Content-Security-Policy`` (and
carries ``X-Content-Type-Options: nosniff``, as every answer does). Every refusal is a 404, as in PocketBase.
"""

from __future__ import annotations

import re
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bastion.api.errors import FRAMEABLE
from bastion.api.http import RuleHeaders, app_of, json_response, request_info, request_token
from bastion.api.routing import Auth, Endpoint
from bastion.core.access import RequestInfo
from bastion.core.errors import Unauthorized
from bastion.core.files.service import SNIFF_BYTES, Served
from bastion.tools import sniff

INLINE = frozenset({
    "image/png", "image/jpg", "image/jpeg", "image/gif", "image/webp", "image/x-icon", "image/bmp",
    "video/webm", "video/mp4", "video/3gpp", "video/quicktime", "video/x-ms-wmv",
    "audio/basic", "audio/aiff", "audio/mpeg", "audio/midi", "audio/mp3", "audio/wave",
    "audio/wav", "audio/x-wav", "audio/x-mpeg", "audio/x-m4a", "audio/aac",
    "application/pdf", "application/x-pdf",
})
# Types the bytes alone do not tell apart (zip containers, script text), by extension: only
# for bytes sniffed as one of ``GENERIC`` (a GIF named x.js stays a GIF).
BY_EXTENSION = {
    ".svg": "image/svg+xml", ".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
GENERIC = frozenset({"text/plain", "application/octet-stream", "application/zip", "text/xml", "application/xml"})
FIXED_HEADERS = {
    FRAMEABLE.decode(): "1",  # no X-Frame-Options: other sites may frame a file, as in PocketBase
    "Cache-Control": "max-age=2592000, stale-while-revalidate=86400",
    "Content-Security-Policy": "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox",
    "Accept-Ranges": "bytes",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})


async def _caller(request: Request) -> RequestInfo:
    """Who asks for a protected file: a file token in ``?token=`` (PocketBase's way) or
    in the ``Authorization`` header, where an auth token is taken too."""
    auth = app_of(request).auth
    query, header = request.query_params.get("token", ""), request_token(request)
    identity = await auth.identify(query, kind="file") if query else None
    if identity is None and header:
        identity = await auth.identify(header, kind="file") or await auth.identify(header)
    return RequestInfo(auth=identity, method="GET", context="protectedFile",
                       headers=RuleHeaders(request.scope["headers"]), query=dict(request.query_params))


async def download(request: Request) -> Response:
    p = request.path_params
    served = await app_of(request).file_service.locate(
        lambda: _caller(request), p["collection"], p["record"], p["filename"], request.query_params.get("thumb", ""))
    return await _serve(request, served)


async def _serve(request: Request, served: Served) -> Response:
    stored = served.stored
    etag = stored.etag if stored.etag.startswith('"') else f'"{stored.etag}"'
    headers = {**FIXED_HEADERS, "ETag": etag, "Last-Modified": formatdate(stored.modified, usegmt=True)}
    if _not_modified(request, etag, stored.modified):
        return Response(status_code=304, headers=headers)
    data = served.data
    ctype = stored.content_type
    if not ctype:
        head = data[:SNIFF_BYTES] if data is not None else await _head(served)
        ctype = sniff.content_type(head)
    ext = served.name[served.name.rfind("."):] if "." in served.name else ""
    shown = BY_EXTENSION.get(ext.lower(), ctype) if ctype.split(";")[0] in GENERIC else ctype
    inline = shown.split(";")[0] in INLINE and request.query_params.get("download", "") not in _TRUE
    headers["Content-Type"] = shown
    headers["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{served.name}"'
    span = _range(request, etag, stored.size)
    status = 200
    start, length = 0, stored.size
    if isinstance(span, str):  # unsatisfiable
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{stored.size}"})
    if span is not None:
        start, length = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{stored.size}"
    headers["Content-Length"] = str(length)
    if data is not None:
        return Response(data[start:start + length], status_code=status, headers=headers)
    return StreamingResponse(served.storage.read(served.key, start, length), status_code=status, headers=headers)


async def _head(served: Served) -> bytes:
    head = b""
    async for chunk in served.storage.read(served.key, 0, SNIFF_BYTES):
        head += chunk
    return head


def _not_modified(request: Request, etag: str, modified: float) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = [t.strip().removeprefix("W/") for t in match.split(",")]
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return int(modified) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
    return False


def _range(request: Request, etag: str, size: int) -> tuple[int, int] | str | None:
    """The one byte range asked for as (start, length), "unsatisfiable", or None for the
    whole file (no range, several ranges, a malformed one, or an ``If-Range`` that no
    longer matches)."""
    spec = request.headers.get("range")
    if not spec or size == 0:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return None
    match = _RANGE.match(spec.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        n = min(int(last), size)
        return (size - n, n) if n > 0 else "unsatisfiable"
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end - start + 1


async def file_token(request: Request) -> Response:
    info = await request_info(request)
    if info.auth is None:
        raise Unauthorized("The request requires valid record authorization token.")
    return json_response(request, {"token": app_of(request).auth.file_token(info.auth)})


def _param(name: str, where: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": {"type": "string"}}


DOWNLOAD_PARAMS = [
    _param("collection", "path", "The collection's id or name"),
    _param("record", "path", "The record's id"),
    _param("filename", "path", "The stored file name"),
    _param("thumb", "query", "A thumb size the field lists (or 100x100): WxH, WxHt, WxHb, WxHf, 0xH, Wx0"),
    _param("download", "query", "1 or true: serve as an attachment"),
    _param("token", "query", "A file token (POST /api/files/token) for a protected file"),
]
_TOKEN: dict[str, Any] = {"type": "object", "properties": {"token": {"type": "string"}}, "required": ["token"]}

routes = [
    Endpoint("POST", "/api/files/token", file_token, "A short-lived token for protected files",
             Auth.RECORD, response=lambda _name: _TOKEN, errors=(401,)),
    Endpoint("GET", "/api/files/{collection}/{record}/{filename}", download,
             "Download a file of a record (or a thumb of an image: ?thumb=WxH)", Auth.RULES,
             ratelimit=("file",), errors=(404,), params=DOWNLOAD_PARAMS,
             description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
             responses={200: {"description": "The file's bytes", "content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}}),
]
