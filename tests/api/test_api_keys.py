"""Scoped API keys: created by superusers, shown once, limited, expiring, revocable."""

from __future__ import annotations

from bastion.testing import token_for
from tests.shapes import make_posts


async def new_key(client, **body):
    res = await client.post("/api/api-keys", headers=client.su(), json={"name": "svc", **body})
    assert res.status_code == 200, res.text
    return res.json()


async def test_scope_is_enforced(client):
    await make_posts(client, listRule=None, viewRule=None, createRule=None, updateRule=None, deleteRule=None)
    await client.post("/api/collections", headers=client.su(), json={
        "name": "other", "fields": [{"name": "x", "type": "text"}]})
    key = await new_key(client, collections=["posts"], actions=["list", "create"])
    assert key["key"].startswith("bk_") and "hash" not in key
    h = {"Authorization": f"Bearer {key['key']}"}
    created = await client.post("/api/collections/posts/records", headers=h, json={"title": "by key"})
    assert created.status_code == 200, created.text
    assert (await client.get("/api/collections/posts/records", headers=h)).json()["totalItems"] == 1
    rid = created.json()["id"]
    for res in (
        await client.get(f"/api/collections/posts/records/{rid}", headers=h),
        await client.delete(f"/api/collections/posts/records/{rid}", headers=h),
        await client.get("/api/collections/other/records", headers=h),
        await client.get("/api/collections", headers=h),
        await client.get("/api/settings", headers=h),
        await client.post("/api/api-keys", headers=h, json={"name": "x", "collections": ["*"], "actions": ["list"]}),
    ):
        assert res.status_code in (401, 403), res.text
    listing = (await client.get("/api/api-keys", headers=client.su())).json()["items"]
    assert [k["name"] for k in listing] == ["svc"] and "key" not in listing[0]


async def test_revoked_expired_and_forged_keys_fail(client):
    await make_posts(client, listRule=None)
    key = await new_key(client, collections=["*"], actions=["list"])
    h = {"Authorization": key["key"]}
    assert (await client.get("/api/collections/posts/records", headers=h)).status_code == 200
    forged = key["key"][:-1] + ("a" if key["key"][-1] != "a" else "b")
    assert (await client.get("/api/collections/posts/records", headers={"Authorization": forged})).status_code == 403
    assert (await client.delete(f"/api/api-keys/{key['id']}", headers=client.su())).status_code == 204
    assert (await client.get("/api/collections/posts/records", headers=h)).status_code == 403
    past = await client.post("/api/api-keys", headers=client.su(), json={
        "name": "old", "collections": ["*"], "actions": ["list"], "expires": "2001-01-01 00:00:00Z"})
    assert past.status_code == 400 and "expires" in past.json()["data"]


async def test_only_superusers_manage_keys(client):
    _, headers = await token_for(client, "u@example.com")
    assert (await client.post("/api/api-keys", headers=headers, json={})).status_code == 403
    assert (await client.get("/api/api-keys")).status_code == 401
    bad = await client.post("/api/api-keys", headers=client.su(),
                            json={"name": "", "collections": ["nope"], "actions": ["fly"]})
    assert bad.status_code == 400 and set(bad.json()["data"]) == {"name", "collections", "actions"}


async def test_a_key_filters_only_through_collections_it_may_list(client):
    """A relation path reads the related records: an API key follows one only into a
    collection it may list, as its own requests there would be refused."""
    await client.patch("/api/collections/users", headers=client.su(), json={"listRule": "id = @request.auth.id"})
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "fields": [{"name": "author", "type": "relation", "collectionId": "_pb_users_auth_"}]})
    assert res.status_code == 200, res.text
    uid, _ = await token_for(client, "ann@example.com")
    res = await client.post("/api/collections/notes/records", headers=client.su(), json={"author": uid})
    assert res.status_code == 200, res.text
    notes_only = {"Authorization": f"Bearer {(await new_key(client, collections=['notes'], actions=['list']))['key']}"}
    both = {"Authorization":
            f"Bearer {(await new_key(client, collections=['notes', 'users'], actions=['list']))['key']}"}
    res = await client.get("/api/collections/notes/records", headers=notes_only,
                           params={"filter": "author.name != 'zz'"})
    assert res.status_code == 400, res.text
    assert 'cannot filter through "users"' in res.json()["detail"]
    res = await client.get("/api/collections/notes/records", headers=both, params={"filter": "author.name != 'zz'"})
    assert res.status_code == 200 and res.json()["totalItems"] == 1, res.text
