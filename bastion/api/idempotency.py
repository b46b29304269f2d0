"""``Idempotency-Key`` on record creates, updates and batches: a request repeated with
the same key (by the same caller, within ``WINDOW``) gets the first one's answer
instead of running again, marked ``Idempotent-Replayed: true``.

The first request claims the key by inserting its row (the key is unique, so of two at
once one claims it; the other is answered 409 while the first runs). Its answer is kept
unless it is a 5xx (then the key is let go, so a retry runs). A repeat whose method,
path or body differs from the first's is refused with 422. The key is scoped by the
caller (their record, API key or, for guests, address), so one caller cannot read
another's answers. A multipart body's fingerprint is its method and path only: its
boundary changes with every sending.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from bastion.api.errors import response_for
from bastion.api.http import app_of, request_info
from bastion.api.ratelimit import client_ip
from bastion.api.routing import Handler
from bastion.core.errors import BadRequest, BastionError, Conflict
from bastion.tools.timeutil import format_datetime

WINDOW = timedelta(hours=24)
MAX_KEY = 255
HEADER = "idempotency-key"


class KeyReused(BastionError):
    status = 422


class KeyBusy(BastionError):
    status = 409


def idempotent(handler: Handler) -> Handler:
    """``handler``, answering repeats of an ``Idempotency-Key`` from the first answer."""

    async def handle(request: Request) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return await handler(request)
        if not 0 < len(key) <= MAX_KEY or not key.isprintable():
            raise BadRequest(f"The Idempotency-Key header must be 1 to {MAX_KEY} printable characters.")
        app = app_of(request)
        table = app.idempotency
        row_id = await _row_id(request, key)
        fingerprint = await _fingerprint(request)
        kept = await _claim(request, table, row_id, fingerprint)
        if kept is not None:
            return kept
        try:
            response = await handler(request)
        except BaseException as exc:
            if isinstance(exc, BastionError) and exc.status < 500:
                status, _headers, body = response_for(exc, "")  # the error's usual answer
                await _keep(request, row_id, status, body, "application/json")
            else:
                await _forget(request, row_id)
            raise
        if response.status_code >= 500:
            await _forget(request, row_id)
        else:
            await _keep(request, row_id, response.status_code, bytes(response.body), response.media_type or "")
        return response

    return handle


async def _row_id(request: Request, key: str) -> str:
    info = await request_info(request)
    if info.auth is not None:
        caller = f"record:{info.auth.collection.id}:{info.auth.id}"
    elif info.api_key is not None:
        caller = f"key:{info.api_key.id}"
    else:
        caller = f"ip:{client_ip(request.scope, app_of(request).settings.current)}"
    return hashlib.sha256(f"{caller}\x00{key}".encode()).hexdigest()


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.url.path}?{request.url.query}\x00".encode())
    if not request.headers.get("content-type", "").lower().startswith("multipart/"):
        digest.update(await request.body())
    return digest.hexdigest()


async def _claim(request: Request, table: sa.Table, row_id: str, fingerprint: str) -> Response | None:
    """Claim the key (None), or the answer a repeat gets."""
    app = app_of(request)
    now = datetime.now(UTC)
    if random.random() < 0.01:  # noqa: S311 - now and then, forget what the window let go
        async with app.db.transaction() as conn:
            await conn.execute(sa.delete(table).where(table.c.created < format_datetime(now - WINDOW)))
    for _ in range(2):
        # Read first: on SQLite the first request holds the write lock for as long as it
        # runs, so a repeat must learn that it is busy without writing.
        async with app.db.read() as conn:
            row = await conn.fetch_one(sa.select(table).where(table.c.id == row_id))
        if row is None:
            try:
                async with app.db.transaction() as conn:
                    await conn.execute(sa.insert(table).values(
                        id=row_id, fingerprint=fingerprint, status=0, created=format_datetime(now)))
                return None
            except Conflict:
                continue  # claimed meanwhile: read what it is
        if row["created"] < format_datetime(now - WINDOW):
            await _forget(request, row_id)
            continue
        if row["fingerprint"] != fingerprint:
            raise KeyReused("This Idempotency-Key was used with a different request.")
        if not row["status"]:
            raise KeyBusy("A request with this Idempotency-Key is still running; try again shortly.")
        return Response(row["body"] or b"", status_code=row["status"], media_type=row["contentType"] or None,
                        headers={"Idempotent-Replayed": "true"})
    raise KeyBusy("A request with this Idempotency-Key is still running; try again shortly.")


async def _keep(request: Request, row_id: str, status: int, body: bytes, content_type: str) -> None:
    table = app_of(request).idempotency
    async with app_of(request).db.transaction() as conn:
        await conn.execute(sa.update(table).where(table.c.id == row_id).values(
            status=status, body=body.decode("utf-8", "replace"), contentType=content_type[:100]))


async def _forget(request: Request, row_id: str) -> None:
    table = app_of(request).idempotency
    async with app_of(request).db.transaction() as conn:
        await conn.execute(sa.delete(table).where(table.c.id == row_id))
