"""The collections every app starts with: ``_superusers`` and the default ``users``."""

from __future__ import annotations

from typing import Any

SUPERUSERS = "_superusers"
SUPERUSERS_ID = "pbc_3142635823"
USERS_ID = "_pb_users_auth_"

_AUTODATES = [
    {"name": "created", "type": "autodate", "system": True, "onCreate": True, "onUpdate": False},
    {"name": "updated", "type": "autodate", "system": True, "onCreate": True, "onUpdate": True},
]


def superusers_definition() -> dict[str, Any]:
    return {
        "id": SUPERUSERS_ID, "name": SUPERUSERS, "type": "auth", "system": True,
        "listRule": None, "viewRule": None, "createRule": None, "updateRule": None,
        "deleteRule": None, "authRule": "", "manageRule": None,
        "authToken": {"duration": 86400},
        "fields": list(_AUTODATES),
    }


def users_definition() -> dict[str, Any]:
    owner = "id = @request.auth.id"
    return {
        "id": USERS_ID, "name": "users", "type": "auth", "system": False,
        "listRule": owner, "viewRule": owner, "createRule": "", "updateRule": owner,
        "deleteRule": owner, "authRule": "", "manageRule": None,
        "authToken": {"duration": 604800},
        "oauth2": {"mappedFields": {"id": "", "name": "name", "username": "", "avatarURL": "avatar"}},
        "fields": [
            {"name": "name", "type": "text", "max": 255},
            {"name": "avatar", "type": "file", "maxSelect": 1,
             "mimeTypes": ["image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"]},
            *_AUTODATES,
        ],
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
            {"name": "collectionRef", "type": "text", "system": True, "required": True},
            {"name": "recordRef", "type": "text", "system": True, "required": True},
            {"name": "password", "type": "password", "system": True, "hidden": True, "required": True},
            {"name": "sentTo", "type": "text", "system": True, "hidden": True},
            {"name": "attempts", "type": "number", "system": True, "hidden": True},
            *_AUTODATES,
        ],
        "indexes": ["CREATE INDEX `idx_otps_record` ON `_otps` (`collectionRef`, `recordRef`)"],
    }
