"""``expand`` cannot turn a short query string into a response of gigabytes."""

from __future__ import annotations

from bastion.core.records import expand

CHAIN = "owner.posts_via_owner.owner.posts_via_owner"


async def user_with_posts(client, n):
    await client.patch("/api/collections/users", headers=client.su(), json={"listRule": "", "viewRule": ""})
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "posts", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"},
                   {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]})
    assert res.status_code == 200, res.text
    user = await client.post("/api/collections/users/records", json={
        "email": "alice@example.com", "password": "password-123", "passwordConfirm": "password-123"})
    uid = user.json()["id"]
    for i in range(n):
        await client.post("/api/collections/posts/records", json={"title": f"p{i}", "owner": uid})
    return uid


def embedded(record) -> int:
    total = 0
    for value in record.get("expand", {}).values():
        for child in value if isinstance(value, list) else [value]:
            total += 1 + embedded(child)
    return total


async def test_expand_fan_out_is_refused_past_the_bound(client, monkeypatch):
    monkeypatch.setattr(expand, "MAX_EMBEDDED", 2000)
    await user_with_posts(client, 30)
    # One post embeds 1 + 30 * (1 + 31) = 961 records through this chain.
    ok = await client.get(f"/api/collections/posts/records?perPage=2&expand={CHAIN}")
    assert ok.status_code == 200, ok.text
    assert [embedded(r) for r in ok.json()["items"]] == [961, 961]
    refused = await client.get(f"/api/collections/posts/records?perPage=3&expand={CHAIN}")
    assert refused.status_code == 400, refused.text[:200]
    assert "expand" in refused.json()["message"] and "2000" in refused.json()["message"]
    one = (await client.get("/api/collections/posts/records?perPage=1")).json()["items"][0]["id"]
    view = await client.get(f"/api/collections/posts/records/{one}?expand={CHAIN}.owner.posts_via_owner")
    assert view.status_code == 400


async def test_default_bound_holds_for_a_deep_chain(client):
    await user_with_posts(client, 25)
    deep = f"{CHAIN}.owner.posts_via_owner"
    res = await client.get(f"/api/collections/posts/records?perPage=3&expand={deep}")
    assert res.status_code == 400, len(res.content)
    assert len(res.content) < 1000
