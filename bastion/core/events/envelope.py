"""The message format of outbox events: a CloudEvents 1.0 envelope in JSON.

Version 1 (``ENVELOPE_VERSION``; the ``bastionversion`` extension attribute says which
one a consumer reads)::

    {"specversion": "1.0", "id": "<event id>", "source": "/bastion/collections/<name>",
     "type": "bastion.record.created" | "bastion.record.updated" | "bastion.record.deleted",
     "time": "<RFC 3339, UTC>", "subject": "<record id>",
     "datacontenttype": "application/json", "bastionversion": "1", "sequence": <int>,
     "data": {"collection": "<name>", "collectionId": "<id>", "action": "create" | ...,
              "record": {...}, "previous": {...} | null}}

``record`` is the record as stored (for a delete: as it was), ``previous`` the record
before an update where the writer read it; both as the API shows them to a superuser,
without secret fields (password hashes, ``tokenKey``). ``sequence`` grows with every
event of one database; it is added when the event is published.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from bastion.core.records.changes import RecordChange
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection

ENVELOPE_VERSION = "1"
TYPES = {"create": "bastion.record.created", "update": "bastion.record.updated",
         "delete": "bastion.record.deleted"}

# The API's view of a stored record for a superuser, secret fields left out.
Shape = Callable[[Collection, Record], dict[str, Any]]


def envelope(change: RecordChange, event_id: str, shape: Shape, now: datetime | None = None) -> dict[str, Any]:
    """The envelope of ``change`` (without ``sequence``, known once it is stored)."""
    col = change.collection
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/bastion/collections/{col.name}",
        "type": TYPES[change.action],
        "time": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "subject": change.record.id,
        "datacontenttype": "application/json",
        "bastionversion": ENVELOPE_VERSION,
        "data": {
            "collection": col.name,
            "collectionId": col.id,
            "action": change.action,
            "record": shape(col, change.record),
            "previous": shape(col, change.previous) if change.previous is not None else None,
        },
    }


def with_sequence(stored: str | bytes, sequence: int) -> bytes:
    """The stored envelope as published: with its ``sequence`` attribute."""
    event = orjson.loads(stored)
    event["sequence"] = sequence
    return orjson.dumps(event)
