"""The realtime clients of this process, and their topics indexed for dispatch.

Topics are indexed by their key (the part before ``?``), then by who the client is:
its auth record's id for a record bound client, ``""`` for a guest, and apart for the
privileged (superusers and API keys, whom rules do not filter). An event for a record
whose rule is ``owner = @request.auth.id`` then looks at the clients bound to that
owner only (``Subscribers.for_owner``), not at every subscriber of the collection.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.core.errors import BastionError, Unavailable
from bastion.core.realtime.client import Client
from bastion.core.realtime.topics import Topic

if TYPE_CHECKING:
    from bastion.core.access import AuthIdentity
    from bastion.core.auth.api_keys import ApiKeyScope

log = logging.getLogger("bastion.realtime")

Entry = tuple[Client, Topic]


class TooManyFromAddress(BastionError):
    status = 429


@dataclass(frozen=True)
class Limits:
    """How many streams this process holds, in all and from one address."""

    clients: int = 20_000
    per_ip: int = 500
    idle: float = 300.0  # seconds without a message before a stream is closed
    lifetime: float = 1800.0  # seconds after which a stream is closed in any case
    # characters of subscription strings the streams of one address hold in all: what a
    # client makes this process keep (each stream may hold 1000 topics of 2500)
    topic_chars_per_ip: int = 16 * 1024 * 1024


class Subscribers:
    """The clients subscribed to one topic key."""

    __slots__ = ("by_owner", "privileged")

    def __init__(self) -> None:
        self.by_owner: dict[str, dict[Client, list[Topic]]] = {}
        self.privileged: dict[Client, list[Topic]] = {}

    def add(self, client: Client, topic: Topic) -> None:
        bucket = self.privileged if client.privileged else self.by_owner.setdefault(_owner(client), {})
        bucket.setdefault(client, []).append(topic)

    def remove(self, client: Client) -> None:
        """Forget ``client`` (filed under who it is now: unindex before rebinding)."""
        if client.privileged:
            self.privileged.pop(client, None)
            return
        owner = _owner(client)
        bucket = self.by_owner.get(owner)
        if bucket is not None and bucket.pop(client, None) is not None and not bucket:
            del self.by_owner[owner]

    def __bool__(self) -> bool:
        return bool(self.by_owner or self.privileged)

    def all(self) -> Iterator[Entry]:
        yield from _entries(self.privileged)
        for bucket in self.by_owner.values():
            yield from _entries(bucket)

    def for_owner(self, owner: str) -> Iterator[Entry]:
        """The privileged, and the clients bound to the record ``owner`` (guests for ``""``)."""
        yield from _entries(self.privileged)
        yield from _entries(self.by_owner.get(owner, {}))


def _owner(client: Client) -> str:
    return client.auth.id if client.auth is not None else ""


def _entries(bucket: dict[Client, list[Topic]]) -> Iterator[Entry]:
    for client, topics in list(bucket.items()):
        for topic in topics:
            yield client, topic


class Hub:
    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.clients: dict[str, Client] = {}
        self._per_ip: Counter[str] = Counter()
        self._chars_per_ip: Counter[str] = Counter()
        self._topics: dict[str, Subscribers] = {}
        self._by_identity: dict[tuple[str, str], set[Client]] = {}

    # -- connections ------------------------------------------------------------------
    def connect(self, ip: str) -> Client:
        if len(self.clients) >= self.limits.clients:
            log.warning("realtime connection refused: %d streams open, the most this process holds",
                        len(self.clients))
            raise Unavailable("The server holds as many realtime connections as it can; try again shortly.")
        if self._per_ip[ip] >= self.limits.per_ip:
            raise TooManyFromAddress(f"Too many realtime connections from {ip}; close some and try again.")
        client = Client(ip)
        self.clients[client.id] = client
        self._per_ip[ip] += 1
        return client

    def disconnect(self, client: Client) -> None:
        if self.clients.pop(client.id, None) is None:
            return
        self._per_ip[client.ip] -= 1
        if self._per_ip[client.ip] <= 0:
            del self._per_ip[client.ip]
        self._chars_per_ip[client.ip] -= sum(len(raw) for raw in client.topics)
        if self._chars_per_ip[client.ip] <= 0:
            del self._chars_per_ip[client.ip]
        self._unindex(client)
        client.topics = {}
        client.close(client.closed or "disconnected")

    def close_all(self, reason: str) -> None:
        for client in list(self.clients.values()):
            client.close(reason)

    # -- topics and binding -------------------------------------------------------------
    def subscribe(self, client: Client, topics: list[Topic]) -> None:
        """Replace the client's topics (refused, changing nothing, past the address's budget)."""
        held = sum(len(raw) for raw in client.topics)
        wanted = sum(len(t.raw) for t in topics)
        if self._chars_per_ip[client.ip] - held + wanted > self.limits.topic_chars_per_ip:
            raise TooManyFromAddress(f"Too many realtime subscriptions from {client.ip}; "
                                     "close some streams or subscribe to fewer topics.")
        self._chars_per_ip[client.ip] += wanted - held
        self._unindex(client)
        client.topics = {t.raw: t for t in topics}
        self._index(client)

    def unsubscribe(self, client: Client, raw: str) -> None:
        if raw in client.topics:
            self._chars_per_ip[client.ip] -= len(raw)
            self._unindex(client)
            del client.topics[raw]
            self._index(client)

    def bind(self, client: Client, auth: AuthIdentity | None, api_key: ApiKeyScope | None,
             api_token: str = "") -> None:
        """Set who the client is (its topics are filed again under the new identity)."""
        self._unindex(client)
        client.auth = auth
        client.api_key = api_key
        client.api_token = api_token
        self._index(client)

    def bound_to(self, collection_id: str, record_id: str) -> list[Client]:
        return list(self._by_identity.get((collection_id, record_id), ()))

    def subscribers(self, key: str) -> Subscribers | None:
        return self._topics.get(key)

    def _index(self, client: Client) -> None:
        for topic in client.topics.values():
            self._topics.setdefault(topic.key, Subscribers()).add(client, topic)
        identity = client.identity
        if identity is not None:
            self._by_identity.setdefault(identity, set()).add(client)

    def _unindex(self, client: Client) -> None:
        for key in {t.key for t in client.topics.values()}:
            subs = self._topics.get(key)
            if subs is not None:
                subs.remove(client)
                if not subs:
                    del self._topics[key]
        identity = client.identity
        if identity is not None:
            bound = self._by_identity.get(identity)
            if bound is not None:
                bound.discard(client)
                if not bound:
                    del self._by_identity[identity]
