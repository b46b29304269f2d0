"""Collections that several test modules start from."""

from __future__ import annotations

from typing import Any

POSTS = {
    "name": "posts",
    "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
    "fields": [
        {"name": "title", "type": "text", "required": True, "max": 100},
        {"name": "views", "type": "number"},
        {"name": "slug", "type": "text"},
    ],
    "indexes": ["CREATE UNIQUE INDEX idx_posts_slug ON posts (slug) WHERE slug != ''"],
}


async def make_posts(client: Any, **overrides: Any) -> dict[str, Any]:
    """Create the ``posts`` collection (``POSTS`` with ``overrides``) as the superuser."""
    res = await client.post("/api/collections", json={**POSTS, **overrides}, headers=client.su())
    assert res.status_code == 200, res.text
    return res.json()
