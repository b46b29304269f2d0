"""Batch writes: create, update, upsert and delete across collections in one transaction.

All operations share one transaction, bounded by ``settings.batch.timeout``; the first
failure rolls every one of them back and names the failing request. The body of a batch
is bounded by ``settings.batch.maxBodySize`` or, when that is 0, by ``maxRequests`` times
``BYTES_PER_REQUEST``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bastion.core.access import RequestInfo
from bastion.core.errors import BadRequest, BastionError, Forbidden, ValidationFailed
from bastion.core.fields.upload import rule_view
from bastion.core.ports import Database
from bastion.core.records.changes import WriteJournal
from bastion.core.records.service import RecordService
from bastion.core.schema.registry import Registry
from bastion.core.settings.service import SettingsService

ACTIONS = ("create", "update", "upsert", "delete")
# What one sub-request may bring on average when ``maxBodySize`` is 0: a record of a few
# KiB with room to spare. (PocketBase allows 128 MiB; parsing that much JSON takes seconds.)
BYTES_PER_REQUEST = 16 * 1024


@dataclass
class BatchOp:
    action: str
    collection: str
    record_id: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchResult:
    status: int
    body: dict[str, Any] | None
    collection: Any = None


class BatchFailed(BadRequest):
    """One request of a batch failed; ``index`` and ``cause`` say which and why."""

    def __init__(self, index: int, cause: BastionError):
        super().__init__("Batch transaction failed.", {"requests": {str(index): {
            "code": "batch_request_failed", "message": "Batch request failed.", "response": cause.to_dict(),
        }}})


class BatchService:
    def __init__(self, db: Database, registry: Registry, records: RecordService, settings: SettingsService):
        self.db = db
        self.registry = registry
        self.records = records
        self.settings = settings

    def check_allowed(self, count: int) -> None:
        """Refuse a batch while batches are off (403) or of more than ``maxRequests`` (400)."""
        conf = self.settings.current["batch"]
        if not conf["enabled"] or conf["maxRequests"] <= 0:
            raise Forbidden("Batch requests are not allowed.")
        if count > conf["maxRequests"]:
            raise ValidationFailed("Invalid batch request data.", {"requests": {
                "code": "validation_length_too_long",
                "message": f"The length must be no more than {conf['maxRequests']}.",
            }})

    def body_limit(self) -> int:
        """The largest batch body in bytes: ``maxBodySize``, or ``maxRequests`` times
        ``BYTES_PER_REQUEST`` when that is 0."""
        conf = self.settings.current["batch"]
        return int(conf["maxBodySize"]) or int(conf["maxRequests"]) * BYTES_PER_REQUEST

    async def run(self, info: RequestInfo, ops: list[BatchOp]) -> list[BatchResult]:
        self.check_allowed(len(ops))
        timeout = self.settings.current["batch"]["timeout"]
        try:
            async with asyncio.timeout(timeout):
                return await self._all(info, ops)
        except TimeoutError:
            raise BadRequest(f"Batch transaction failed: it took longer than {timeout} s.") from None

    async def _all(self, info: RequestInfo, ops: list[BatchOp]) -> list[BatchResult]:
        """Every request in one transaction, its files and changes settled once it has
        ended (``core/records/changes.py``)."""
        journal = self.records.journal()
        try:
            async with self.db.transaction() as conn:
                results = [await self._one(conn, journal, info, i, op) for i, op in enumerate(ops)]
                await journal.seal(conn)
        except BaseException:
            await journal.failed()
            raise
        await journal.committed()
        return results

    async def _one(
        self, conn: Any, journal: WriteJournal, info: RequestInfo, index: int, op: BatchOp,
    ) -> BatchResult:
        sub = dataclasses.replace(
            info, context="batch", body=rule_view(op.body), query=op.query,
            headers={**info.headers, **op.headers}, method=_METHODS[op.action],
        )
        try:
            col = self.registry.get(op.collection, "Missing or invalid collection context.")
            if op.action == "upsert":
                record_id = op.body.get("id")
                exists = isinstance(record_id, str) and await self.records.exists(conn, col, record_id)
                if exists:
                    record = await self.records.update(sub, col, str(record_id), op.body, conn=conn, journal=journal)
                else:
                    record = await self.records.create(sub, col, op.body, conn=conn, journal=journal)
                return BatchResult(200, record, col)
            if op.action == "create":
                record = await self.records.create(sub, col, op.body, conn=conn, journal=journal)
                return BatchResult(200, record, col)
            if op.action == "update":
                record = await self.records.update(sub, col, op.record_id, op.body, conn=conn, journal=journal)
                return BatchResult(200, record, col)
            await self.records.delete(sub, col, op.record_id, conn=conn, journal=journal)
            return BatchResult(204, None, col)
        except BastionError as exc:
            raise BatchFailed(index, exc) from None


_METHODS = {"create": "POST", "update": "PATCH", "upsert": "PUT", "delete": "DELETE"}
