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

**Per identity** (``IdentityLimiter``, ``settings.identityRateLimits``): every auth
endpoint also counts per (collection, endpoint, identity) — the email, identity, OTP or
record the request targets, trimmed and lower-cased, stored only as a hash — in the same
fixed windows, whatever the caller's IP. Unknown identities count exactly like real ones.

**Lockout**: see ``Lockout``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bastion.core.errors import FieldError, TooManyRequests, Unavailable
from bastion.core.schema.collections import Collection
from bastion.core.store import Store

log = logging.getLogger("bastion.ratelimit")

GUEST_AUDIENCES = ("", "@guest")
AUTH_AUDIENCES = ("", "@auth")


class RateLimited(TooManyRequests):
    """429 "Too Many Requests." with the seconds after which a retry may succeed."""

    def __init__(self, retry_after: float, message: str = ""):
        super().__init__(message)
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
        return float(min(self.first_lock * 2**steps, self.max_lock))


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
        clock: Callable[[], float] = time.time, message: str = "",
    ):
        self.store = store
        self.policy = policy or LockoutPolicy()
        self.prefix = prefix
        self.message = message
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.store is not None and self.policy.max_failures > 0

    def _keys(self, collection: Collection, identity: str) -> tuple[str, str, str]:
        """The failure count, the lock (a timestamp) and the count the last lock was set at."""
        who = hashlib.sha256(f"{collection.id}\x1f{identity.strip().lower()}".encode()).hexdigest()[:32]
        return f"{self.prefix}fail:{who}", f"{self.prefix}until:{who}", f"{self.prefix}mark:{who}"

    async def check_locked(self, collection: Collection, identity: str) -> None:
        """Raise ``RateLimited`` while (collection, identity) is locked."""
        if self.store is None or not self.enabled or not identity:
            return
        lock_key = self._keys(collection, identity)[1]
        try:
            until = await self.store.get(lock_key)
        except Unavailable:
            return
        remaining = _remaining(until, self._clock())
        if remaining > 0:
            raise RateLimited(remaining, self.message)

    async def begin_attempt(self, collection: Collection, identity: str) -> None:
        """Refuse while locked; otherwise count this attempt as a failure until
        :meth:`record_success` says otherwise.

        Counting before the check (an atomic increment in the store) is what holds
        parallel guesses to the limit: were failures counted after the password or code
        was checked, every guess sent at once would pass before the first was counted.
        The attempt past the limit locks the identity itself."""
        await self.check_locked(collection, identity)
        if self.store is None or not self.enabled or not identity:
            return
        keys = self._keys(collection, identity)
        try:
            failures = (await self.store.incr(keys[0], self.policy.window)).value
            # Up to the limit, then one attempt after each lock runs out; any more at once
            # are refused and lock the identity again.
            allowed = self.policy.max_failures
            mark = await self.store.get(keys[2]) if failures > allowed else None
            if mark is not None:
                allowed = int(mark) + 1
            if failures <= allowed:
                return
            seconds = await self._lock(collection, keys, failures)
        except (Unavailable, ValueError):
            return
        raise RateLimited(seconds, self.message)

    async def record_failure(self, collection: Collection, identity: str) -> None:
        """A failed attempt begun with :meth:`begin_attempt` (already counted): lock the
        identity once there are too many."""
        if self.store is None or not self.enabled or not identity:
            return
        keys = self._keys(collection, identity)
        try:
            failures = int(await self.store.get(keys[0]) or 0)
            if failures >= self.policy.max_failures:
                await self._lock(collection, keys, failures)
        except (Unavailable, ValueError):
            return

    async def _lock(self, collection: Collection, keys: tuple[str, str, str], failures: int) -> float:
        assert self.store is not None
        fail_key, lock_key, mark_key = keys
        seconds = self.policy.lock_for(max(failures, self.policy.max_failures))
        await self.store.set(lock_key, f"{self._clock() + seconds:.3f}", seconds)
        await self.store.set(mark_key, str(failures), seconds + self.policy.window)
        await self.store.expire(fail_key, seconds + self.policy.window)
        log.warning("sign-in (%s) to %s locked for %gs after %d failures (identity %s)",
                    self.prefix, collection.name, seconds, failures, lock_key[-8:])
        return seconds

    async def record_success(self, collection: Collection, identity: str) -> None:
        """Forget the failures of (collection, identity)."""
        if self.store is None or not self.enabled or not identity:
            return
        try:
            await self.store.delete(*self._keys(collection, identity))
        except Unavailable:
            return


def _remaining(until: str | None, now: float) -> float:
    """Seconds left of a stored lock (``until`` is a timestamp), 0 when none."""
    try:
        return float(until) - now if until else 0.0
    except ValueError:
        return 0.0


# -- per identity ---------------------------------------------------------------------

OTP_TOO_MANY = "Too many attempts, please try again later with a new OTP."
# Failed codes across all of an identity's OTPs: 10 within an hour lock OTP sign-in for
# 5 minutes, then twice as long after each further failure, up to a day.
OTP_LOCKOUT = LockoutPolicy(max_failures=10, window=3600, first_lock=300, max_lock=86400)
# (duration s, maxRequests): sign-ins allow a person's retries; requests send email, and
# confirmations carry tokens that a person clicks once or twice.
_IDENTITY_WINDOWS = {
    "authWithPassword": (60, 20), "authWithOTP": (180, 5), "authWithTOTP": (180, 5), "authWithOAuth2": (60, 20),
    "requestOTP": (900, 5), "requestPasswordReset": (900, 5), "requestVerification": (900, 5),
    "requestEmailChange": (900, 5), "confirmPasswordReset": (900, 10), "confirmVerification": (900, 10),
    "confirmEmailChange": (900, 10),
}
IDENTITY_DEFAULTS: dict[str, Any] = {"enabled": True, "rules": [
    {"label": f"*:{tag}", "duration": duration, "maxRequests": count}
    for tag, (duration, count) in _IDENTITY_WINDOWS.items()
]}
IDENTITY_TAGS = tuple(_IDENTITY_WINDOWS)
_IDENTITY_LABEL = re.compile(r"^(\*|\w+):(\w+)$")


def normalise_identity(identity: str) -> str:
    """What an identity is compared as: trimmed and lower-cased (emails, usernames, ids)."""
    return identity.strip().lower()


def identity_hash(collection: Collection, identity: str) -> str:
    return hashlib.sha256(f"{collection.id}\x1f{normalise_identity(identity)}".encode()).hexdigest()[:32]


class IdentityLimiter:
    """``settings.identityRateLimits``: fixed windows per (collection, endpoint, identity).

    Rules are ``{"label": "<collection>:<tag>" or "*:<tag>", "duration", "maxRequests"}``
    with the tags of ``IDENTITY_TAGS``; a collection's own label wins over ``*``. The
    count does not look at whether the identity exists. Without a store, or when the
    store is unreachable, nothing is limited.
    """

    def __init__(self, settings: Callable[[], Mapping[str, Any]], store: Store | None, prefix: str = "idl:"):
        self._settings = settings
        self.store = store
        self.prefix = prefix

    def _config(self) -> Mapping[str, Any]:
        return self._settings().get("identityRateLimits") or {}

    def _window(self, collection: Collection, tag: str, identity: str) -> tuple[str, Mapping[str, Any]] | None:
        """The store key and rule of ``identity``'s window for ``tag``, if one applies."""
        config = self._config()
        if self.store is None or not config.get("enabled") or not normalise_identity(identity):
            return None
        rule = find_rule(config.get("rules") or [], [f"{collection.name}:{tag}", f"*:{tag}"], ("",))
        if rule is None:
            return None
        rule_id = _digest(collection.id, tag, rule["label"], rule["duration"], rule["maxRequests"])
        return f"{self.prefix}{rule_id}:{identity_hash(collection, identity)}", rule

    async def hit(self, collection: Collection, tag: str, identity: str, message: str = "") -> None:
        """Count one request for ``identity``; raise ``RateLimited`` once its window is full."""
        window = self._window(collection, tag, identity)
        if self.store is None or window is None:
            return
        key, rule = window
        try:
            count = await self.store.incr(key, float(rule["duration"]))
        except Unavailable:
            return
        if count.value > int(rule["maxRequests"]):
            raise RateLimited(count.expires_in, message)

    async def forget(self, collection: Collection, tag: str, identity: str) -> None:
        """Close ``identity``'s current window for ``tag``: for checks where only the
        right secret succeeds (a TOTP code), so a success costs the owner nothing."""
        window = self._window(collection, tag, identity)
        if self.store is None or window is None:
            return
        try:
            await self.store.delete(window[0])
        except Unavailable:
            return

    async def remember_otp(self, collection: Collection, otp_id: str, email: str, ttl: float) -> None:
        """Note whose ``otpId`` this is (made-up ids too), so that guesses at its code
        count against the email it was requested for."""
        if self.store is None:
            return
        try:
            await self.store.set(f"{self.prefix}otp:{identity_hash(collection, otp_id)}",
                                 identity_hash(collection, email), ttl)
        except Unavailable:
            return

    async def otp_identity(self, collection: Collection, otp_id: str) -> str:
        """The identity guesses at ``otp_id`` count against: its email's hash, else the id."""
        if self.store is not None:
            try:
                owner = await self.store.get(f"{self.prefix}otp:{identity_hash(collection, otp_id)}")
            except Unavailable:
                owner = None
            if owner:
                return "email#" + owner
        return "otp#" + otp_id


def identity_limit_errors(value: Any) -> dict[str, Any]:
    """Validation errors of ``settings.identityRateLimits`` (empty when it is valid)."""
    errors: dict[str, Any] = {}
    if not isinstance(value.get("enabled"), bool):
        errors["enabled"] = FieldError("validation_invalid_value", "Must be a boolean")
    rules = value.get("rules")
    if not isinstance(rules, list) or len(rules) > 1000:
        errors["rules"] = FieldError("validation_invalid_value", "Must be a list of rules")
        return errors
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        problems: dict[str, Any] = {}
        if not isinstance(rule, dict):
            errors.setdefault("rules", {})[str(i)] = FieldError("validation_invalid_value", "Must be an object")
            continue
        label = rule.get("label")
        match = _IDENTITY_LABEL.match(label) if isinstance(label, str) else None
        if match is None or match.group(2) not in IDENTITY_TAGS:
            problems["label"] = FieldError(
                "validation_invalid_value",
                f"Must be <collection>:<tag> or *:<tag> with a tag of {', '.join(IDENTITY_TAGS)}")
        elif label in seen:
            problems["label"] = FieldError("validation_duplicated_rate_limit_tag", "Duplicated label")
        seen.add(str(label))
        for key in ("duration", "maxRequests"):
            v = rule.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10_000_000:
                problems[key] = FieldError("validation_invalid_value", "Must be an integer between 1 and 10000000")
        if problems:
            errors.setdefault("rules", {})[str(i)] = problems
    return errors
