"""Keyset pagination: ``cursor`` in, ``nextCursor`` out, stable under inserts."""

from __future__ import annotations

import base64

from tests.shapes import make_posts


async def walk(client, query, headers=None):
    seen, cursor = [], ""
    for _ in range(50):
        res = await client.get(f"/api/collections/posts/records?perPage=3&cursor={cursor}&{query}", headers=headers)
        assert res.status_code == 200, res.text
        body = res.json()
        seen += [(i["views"], i["title"]) for i in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            return seen
    raise AssertionError("never ended")


async def test_cursor_walks_every_row_once(client):
    await make_posts(client)
    for i in range(10):
        await client.post("/api/collections/posts/records", json={"title": f"t{i}", "views": i % 4})
    got = await walk(client, "sort=-views,title")
    assert got == sorted(got, key=lambda vt: (-vt[0], vt[1])) and len(got) == 10


async def test_cursor_is_stable_under_inserts(client):
    await make_posts(client)
    for i in range(6):
        await client.post("/api/collections/posts/records", json={"title": f"t{i}", "views": i})
    first = (await client.get("/api/collections/posts/records?perPage=3&cursor=&sort=views")).json()
    assert [i["views"] for i in first["items"]] == [0, 1, 2]
    # rows inserted before the cursor position neither shift nor repeat the next page
    await client.post("/api/collections/posts/records", json={"title": "early", "views": -1})
    nxt = (await client.get(f"/api/collections/posts/records?perPage=3&sort=views&cursor={first['nextCursor']}")).json()
    assert [i["views"] for i in nxt["items"]] == [3, 4, 5]
    assert nxt["nextCursor"] is None


async def test_cursor_respects_rules_and_validates(client):
    await make_posts(client, listRule="views > 1")
    for i in range(5):
        await client.post("/api/collections/posts/records", json={"title": f"t{i}", "views": i})
    got = await walk(client, "sort=views")
    assert [v for v, _ in got] == [2, 3, 4]
    first = (await client.get("/api/collections/posts/records?perPage=1&cursor=&sort=views")).json()
    token = first["nextCursor"]
    wrong_sort = await client.get(f"/api/collections/posts/records?perPage=1&sort=title&cursor={token}")
    assert wrong_sort.status_code == 400
    forged = base64.urlsafe_b64encode(b'{"k":[["id",false]],"v":[{"$ne":1}]}').decode()
    for bad in ("garbage!", forged, "x" * 5000):
        res = await client.get(f"/api/collections/posts/records?cursor={bad}")
        assert res.status_code == 400, bad[:30]
    assert (await client.get("/api/collections/posts/records?cursor=&sort=@random")).status_code == 400
