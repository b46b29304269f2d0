"""The collections every app starts with: ``_superusers`` and the default ``users``."""

from __future__ import annotations

from typing import Any

from bastion.core.schema.collections import ID_PATTERN, auth_field_specs

SUPERUSERS = "_superusers"
SUPERUSERS_ID = "pbc_3142635823"
USERS_ID = "_pb_users_auth_"

_AUTODATES = [
    {"name": "created", "type": "autodate", "system": True, "onCreate": True, "onUpdate": False},
    {"name": "updated", "type": "autodate", "system": True, "onCreate": True, "onUpdate": True},
]
_ID = {"name": "id", "type": "text", "system": True, "required": True, "primaryKey": True,
       "min": 15, "max": 15, "pattern": ID_PATTERN, "autogeneratePattern": "[a-z0-9]{15}"}


def _auth_fields(*fields: dict[str, Any]) -> list[dict[str, Any]]:
    """An auth collection's system fields first (submitted fields keep their place, and
    missing system fields would come after them), then ``fields``."""
    return [_ID, *auth_field_specs(), *fields]


# The record a system row belongs to: which collection, which record.
_RECORD_REFS = [
    {"name": "collectionRef", "type": "text", "system": True, "required": True},
    {"name": "recordRef", "type": "text", "system": True, "required": True},
]


def superusers_definition() -> dict[str, Any]:
    return {
        "id": SUPERUSERS_ID, "name": SUPERUSERS, "type": "auth", "system": True,
        "listRule": None, "viewRule": None, "createRule": None, "updateRule": None,
        "deleteRule": None, "authRule": "", "manageRule": None,
        "authToken": {"duration": 86400},
        "fields": _auth_fields(*_AUTODATES),
    }


def users_definition() -> dict[str, Any]:
    owner = "id = @request.auth.id"
    return {
        "id": USERS_ID, "name": "users", "type": "auth", "system": False,
        "listRule": owner, "viewRule": owner, "createRule": "", "updateRule": owner,
        "deleteRule": owner, "authRule": "", "manageRule": None,
        "oauth2": {"mappedFields": {"id": "", "name": "name", "username": "", "avatarURL": "avatar"}},
        # As PocketBase's: its created and updated fields are not system fields.
        "fields": _auth_fields(
            {"name": "name", "type": "text", "max": 255},
            {"name": "avatar", "type": "file", "maxSelect": 1,
             "mimeTypes": ["image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"]},
            *({**f, "system": False} for f in _AUTODATES),
        ),
    }


OTPS = "_otps"
OTPS_ID = "pbc_1638494021"
_OWNER = "@request.auth.id != '' && recordRef = @request.auth.id && collectionRef = @request.auth.collectionId"


def otps_definition() -> dict[str, Any]:
    """One-time passwords sent by email: hashed, single use, expiring, attempt-limited."""
    return {
        "id": OTPS_ID, "name": OTPS, "type": "base", "system": True,
        "listRule": _OWNER, "viewRule": _OWNER, "createRule": None, "updateRule": None, "deleteRule": None,
        "fields": [
            *_RECORD_REFS,
            {"name": "password", "type": "password", "system": True, "hidden": True, "required": True},
            {"name": "sentTo", "type": "text", "system": True, "hidden": True},
            {"name": "attempts", "type": "number", "system": True, "hidden": True},
            *_AUTODATES,
        ],
        "indexes": ["CREATE INDEX `idx_otps_record` ON `_otps` (`collectionRef`, `recordRef`)"],
    }


EXTERNAL_AUTHS = "_externalAuths"
EXTERNAL_AUTHS_ID = "pbc_2281828961"


def external_auths_definition() -> dict[str, Any]:
    """Links from an auth record to its accounts at OAuth2 providers (one per provider)."""
    return {
        "id": EXTERNAL_AUTHS_ID, "name": EXTERNAL_AUTHS, "type": "base", "system": True,
        "listRule": _OWNER, "viewRule": _OWNER, "createRule": None, "updateRule": None, "deleteRule": _OWNER,
        "fields": [
            *_RECORD_REFS,
            {"name": "provider", "type": "text", "system": True, "required": True},
            {"name": "providerId", "type": "text", "system": True, "required": True},
            *_AUTODATES,
        ],
        "indexes": [
            "CREATE UNIQUE INDEX `idx_externalAuths_record_provider` "
            "ON `_externalAuths` (`collectionRef`, `recordRef`, `provider`)",
            "CREATE UNIQUE INDEX `idx_externalAuths_collection_provider` "
            "ON `_externalAuths` (`collectionRef`, `provider`, `providerId`)",
        ],
    }


AUTH_ORIGINS = "_authOrigins"
AUTH_ORIGINS_ID = "pbc_4275539003"


def auth_origins_definition() -> dict[str, Any]:
    """Devices (IP + user agent fingerprints) each record signed in from: new-device alerts."""
    return {
        "id": AUTH_ORIGINS_ID, "name": AUTH_ORIGINS, "type": "base", "system": True,
        "listRule": _OWNER, "viewRule": _OWNER, "createRule": None, "updateRule": None, "deleteRule": _OWNER,
        "fields": [
            *_RECORD_REFS,
            {"name": "fingerprint", "type": "text", "system": True, "required": True},
            *_AUTODATES,
        ],
        "indexes": [
            "CREATE UNIQUE INDEX `idx_authOrigins_unique_pairs` "
            "ON `_authOrigins` (`collectionRef`, `recordRef`, `fingerprint`)",
        ],
    }


MFAS = "_mfas"
MFAS_ID = "pbc_2279338944"
AUTHENTICATORS = "_authenticators"


def mfas_definition() -> dict[str, Any]:
    """Pending multi-factor sign-ins: the first factor passed, a different second one is due."""
    return {
        "id": MFAS_ID, "name": MFAS, "type": "base", "system": True,
        "listRule": _OWNER, "viewRule": _OWNER, "createRule": None, "updateRule": None, "deleteRule": None,
        "fields": [
            *_RECORD_REFS,
            {"name": "method", "type": "text", "system": True, "required": True},
            *_AUTODATES,
        ],
    }


def authenticators_definition() -> dict[str, Any]:
    """TOTP authenticators (beyond PocketBase); managed only through the totp endpoints."""
    return {
        "name": AUTHENTICATORS, "type": "base", "system": True,
        "listRule": None, "viewRule": None, "createRule": None, "updateRule": None, "deleteRule": None,
        "fields": [
            *_RECORD_REFS,
            {"name": "secret", "type": "text", "system": True, "hidden": True},
            {"name": "confirmed", "type": "bool", "system": True},
            {"name": "lastCounter", "type": "number", "system": True, "hidden": True},
            {"name": "recoveryCodes", "type": "json", "system": True, "hidden": True},
            *_AUTODATES,
        ],
        "indexes": [
            "CREATE UNIQUE INDEX `idx_authenticators_record` ON `_authenticators` (`collectionRef`, `recordRef`)",
        ],
    }


API_KEYS = "_apiKeys"


def api_keys_definition() -> dict[str, Any]:
    """Scoped API keys (beyond PocketBase); managed through /api/api-keys by superusers."""
    return {
        "name": API_KEYS, "type": "base", "system": True,
        "listRule": None, "viewRule": None, "createRule": None, "updateRule": None, "deleteRule": None,
        "fields": [
            {"name": "name", "type": "text", "system": True, "required": True, "max": 255},
            {"name": "hash", "type": "text", "system": True, "hidden": True, "required": True},
            {"name": "collections", "type": "json", "system": True},
            {"name": "actions", "type": "json", "system": True},
            {"name": "expires", "type": "text", "system": True},
            {"name": "revoked", "type": "bool", "system": True},
            {"name": "createdBy", "type": "text", "system": True},
            {"name": "lastUsed", "type": "text", "system": True},
            *_AUTODATES,
        ],
    }
