"""Rate limits (PocketBase's ``settings.rateLimits``) and the password sign-in lockout.

**Rule lookup** follows PocketBase's ``FindRateLimitRule``. A request has a list of
labels, most specific first: for collection routes ``"<collection>:<tag>"`` for each of
its tags, then ``"*:<tag>"`` for each tag; then ``"METHOD /path"`` and ``"/path"``. For
each label in turn, a rule with exactly that label wins, else a prefix rule (a label
ending in ``/``) that starts ``label + "/"``. Only rules whose audience fits are
considered: ``""`` and ``"@guest"`` for a guest, ``""`` and ``"@auth"`` for a caller with
a valid token. Superusers and ``excludedIPs`` (exact addresses or CIDR ranges) are exempt.

**Counting** is a fixed window per (rule, client IP) that opens at the first request
and lasts the rule's ``duration``; request ``maxRequests + 1`` inside it gets 429 with
``Retry-After`` = seconds until the window closes. Refused requests count too but never
extend the window. As in PocketBase, a collection route counts each collection and route
separately: ``*:create`` allows ``maxRequests`` creates per collection. A fixed window
lets a client burst up to twice the limit across a window boundary; in exchange a check
is one atomic increment, the same on Redis and in memory. A rule change starts new
windows (the rule is part of the key). When the store is unreachable, requests pass.

**Lockout**: see ``Lockout``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bastion.core.collections import Collection
from bastion.core.errors import TooManyRequests, Unavailable
from bastion.core.store import Store

log = logging.getLogger("bastion.ratelimit")

GUEST_AUDIENCES = ("", "@guest")
AUTH_AUDIENCES = ("", "@auth")


class RateLimited(TooManyRequests):
    """429 "Too Many Requests." with the seconds after which a retry may succeed."""

    def __init__(self, retry_after: float):
        super().__init__()
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass(frozen=True)
class Target:
    """What a request is to the rate limiter: method, path and, on collection routes,
    the collection and the route's tags (``("authWithPassword", "auth")``)."""

    method: str
    path: str
    collection: Collection | None = None
    tags: tuple[str, ...] = ()

    def labels(self) -> list[str]:
        labels: list[str] = []
        if self.collection is not None:
            labels += [f"{self.collection.name}:{tag}" for tag in self.tags]
            labels += [f"*:{tag}" for tag in self.tags]
        return [*labels, f"{self.method} {self.path}", self.path]


def find_rule(
    rules: Sequence[Mapping[str, Any]], labels: Sequence[str], audiences: Iterable[str]
) -> Mapping[str, Any] | None:
    """The first rule matching ``labels`` in PocketBase's order (see the module doc)."""
    allowed = set(audiences)
    fitting = [r for r in rules if r.get("audience", "") in allowed]
    prefixes = [r for r in fitting if str(r.get("label", "")).endswith("/")]
    for label in labels:
        for rule in fitting:
            if rule.get("label") == label:
                return rule
        for rule in prefixes:
            if (label + "/").startswith(str(rule["label"])):
                return rule
    return None


@lru_cache(maxsize=64)
def _networks(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[Any, ...]]:
    exact, nets = set(), []
    for entry in entries:
        entry = entry.strip()
        if "/" in entry:
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                log.warning("rateLimits.excludedIPs: %r is not an IP or CIDR range", entry)
        elif entry:
            exact.add(entry)
    return frozenset(exact), tuple(nets)


def ip_listed(ip: str, entries: Sequence[str]) -> bool:
    """True when ``ip`` is one of ``entries`` (addresses or CIDR ranges)."""
    exact, nets = _networks(tuple(entries))
    if ip in exact:
        return True
    if not nets:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == net.version and addr in net for net in nets)


def _digest(*parts: object) -> str:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).hexdigest()


class RateLimiter:
    """Applies ``settings.rateLimits`` (read on every call, so changes apply at once)."""

    def __init__(self, settings: Callable[[], Mapping[str, Any]], store: Store, prefix: str = "rl:"):
        self._settings = settings
        self.store = store
        self.prefix = prefix

    def _config(self) -> Mapping[str, Any]:
        return self._settings().get("rateLimits") or {}

    @property
    def enabled(self) -> bool:
        return bool(self._config().get("enabled"))

    def applies_to(self, ip: str) -> bool:
        """False when limits are off or ``ip`` is excluded: no need to identify the caller."""
        config = self._config()
        return bool(config.get("enabled")) and not ip_listed(ip, config.get("excludedIPs") or ())

    def may_limit(self, target: Target) -> bool:
        """Whether some rule, for any audience, could apply (else the caller need not be
        identified)."""
        rules = self._config().get("rules") or []
        return find_rule(rules, target.labels(), (*GUEST_AUDIENCES, "@auth")) is not None

    async def check(self, target: Target, ip: str, *, authed: bool, superuser: bool = False) -> None:
        """Count the request; raise ``RateLimited`` when its rule's window is full."""
        if superuser or not self.applies_to(ip):
            return
        rules = self._config().get("rules") or []
        rule = find_rule(rules, target.labels(), AUTH_AUDIENCES if authed else GUEST_AUDIENCES)
        if rule is None:
            return
        if not ip:
            log.warning("rate limit skipped: no client IP for %s %s", target.method, target.path)
            return
        scope = f"{target.collection.id}:{','.join(target.tags)}" if target.collection is not None else ""
        rule_id = _digest(scope, rule["label"], rule.get("audience", ""), rule["duration"], rule["maxRequests"])
        try:
            count = await self.store.incr(f"{self.prefix}{rule_id}:{ip}", float(rule["duration"]))
        except Unavailable:
            return  # fail open; the store adapter has logged why
        if count.value > int(rule["maxRequests"]):
            raise RateLimited(count.expires_in)


@dataclass(frozen=True)
class LockoutPolicy:
    """When password sign-in locks an identity; ``max_failures=0`` turns the lockout off."""

    max_failures: int = 5
    window: float = 15 * 60
    first_lock: float = 30
    max_lock: float = 15 * 60

    def lock_for(self, failures: int) -> float:
        """Seconds of lock after the ``failures``-th failure in a row (doubling, capped)."""
        steps = min(failures - self.max_failures, 32)
        return min(self.first_lock * 2**steps, self.max_lock)


class Lockout:
    """Refuses password sign-in for an identity after repeated failures.

    ``max_failures`` failed attempts for one (collection, identity) within ``window``
    seconds of the first lock it for ``first_lock`` seconds. While it is locked and for
    ``window`` seconds after, each further failure locks it again for twice as long, up
    to ``max_lock``. A locked identity gets 429 even with the right password; a
    successful sign-in clears everything. Unknown identities count like real ones, so a
    lock does not reveal whether an account exists. Identities are compared
    case-insensitively and stored only as hashes.

    State lives in the ``Store``, so with Redis a lock holds on every node. When the
    store is unreachable, sign-in is allowed (logged by the store adapter): the
    alternative would be refusing every sign-in.
    """

    def __init__(
        self, store: Store | None, policy: LockoutPolicy | None = None, prefix: str = "lock:",
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.policy = policy or LockoutPolicy()
        self.prefix = prefix
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.store is not None and self.policy.max_failures > 0

    def _keys(self, collection: Collection, identity: str) -> tuple[str, str]:
        who = hashlib.sha256(f"{collection.id}\x1f{identity.strip().lower()}".encode()).hexdigest()[:32]
        return f"{self.prefix}fail:{who}", f"{self.prefix}until:{who}"

    async def check_locked(self, collection: Collection, identity: str) -> None:
        """Raise ``RateLimited`` while (collection, identity) is locked."""
        if self.store is None or not self.enabled or not identity:
            return
        _, lock_key = self._keys(collection, identity)
        try:
            until = await self.store.get(lock_key)
        except Unavailable:
            return
        if until is None:
            return
        try:
            remaining = float(until) - self._clock()
        except ValueError:
            return
        if remaining > 0:
            raise RateLimited(remaining)

    async def record_failure(self, collection: Collection, identity: str) -> None:
        """Count a failed sign-in; lock the identity once there are too many."""
        if self.store is None or not self.enabled or not identity:
            return
        fail_key, lock_key = self._keys(collection, identity)
        policy = self.policy
        try:
            failures = (await self.store.incr(fail_key, policy.window)).value
            if failures < policy.max_failures:
                return
            seconds = policy.lock_for(failures)
            await self.store.set(lock_key, f"{self._clock() + seconds:.3f}", seconds)
            await self.store.expire(fail_key, seconds + policy.window)
        except Unavailable:
            return
        log.warning("password sign-in to %s locked for %gs after %d failures (identity %s)",
                    collection.name, seconds, failures, lock_key[-8:])

    async def record_success(self, collection: Collection, identity: str) -> None:
        """Forget the failures of (collection, identity)."""
        if self.store is None or not self.enabled or not identity:
            return
        try:
            await self.store.delete(*self._keys(collection, identity))
        except Unavailable:
            return
