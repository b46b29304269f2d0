"""Webhooks: record changes sent to the endpoints superusers register, signed as the
Standard Webhooks specification says, delivered at least once.

A webhook names its URL, the collections (names or ids; none: all) and actions it wants,
and holds one or two secrets (``whsec_`` + base64): the current one and, after a
rotation, the previous one, both signing each delivery so receivers can switch over.

Nothing is lost between a commit and a delivery: a sealer (``core/records/changes.py``)
queues one ``_webhook`` job per matching webhook in the write's own transaction, so a
committed change always has its deliveries queued and a rolled-back one never has.
The jobs worker (``core/hooks/jobs.py``) posts them with retries and exponential backoff
with jitter; a delivery that runs out of attempts stays as a failed job (the dead
letter, listable and replayable), and a webhook whose ``maxFailures`` deliveries in a row
failed is disabled. Deliveries go only to public addresses unless the app allows private
ones (``--webhooks-allow-private``), checked when connecting; redirects are not followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa

from bastion.core.access import RequestInfo
from bastion.core.errors import FieldError, NotFound, ValidationFailed
from bastion.core.hooks.jobs import Job, JobKind, Jobs
from bastion.core.ports import Connection, Database, WebClient, WebError
from bastion.core.records.changes import RecordChange
from bastion.tools.ids import random_string
from bastion.tools.timeutil import now_string

log = logging.getLogger("bastion.webhooks")

JOB = "_webhook"
ACTIONS = ("create", "update", "delete")
TIMEOUT = 10.0
RESPONSE_LIMIT = 64 * 1024
CACHE_SECONDS = 2.0
Shape = Callable[[RecordChange], dict[str, Any]]  # a record as a superuser sees it, secrets left out


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256>`` per secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(base64.b64decode(s.removeprefix("whsec_")), signed,
                                          hashlib.sha256).digest()).decode()
        for s in secrets)


class Webhooks:
    def __init__(self, db: Database, table: sa.Table, jobs: Jobs, web: WebClient, shape: Shape,
                 allow_private: Callable[[], bool], clock: Callable[[], float] = time.time):
        self.db, self.table, self.jobs, self.web, self.shape = db, table, jobs, web, shape
        self.allow_private, self.clock = allow_private, clock
        self.kind = JobKind(JOB, self._deliver, retries=8, timeout=TIMEOUT + 5, backoff=3.0)
        self._cache: tuple[float, list[dict[str, Any]]] = (0.0, [])

    # -- registration -------------------------------------------------------------------
    async def create(self, body: Any) -> dict[str, Any]:
        values = _validated(body if isinstance(body, dict) else {}, None)
        now = now_string()
        row = {"id": random_string(15), "secrets": orjson.dumps([new_secret()]).decode(), "enabled": True,
               "failures": 0, "created": now, "updated": now, **values}
        async with self.db.transaction() as conn:
            await conn.execute(sa.insert(self.table).values(row))
        self._cache = (0.0, [])
        return _api(row, secrets=True)

    async def update(self, webhook_id: str, body: Any) -> dict[str, Any]:
        row = await self._row(webhook_id)
        values = _validated(body if isinstance(body, dict) else {}, row)
        if values.get("enabled"):
            values["failures"] = 0  # enabled again: its run of failures starts over
        return await self._set(webhook_id, {**values, "updated": now_string()})

    async def rotate(self, webhook_id: str) -> dict[str, Any]:
        """A new current secret; the previous one keeps signing until the next rotation."""
        row = await self._row(webhook_id)
        secrets = [new_secret(), orjson.loads(row["secrets"])[0]]
        return await self._set(webhook_id, {"secrets": orjson.dumps(secrets).decode(), "updated": now_string()},
                               secrets=True)

    async def delete(self, webhook_id: str) -> None:
        await self._row(webhook_id)
        async with self.db.transaction() as conn:
            await conn.execute(sa.delete(self.table).where(self.table.c.id == webhook_id))
        self._cache = (0.0, [])

    async def all(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all(sa.select(self.table).order_by(self.table.c.created, self.table.c.id))
        return [_api(r) for r in rows]

    async def get(self, webhook_id: str) -> dict[str, Any]:
        return _api(await self._row(webhook_id))

    async def _row(self, webhook_id: str) -> Any:
        async with self.db.read() as conn:
            row = await conn.fetch_one(sa.select(self.table).where(self.table.c.id == webhook_id))
        if row is None:
            raise NotFound("Missing or invalid webhook.")
        return row

    async def _set(self, webhook_id: str, values: dict[str, Any], secrets: bool = False) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            await conn.execute(sa.update(self.table).where(self.table.c.id == webhook_id).values(values))
        self._cache = (0.0, [])
        return _api(await self._row(webhook_id), secrets=secrets)

    # -- queueing, in the write's transaction ------------------------------------------------
    def wants(self, col: Any) -> bool:
        """Whether a write to ``col`` may have deliveries to queue (when in doubt, yes: the
        webhooks are read again at most every ``CACHE_SECONDS``)."""
        at, kept = self._cache
        if self.clock() - at >= CACHE_SECONDS:
            return True
        return any(not h["collections"] or col.name in h["collections"] or col.id in h["collections"] for h in kept)

    async def __call__(self, conn: Connection, changes: Sequence[RecordChange]) -> None:
        await self.seal(conn, changes)

    async def seal(self, conn: Connection, changes: Sequence[RecordChange]) -> None:
        """The sealer: one delivery job per change and matching enabled webhook."""
        hooks = await self._enabled(conn)
        if not hooks:
            return
        for change in changes:
            col = change.collection
            wanted = [h for h in hooks if change.action in h["actions"]
                      and (not h["collections"] or col.name in h["collections"] or col.id in h["collections"])]
            if not wanted:
                continue
            body = orjson.dumps({"type": f"record.{change.action}d", "timestamp": now_string(),
                                 "data": {"collection": col.name, "collectionId": col.id, "action": change.action,
                                          "record": self.shape(change)}}).decode()
            for hook in wanted:
                await self.jobs.enqueue(JOB, {"webhook": hook["id"], "id": "msg_" + random_string(24),
                                              "body": body}, conn=conn)

    async def _enabled(self, conn: Connection) -> list[dict[str, Any]]:
        at, kept = self._cache
        if self.clock() - at < CACHE_SECONDS:
            return kept
        t = self.table
        rows = await conn.fetch_all(sa.select(t.c.id, t.c.collections, t.c.actions).where(t.c.enabled == sa.true()))
        kept = [{"id": r["id"], "collections": set(orjson.loads(r["collections"])),
                 "actions": set(orjson.loads(r["actions"]))} for r in rows]
        self._cache = (self.clock(), kept)
        return kept

    # -- delivery ------------------------------------------------------------------------
    async def _deliver(self, job: Job) -> None:
        payload = job.payload
        try:
            row = await self._row(str(payload["webhook"]))
        except NotFound:
            return  # the webhook was deleted: nothing to deliver
        if not row["enabled"]:
            return
        body = str(payload["body"]).encode()
        stamp = int(self.clock())
        headers = {"content-type": "application/json", "webhook-id": str(payload["id"]),
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": signature(orjson.loads(row["secrets"]), str(payload["id"]), stamp, body),
                   "user-agent": "Bastion-Webhooks"}
        try:
            answer = await self.web.request("POST", row["url"], headers=headers, content=body, timeout=TIMEOUT,
                                            limit=RESPONSE_LIMIT, public_only=not self.allow_private())
        except WebError as exc:
            await self._failed(row, job, f"not delivered: {exc}")
            raise
        if not 200 <= answer.status < 300:
            await self._failed(row, job, f"answered {answer.status}")
            raise RuntimeError(f"the endpoint answered {answer.status}")
        if row["failures"]:
            await self._set(row["id"], {"failures": 0})

    async def _failed(self, row: Any, job: Job, why: str) -> None:
        """A failed attempt; the last one counts against the webhook, which is disabled at
        ``maxFailures`` such deliveries in a row."""
        kind_attempts = self.kind.retries + 1
        if job.attempt < kind_attempts:
            return
        failures = int(row["failures"]) + 1
        disable = failures >= int(row["maxFailures"])
        log.warning("webhook %s: delivery %s given up (%s)%s", row["id"], job.id, why,
                    "; the webhook is disabled" if disable else "")
        await self._set(row["id"], {"failures": failures, "enabled": not disable})

    async def replay(self, job_id: str) -> None:
        """Queue a failed delivery (a dead letter) again."""
        job = await self.jobs.get(job_id)
        if job is None or job["name"] != JOB or job["state"] != "failed":
            raise NotFound("Missing or invalid failed delivery.")
        await self.jobs.enqueue(JOB, job["payload"])


def _validated(body: dict[str, Any], row: Any) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    url = body.get("url", row["url"] if row is not None else None)
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2048 else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        errors["url"] = FieldError("validation_invalid_url", "Must be an http(s) URL of at most 2048 characters.")
    else:
        out["url"] = url
    for key, default, allowed in (("collections", [], None), ("actions", list(ACTIONS), ACTIONS)):
        value = body.get(key, orjson.loads(row[key]) if row is not None else default)
        if (not isinstance(value, list) or len(value) > 100
                or not all(isinstance(v, str) and v and (allowed is None or v in allowed) for v in value)):
            what = "/".join(allowed) if allowed else "collection names or ids"
            errors[key] = FieldError("validation_invalid_value", f"Must be a list of {what}.")
        else:
            out[key] = orjson.dumps(sorted(set(value))).decode()
    limit = body.get("maxFailures", row["maxFailures"] if row is not None else 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        errors["maxFailures"] = FieldError("validation_invalid_value", "Must be an integer from 1 to 10000.")
    else:
        out["maxFailures"] = limit
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            errors["enabled"] = FieldError("validation_invalid_value", "Must be true or false.")
        else:
            out["enabled"] = body["enabled"]
    if errors:
        raise ValidationFailed("Failed to save the webhook.", errors)
    return out


def _api(row: Any, secrets: bool = False) -> dict[str, Any]:
    out = {"id": row["id"], "url": row["url"], "collections": orjson.loads(row["collections"]),
           "actions": orjson.loads(row["actions"]), "enabled": bool(row["enabled"]), "failures": row["failures"],
           "maxFailures": row["maxFailures"], "created": row["created"], "updated": row["updated"]}
    if secrets:  # shown once, when made or rotated
        out["secrets"] = orjson.loads(row["secrets"])
    return out


def superuser_view(to_api: Callable[..., dict[str, Any]], superuser: RequestInfo) -> Shape:
    return lambda change: to_api(change.collection, change.record, superuser)
