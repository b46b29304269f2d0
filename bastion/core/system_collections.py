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
