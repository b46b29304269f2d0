"""Keyset (cursor) pagination: stable pages under inserts, without OFFSET.

A list request with ``cursor`` (empty for the first page) sorts by the requested plain
fields and then by ``id``, and answers with ``nextCursor``: an opaque token holding the
sort and the last row's sort values. The next page continues strictly after that row,
so rows inserted meanwhile never shift or repeat a page. The token's values are bound
parameters like any other value, and the access rule still applies to every page.

A token is signed (HMAC-SHA256 with a server secret, bound to the collection), so a
client cannot forge sort values to probe rows it could not list. It holds only values of
fields the caller may read: hidden fields and, for anyone but a superuser, the email of
an auth collection cannot be cursor sort keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from bastion.core.access import RequestInfo
from bastion.core.errors import BadRequest
from bastion.core.ports import Row
from bastion.core.schema.collections import Collection

MAX_CURSOR = 4096


@dataclass(frozen=True)
class Keyset:
    keys: tuple[tuple[str, bool], ...]  # (field, descending); always ends with ("id", False)


def keyset_for(sort: str, col: Collection, info: RequestInfo) -> Keyset:
    keys: list[tuple[str, bool]] = []
    for part in (p.strip() for p in sort.split(",") if p.strip()):
        name, desc = part.lstrip("+-"), part.startswith("-")
        f = col.field(name)
        if (
            f is None or not f.SORTABLE or f.multi
            or (not info.is_superuser and (f.hidden or (col.is_auth and name == "email")))
        ):
            raise BadRequest(
                f"Invalid sort for cursor pagination: {name!r} is not a plain sortable field "
                "(use fields of type text, number, bool, date ...; no relations paths or @random).")
        if name != "id":
            keys.append((name, desc))
    if len(keys) > 8:
        raise BadRequest("Invalid sort parameter: at most 8 fields.")
    return Keyset((*keys, ("id", False)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, collection_id: str, body: bytes) -> bytes:
    return hmac.new(secret, collection_id.encode() + b"\x00" + body, hashlib.sha256).digest()[:18]


def encode(keyset: Keyset, row: Row, secret: bytes, collection_id: str) -> str:
    payload = {"k": [[name, desc] for name, desc in keyset.keys], "v": [row[name] for name, _ in keyset.keys]}
    body = orjson.dumps(payload)
    return f"{_b64(body)}.{_b64(_mac(secret, collection_id, body))}"


def decode(token: str, keyset: Keyset, secret: bytes, collection_id: str) -> list[Any] | None:
    """The last row's values, or None for the first page; 400 for a token that doesn't fit."""
    if not token:
        return None
    try:
        if len(token) > MAX_CURSOR:
            raise ValueError
        body_text, _, mac_text = token.partition(".")
        body = _unb64(body_text)
        if not hmac.compare_digest(_unb64(mac_text), _mac(secret, collection_id, body)):
            raise ValueError
        payload = orjson.loads(body)
        keys = [tuple(k) for k in payload["k"]]
        values = payload["v"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("Invalid cursor: it is not a token this server issued.") from None
    if keys != list(keyset.keys) or len(values) != len(keyset.keys):
        raise BadRequest("Invalid cursor: it was issued for a different sort; repeat the sort you started with.")
    if not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise BadRequest("Invalid cursor: unexpected values.")
    return list(values)


def after(keyset: Keyset, table: sa.Table, values: list[Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after ``values`` in the keyset order."""
    clauses = []
    for i, (name, desc) in enumerate(keyset.keys):
        column = table.c[name]
        equal = [table.c[n] == values[j] for j, (n, _) in enumerate(keyset.keys[:i])]
        step = column < values[i] if desc else column > values[i]
        clauses.append(sa.and_(*equal, step))
    return sa.or_(*clauses)


def order(keyset: Keyset, table: sa.Table) -> list[Any]:
    return [table.c[name].desc() if desc else table.c[name].asc() for name, desc in keyset.keys]
