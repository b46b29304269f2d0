"""Runtime settings (PocketBase's settings JSON), stored in ``_params`` and cached.

Only superusers read and change them. Secrets (``smtp.password``, ``s3.secret``,
``backups.s3.secret``) are write-only. A change stamps a version that other nodes poll,
so every node applies the same settings within seconds.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from bastion.core.auth.ratelimit import IDENTITY_DEFAULTS, identity_limit_errors
from bastion.core.errors import FieldError, ValidationFailed
from bastion.core.fields.text import EMAIL_RE, URL_RE
from bastion.core.ports import Database
from bastion.core.schema.tables import system_tables
from bastion.core.settings.cron import cron_problem
from bastion.core.settings.params import get_param, put_param

SETTINGS_KEY = "settings"
VERSION_KEY = "settings_version"
SAVE_FAILED = "An error occurred while saving the new settings."
HOST_RE = re.compile(  # a host name, an IPv4 address or a bracketed IPv6 address
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$")
LABEL_RE = re.compile(r"^(\w+ /[\w/-]*|/[\w/-]*|\w+:\w+|\*:\w+|\w+)$")
_S3 = {"enabled": False, "bucket": "", "region": "", "endpoint": "", "accessKey": "", "secret": "",
       "forcePathStyle": False}

DEFAULTS: dict[str, Any] = {
    "meta": {"appName": "Bastion", "appURL": "http://localhost:8090", "senderName": "Support",
             "senderAddress": "support@example.com", "hideControls": False, "accentColor": "#1055c9"},
    "logs": {"maxDays": 5, "minLevel": 0, "logIP": True, "logAuthId": False, "maxDataSize": 0},
    "smtp": {"enabled": False, "host": "smtp.example.com", "port": 587, "username": "", "password": "",
             "authMethod": "", "tls": False, "localName": ""},
    "s3": dict(_S3),
    "backups": {"cron": "", "cronMaxKeep": 3, "s3": dict(_S3)},
    "batch": {"enabled": False, "maxRequests": 50, "timeout": 3, "maxBodySize": 0},
    "rateLimits": {"enabled": False, "excludedIPs": [], "rules": [
        {"label": "*:auth", "audience": "", "duration": 3, "maxRequests": 2},
        {"label": "*:create", "audience": "", "duration": 5, "maxRequests": 20},
        {"label": "/api/batch", "audience": "", "duration": 1, "maxRequests": 3},
        {"label": "/api/", "audience": "", "duration": 10, "maxRequests": 300}]},
    "trustedProxy": {"headers": [], "useLeftmostIP": False},
    "superuserIPs": [],
    "identityRateLimits": IDENTITY_DEFAULTS,  # beyond PocketBase: see core/auth/ratelimit.py
    # beyond PocketBase: an update that takes a record out of a subscriber's view arrives
    # as a delete for that subscriber (docs/realtime.md)
    "realtime": {"scopeExitDeletes": False},
}
_KIND_NAMES = {bool: "boolean", str: "string", int: "integer"}
SECRETS = (("smtp", "password"), ("s3", "secret"), ("backups", "s3", "secret"))

# (section, key) -> (type, min, max); strings carry a max length
_SCALARS: dict[tuple[str, ...], tuple[type, float, float]] = {
    ("meta", "appName"): (str, 0, 255), ("meta", "appURL"): (str, 0, 2048),
    ("meta", "senderName"): (str, 0, 255), ("meta", "senderAddress"): (str, 0, 255),
    ("meta", "hideControls"): (bool, 0, 0), ("meta", "accentColor"): (str, 0, 32),
    ("logs", "maxDays"): (int, 0, 100_000), ("logs", "minLevel"): (int, -100, 100),
    ("logs", "logIP"): (bool, 0, 0), ("logs", "logAuthId"): (bool, 0, 0),
    ("logs", "maxDataSize"): (int, 0, 1 << 30),
    ("smtp", "enabled"): (bool, 0, 0), ("smtp", "host"): (str, 0, 255), ("smtp", "port"): (int, 1, 65535),
    ("smtp", "username"): (str, 0, 255), ("smtp", "password"): (str, 0, 255),
    ("smtp", "authMethod"): (str, 0, 10), ("smtp", "tls"): (bool, 0, 0), ("smtp", "localName"): (str, 0, 255),
    ("batch", "enabled"): (bool, 0, 0), ("batch", "maxRequests"): (int, 1, 10_000),
    ("batch", "timeout"): (int, 1, 3600), ("batch", "maxBodySize"): (int, 0, 2**40),
    ("rateLimits", "enabled"): (bool, 0, 0), ("trustedProxy", "useLeftmostIP"): (bool, 0, 0),
    ("realtime", "scopeExitDeletes"): (bool, 0, 0),
    ("backups", "cron"): (str, 0, 255), ("backups", "cronMaxKeep"): (int, 1, 10_000),
}
for _prefix in (("s3",), ("backups", "s3")):
    for _key in ("bucket", "region", "endpoint", "accessKey", "secret"):
        _SCALARS[(*_prefix, _key)] = (str, 0, 1024)
    _SCALARS[(*_prefix, "enabled")] = (bool, 0, 0)
    _SCALARS[(*_prefix, "forcePathStyle")] = (bool, 0, 0)


def _from_stored(raw: str | None) -> dict[str, Any]:
    stored = orjson.loads(raw) if raw else {}
    merged: dict[str, Any] = _merge(DEFAULTS, stored if isinstance(stored, dict) else {})
    return merged


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {k: _merge(base[k], patch[k]) if k in patch else base[k] for k in base}
    return copy.deepcopy(patch)


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _set_error(errors: dict[str, Any], path: tuple[str, ...], error: FieldError) -> None:
    node = errors
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = error


def _shape_errors(value: Any, default: Any, path: tuple[str, ...], errors: dict[str, Any]) -> None:
    if isinstance(default, dict):
        if not isinstance(value, dict):
            _set_error(errors, path, FieldError("validation_invalid_value", "Must be an object"))
            return
        for key, sub in default.items():
            _shape_errors(value.get(key), sub, (*path, key), errors)


def validate(settings: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        _shape_errors(settings.get(key), default, (key,), errors)
    if errors:
        return errors
    for path, (kind, lo, hi) in _SCALARS.items():
        value = _get(settings, path)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            _set_error(errors, path, FieldError("validation_invalid_value", "Must be an integer"))
        elif kind is not int and not isinstance(value, kind):
            _set_error(errors, path, FieldError("validation_invalid_value", f"Must be a {_KIND_NAMES[kind]}"))
        elif kind is int and not lo <= value <= hi:
            _set_error(errors, path, FieldError("validation_out_of_range", f"Must be between {lo:g} and {hi:g}"))
        elif kind is str and len(value) > hi:
            _set_error(errors, path, FieldError("validation_length_too_long", f"Must be at most {hi:g} characters"))
    if settings["smtp"]["authMethod"] not in ("", "PLAIN", "LOGIN"):
        _set_error(errors, ("smtp", "authMethod"), FieldError("validation_in_invalid", "Must be PLAIN, LOGIN or empty"))
    for path in (("rateLimits", "excludedIPs"), ("trustedProxy", "headers"), ("superuserIPs",)):
        value = _get(settings, path)
        if (not isinstance(value, list) or len(value) > 1000
                or not all(isinstance(v, str) and len(v) < 256 for v in value)):
            _set_error(errors, path, FieldError("validation_invalid_value", "Must be a list of strings"))
    if not errors:
        _validate_values(settings, errors)
    _validate_rate_rules(settings["rateLimits"]["rules"], errors)
    if identity_errors := identity_limit_errors(settings["identityRateLimits"]):
        errors["identityRateLimits"] = identity_errors
    return errors


def _required(errors: dict[str, Any], path: tuple[str, ...]) -> None:
    _set_error(errors, path, FieldError("validation_required", "Cannot be blank."))


def _validate_values(settings: dict[str, Any], errors: dict[str, Any]) -> None:
    """What PocketBase checks beyond types and ranges: required values, formats, and
    what an enabled SMTP server or S3 storage needs."""
    meta = settings["meta"]
    for key in ("appName", "appURL", "senderName", "senderAddress"):
        if not meta[key].strip():
            _required(errors, ("meta", key))
    if meta["appURL"].strip() and not URL_RE.match(meta["appURL"]):
        _set_error(errors, ("meta", "appURL"), FieldError("validation_is_url", "Must be a valid URL."))
    if meta["senderAddress"].strip() and not EMAIL_RE.match(meta["senderAddress"]):
        _set_error(errors, ("meta", "senderAddress"),
                   FieldError("validation_is_email", "Must be a valid email address."))
    smtp = settings["smtp"]
    if smtp["enabled"] and not smtp["host"]:
        _required(errors, ("smtp", "host"))
    for key in ("host", "localName"):
        if smtp[key] and not HOST_RE.match(smtp[key]):
            _set_error(errors, ("smtp", key),
                       FieldError("validation_is_host", "Must be a valid host name or IP address."))
    for prefix in (("s3",), ("backups", "s3")):
        s3 = _get(settings, prefix)
        if s3["enabled"]:
            for key in ("bucket", "region", "endpoint", "accessKey", "secret"):
                if not s3[key]:
                    _required(errors, (*prefix, key))
        if s3["endpoint"] and not URL_RE.match(s3["endpoint"]):
            _set_error(errors, (*prefix, "endpoint"), FieldError("validation_is_url", "Must be a valid URL."))
    cron = settings["backups"]["cron"]
    if cron and (problem := cron_problem(cron)):
        _set_error(errors, ("backups", "cron"),
                   FieldError("validation_invalid_cron", f"Invalid cron expression: {problem}."))


def _validate_rate_rules(rules: Any, errors: dict[str, Any]) -> None:
    if not isinstance(rules, list) or len(rules) > 1000:
        _set_error(errors, ("rateLimits", "rules"), FieldError("validation_invalid_value", "Must be a list of rules"))
        return
    seen: set[tuple[str, str]] = set()
    for i, rule in enumerate(rules):
        path = ("rateLimits", "rules", str(i))
        if not isinstance(rule, dict):
            _set_error(errors, path, FieldError("validation_invalid_value", "Must be an object"))
            continue
        label, audience = rule.get("label"), rule.get("audience", "")
        if not isinstance(label, str) or not LABEL_RE.match(label):
            _set_error(errors, (*path, "label"), FieldError("validation_invalid_value", "Invalid rate limit label"))
        if audience not in ("", "@guest", "@auth"):
            _set_error(errors, (*path, "audience"), FieldError("validation_in_invalid", "Must be '', @guest or @auth"))
        for key in ("duration", "maxRequests"):
            v = rule.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                _set_error(errors, (*path, key),
                           FieldError("validation_min_greater_equal_than_required", "Must be at least 1"))
        if (str(label), str(audience)) in seen:
            _set_error(errors, (*path, "label"),
                       FieldError("validation_duplicated_rate_limit_tag", "Duplicated label and audience"))
        seen.add((str(label), str(audience)))


class SettingsService:
    def __init__(self, db: Database):
        self.db = db
        self.table = system_tables(db.sql)["_params"]
        self.current: dict[str, Any] = copy.deepcopy(DEFAULTS)
        self.version = ""
        self.after_change: list[Callable[[], Any]] = []

    async def load(self) -> None:
        # The version first: a change committed between the two reads then leaves an
        # older version beside newer settings, which the next poll reloads; the other
        # order could keep old settings under the new version for good.
        async with self.db.read() as conn:
            version = await get_param(conn, self.table, VERSION_KEY) or ""
            raw = await get_param(conn, self.table, SETTINGS_KEY)
        self.current, self.version = _from_stored(raw), version

    async def reload_if_changed(self) -> bool:
        async with self.db.read() as conn:
            stored = await get_param(conn, self.table, VERSION_KEY) or ""
        if stored == self.version:
            return False
        await self.load()
        return True

    def public(self) -> dict[str, Any]:
        """The settings as the API shows them: secrets left out."""
        out = copy.deepcopy(self.current)
        for path in SECRETS:
            parent = _get(out, path[:-1])
            parent.pop(path[-1], None)
        return out

    async def update(self, patch: Any) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise ValidationFailed(SAVE_FAILED)
        patch = copy.deepcopy(patch)
        for path in SECRETS:  # an empty secret keeps the stored one
            try:
                parent = _get(patch, path[:-1])
            except (KeyError, TypeError):
                continue
            if isinstance(parent, dict) and parent.get(path[-1]) in ("", None):
                parent.pop(path[-1], None)
        patch = {k: v for k, v in patch.items() if k in DEFAULTS}
        stamp = str(time.time_ns())
        async with self.db.transaction() as conn:
            # The patch applies to the stored settings, read under a row lock, not to this
            # process's copy: another node's change since it was loaded is kept.
            version = await get_param(conn, self.table, VERSION_KEY, for_update=True) or ""
            current = self.current
            if version != self.version:
                current = _from_stored(await get_param(conn, self.table, SETTINGS_KEY))
            new = _merge(current, patch)
            errors = validate(new)
            if errors:
                raise ValidationFailed(SAVE_FAILED, errors)
            await put_param(conn, self.table, SETTINGS_KEY, orjson.dumps(new).decode())
            await put_param(conn, self.table, VERSION_KEY, stamp)
            notice = self.db.change_notice()
            if notice is not None:  # other nodes hear of it when this commits
                await conn.execute(notice)
        self.current, self.version = new, stamp
        for hook in self.after_change:
            hook()
        return self.public()
