"""From a committed change to the messages each subscriber of this process receives.

For every change: clients bound to a changed auth record are refreshed or unbound
(a new ``tokenKey``, a deleted record); then each subscription whose topic names the
record or its collection is checked (``checks.Checks``: the viewRule for
``COLLECTION/ID``, the listRule and the subscription's filter for ``COLLECTION/*`` and
a bare ``COLLECTION``), with ``@request.context = "realtime"`` and the client's bound
auth. What passes is shaped for that subscriber (hidden fields for superusers only,
``email`` for the owner or a manageRule match, its ``expand`` and ``fields``) and
queued as ``{"action", "record"}`` under the subscription's own string. Subscribers
who would receive the same bytes share one encoding.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bastion.core.access import AuthIdentity, RequestInfo
from bastion.core.auth.api_keys import ApiKeyService
from bastion.core.errors import BastionError
from bastion.core.realtime.checks import Checks
from bastion.core.realtime.client import Client
from bastion.core.realtime.hub import Entry, Hub
from bastion.core.realtime.topics import Topic
from bastion.core.records.changes import RecordChange
from bastion.core.records.expand import Expander
from bastion.core.records.service import RecordService
from bastion.core.schema.registry import Registry
from bastion.core.schema.system_collections import API_KEYS

log = logging.getLogger("bastion.realtime")

# The checks (database reads) one client's subscriptions may cost per change; past it
# that client's remaining topics are skipped for the change. 1000 filtered topics on
# one collection would otherwise make every write cost 1000 reads for one stream.
MAX_CHECKS_PER_CLIENT = 100

# Picks the ``fields`` of a subscription from a record's JSON (the API's own picker).
Pick = Callable[[Any, str], Any]


@dataclass
class _Event:
    """What one change's dispatch worked out once for all its subscribers."""

    change: RecordChange
    seen: dict[tuple[Any, ...], bool] = field(default_factory=dict)
    checks: dict[Client, int] = field(default_factory=dict)
    encoded: dict[tuple[Any, ...], bytes | None] = field(default_factory=dict)


class Dispatcher:
    def __init__(self, hub: Hub, registry: Registry, checks: Checks, records: RecordService, expander: Expander,
                 api_keys: ApiKeyService, settings: Callable[[], dict[str, Any]]):
        self.hub = hub
        self.registry = registry
        self.checks = checks
        self.records = records
        self.expander = expander
        self.api_keys = api_keys
        self.settings = settings
        self.pick: Pick | None = None

    async def deliver(self, changes: list[RecordChange]) -> None:
        keys_checked: dict[str, bool] = {}
        for change in changes:
            self._rebind(change)
            if change.collection.name == API_KEYS or change.collection.is_view:
                continue
            await self._dispatch(_Event(change), keys_checked)

    # -- bound auth --------------------------------------------------------------------
    def _rebind(self, change: RecordChange) -> None:
        """Refresh clients bound to a changed auth record; unbind them when its tokenKey
        changed or it was deleted (they stay connected, as guests)."""
        col = change.collection
        if not col.is_auth:
            return
        record = change.record
        for client in self.hub.bound_to(col.id, record.id):
            if client.auth is None:
                continue
            if change.action == "delete" or record.get("tokenKey") != client.auth.record.get("tokenKey"):
                self.hub.bind(client, None, None)
            else:
                client.auth = AuthIdentity(col, dict(record))

    async def _caller(self, client: Client, keys_checked: dict[str, bool]) -> RequestInfo | None:
        """Who the client is now, for its rules; None when its binding lapsed since
        (unbound here: a collection's token secret changed, an API key was revoked)."""
        auth = client.auth
        if auth is not None:
            col = self.registry.find(auth.collection.id)
            secret = (col.auth or {}).get("authToken", {}).get("secret") if col is not None else None
            if col is None or secret != auth.collection.auth.get("authToken", {}).get("secret"):
                self.hub.bind(client, None, None)
                return RequestInfo(method="GET", context="realtime")
            if col is not auth.collection:
                client.auth = auth = AuthIdentity(col, auth.record)
        if client.api_key is not None:
            token = client.api_token
            if token not in keys_checked:
                keys_checked[token] = await self.api_keys.identify(token) is not None
            if not keys_checked[token]:
                self.hub.bind(client, None, None)
        return RequestInfo(auth=client.auth, api_key=client.api_key, method="GET", context="realtime")

    # -- subscribers ---------------------------------------------------------------------
    async def _dispatch(self, event: _Event, keys_checked: dict[str, bool]) -> None:
        col, record = event.change.collection, event.change.record
        for key in (f"{col.name}/{record.id}", f"{col.id}/{record.id}", f"{col.name}/*", f"{col.id}/*",
                    col.name, col.id):
            subs = self.hub.subscribers(key)
            if subs is None:
                continue
            rule_name = "listRule" if key in (col.name, col.id) or key.endswith("/*") else "viewRule"
            owner = self.checks.owner_field(col, rule_name)
            entries = subs.all() if owner is None else subs.for_owner(str(record.get(owner) or ""))
            await self._to_each(event, rule_name, list(entries), keys_checked)

    async def _to_each(self, event: _Event, rule_name: str, entries: list[Entry],
                       keys_checked: dict[str, bool]) -> None:
        for client, topic in entries:
            if client.closed:
                continue
            info = await self._caller(client, keys_checked)
            if info is None:
                continue
            try:
                data = await self._message(event, client, topic, rule_name, info)
            except Exception:  # noqa: BLE001 - one subscriber's failure must not stop the others
                log.exception("realtime: could not prepare an event for client %s", client.id)
                continue
            if data is not None:
                client.send(topic.raw, data)

    async def _message(
        self, event: _Event, client: Client, topic: Topic, rule_name: str, info: RequestInfo,
    ) -> bytes | None:
        change = event.change
        info.query, info.headers = topic.query, topic.headers
        context = (rule_name, client.identity, client.privileged, tuple(sorted(topic.query.items())),
                   tuple(sorted(topic.headers.items())))
        if context not in event.seen:
            spent = event.checks.get(client, 0)
            if spent >= MAX_CHECKS_PER_CLIENT:
                if spent == MAX_CHECKS_PER_CLIENT:
                    log.warning("realtime client %s: more than %d distinct checks for one change; "
                                "its other topics are skipped for it", client.id, MAX_CHECKS_PER_CLIENT)
                    event.checks[client] = spent + 1
                return None
            event.checks[client] = spent + 1
            event.seen[context] = await self.checks.visible(
                info, change.collection, rule_name, topic.filter, change.record)
        if event.seen[context]:
            return await self._encoded(event, change.action, client, topic, info)
        if await self._left_scope(event, context, rule_name, topic, info):
            return orjson.dumps({"action": "delete", "record": {
                "collectionId": change.collection.id, "collectionName": change.collection.name,
                "id": change.record.id}})
        return None

    async def _left_scope(self, event: _Event, context: tuple[Any, ...], rule_name: str, topic: Topic,
                          info: RequestInfo) -> bool:
        """With ``realtime.scopeExitDeletes`` on: whether an update took the record out of
        what this subscriber sees (it saw the record as it was before)."""
        change = event.change
        if change.action != "update" or change.previous is None:
            return False
        if not (self.settings().get("realtime") or {}).get("scopeExitDeletes"):
            return False
        before = ("before", *context)
        if before not in event.seen:
            event.seen[before] = await self.checks.visible(
                info, change.collection, rule_name, topic.filter, change.previous)
        return event.seen[before]

    async def _encoded(
        self, event: _Event, action: str, client: Client, topic: Topic, info: RequestInfo,
    ) -> bytes | None:
        col, record = event.change.collection, event.change.record
        # Whether this subscriber sees an auth record's email: its owner, a superuser, a
        # manageRule match, or anyone when the record shows it.
        email = bool(col.is_auth and (
            info.is_superuser or record.get("emailVisibility")
            or (info.auth is not None and info.auth.collection.id == col.id and info.auth.id == record.id)
            or await self._manages(event, client, info)))
        # The same bytes for every subscriber who sees the same fields; with expand, the
        # related records depend on who asks.
        shape = (info.is_superuser, email, topic.expand, client.identity if topic.expand else None, topic.fields)
        if shape not in event.encoded:
            out = self.records.to_api(col, record, info, include_email=email)
            if topic.expand:
                try:
                    await self.expander.apply(info, col, [out], topic.expand)
                except BastionError as exc:  # as PocketBase: the record goes without it
                    log.debug("realtime expand %r failed: %s", topic.expand, exc)
            data: Any = out
            if topic.fields and self.pick is not None:
                try:
                    data = self.pick(out, topic.fields)
                except BastionError:
                    data = out
            event.encoded[shape] = orjson.dumps({"action": action, "record": data})
        return event.encoded[shape]

    async def _manages(self, event: _Event, client: Client, info: RequestInfo) -> bool:
        key = ("manageRule", client.identity)
        if key not in event.seen:
            change = event.change
            event.seen[key] = await self.checks.visible(info, change.collection, "manageRule", "", change.record)
        return event.seen[key]


Deliver = Callable[[list[RecordChange]], Awaitable[None]]
