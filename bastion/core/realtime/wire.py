"""What the event bus carries: committed changes, and messages for one client.

A change travels as its action, its collection's id and the record's stored values
(the values before an update too), so the process that receives it can check each
subscriber's rules and shape the record for each of them, whichever process wrote it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from bastion.core.records.changes import RecordChange
from bastion.core.records.record import Record
from bastion.core.schema.registry import Registry

VERSION = 1


@dataclass(frozen=True, slots=True)
class Direct:
    """A message for one client, wherever it is connected (the OAuth2 redirect's)."""

    client_id: str
    event: str
    data: bytes
    ip: str  # the address the message came from; the client must have connected from it


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A subscription request that reached a process which does not hold the client: the
    one that does applies it and answers with a ``Reply``."""

    request: str
    client_id: str
    ip: str
    token: str
    topics: list[str]


@dataclass(frozen=True, slots=True)
class Reply:
    request: str
    status: int
    message: str


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _values(record: Record) -> dict[str, Any]:
    # Row keys may be str subclasses (SQLAlchemy's quoted names), which orjson refuses.
    return {str(k): v for k, v in record.items()}


def encode_changes(changes: Sequence[RecordChange]) -> bytes:
    return orjson.dumps({"v": VERSION, "changes": [
        {"a": c.action, "c": c.collection.id, "r": _values(c.record),
         "p": _values(c.previous) if c.previous is not None else None}
        for c in changes]}, default=_plain)


def encode_direct(message: Direct) -> bytes:
    return orjson.dumps({"v": VERSION, "direct": {
        "client": message.client_id, "event": message.event, "data": message.data.decode(), "ip": message.ip}})


def encode_subscribe(message: Subscribe) -> bytes:
    return orjson.dumps({"v": VERSION, "subscribe": {
        "request": message.request, "client": message.client_id, "ip": message.ip, "token": message.token,
        "topics": message.topics}})


def encode_reply(message: Reply) -> bytes:
    return orjson.dumps({"v": VERSION, "reply": {
        "request": message.request, "status": message.status, "message": message.message}})


Decoded = list[RecordChange] | Direct | Subscribe | Reply | None


def decode(message: bytes, registry: Registry) -> Decoded:
    """The changes (of collections this process knows) or the direct message in
    ``message``; None for what it cannot read (a newer version, garbage)."""
    try:
        data = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        return None
    direct = data.get("direct")
    if isinstance(direct, dict):
        return Direct(str(direct.get("client", "")), str(direct.get("event", "")),
                      str(direct.get("data", "")).encode(), str(direct.get("ip", "")))
    sub = data.get("subscribe")
    if isinstance(sub, dict):
        topics = sub.get("topics")
        return Subscribe(str(sub.get("request", "")), str(sub.get("client", "")), str(sub.get("ip", "")),
                         str(sub.get("token", "")),
                         [str(t) for t in topics] if isinstance(topics, list) else [])
    reply = data.get("reply")
    if isinstance(reply, dict):
        return Reply(str(reply.get("request", "")), int(reply.get("status") or 0), str(reply.get("message", "")))
    out = []
    for item in data.get("changes") or ():
        col = registry.find(str(item.get("c", "")))
        if col is None or item.get("a") not in ("create", "update", "delete") or not isinstance(item.get("r"), dict):
            continue  # a collection created or dropped meanwhile on the writer's side
        previous = item.get("p")
        out.append(RecordChange(item["a"], col, Record(col, item["r"]),
                                Record(col, previous) if isinstance(previous, dict) else None))
    return out
