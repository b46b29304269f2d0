"""``expand``: nested, multiple, back-relations; every expanded record passes its view rule."""

from __future__ import annotations

from bastion.testing import token_for


async def setup(client):
    su = client.su()
    await client.post("/api/collections", headers=su, json={
        "name": "authors", "listRule": "", "viewRule": "hidden = false",
        "fields": [{"name": "name", "type": "text"}, {"name": "hidden", "type": "bool"},
                   {"name": "mentor", "type": "relation", "collectionId": "authors"}]})
    await client.post("/api/collections", headers=su, json={
        "name": "posts", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"},
                   {"name": "author", "type": "relation", "collectionId": "authors"},
                   {"name": "coauthors", "type": "relation", "collectionId": "authors", "maxSelect": 5}]})
    await client.post("/api/collections", headers=su, json={
        "name": "comments", "listRule": "", "viewRule": "",
        "fields": [{"name": "text", "type": "text"},
                   {"name": "post", "type": "relation", "collectionId": "posts"}]})
    await client.post("/api/collections", headers=su, json={
        "name": "secrets", "fields": [{"name": "post", "type": "relation", "collectionId": "posts"}]})

    async def add(col, body):
        res = await client.post(f"/api/collections/{col}/records", headers=su, json=body)
        assert res.status_code == 200, res.text
        return res.json()["id"]

    mentor = await add("authors", {"name": "Mentor"})
    ann = await add("authors", {"name": "Ann", "mentor": mentor})
    ghost = await add("authors", {"name": "Ghost", "hidden": True})
    post = await add("posts", {"title": "P", "author": ann, "coauthors": [ghost, mentor]})
    lonely = await add("posts", {"title": "Q"})
    c1 = await add("comments", {"text": "first", "post": post})
    c2 = await add("comments", {"text": "second", "post": post})
    await add("secrets", {"post": post})
    return locals()


async def test_single_multi_nested_and_rules(client):
    ids = await setup(client)
    res = await client.get(f"/api/collections/posts/records/{ids['post']}?expand=author.mentor,coauthors")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["expand"]["author"]["name"] == "Ann"
    assert body["expand"]["author"]["expand"]["mentor"]["name"] == "Mentor"
    # the hidden author fails the authors viewRule and is dropped; order follows the field
    assert [a["name"] for a in body["expand"]["coauthors"]] == ["Mentor"]
    su = (await client.get(f"/api/collections/posts/records/{ids['post']}?expand=coauthors",
                           headers=client.su())).json()
    assert [a["name"] for a in su["expand"]["coauthors"]] == ["Ghost", "Mentor"]


async def test_back_relation_and_locked_paths(client):
    ids = await setup(client)
    listing = (await client.get(
        "/api/collections/posts/records?sort=title&expand=comments_via_post,secrets_via_post")).json()
    first, second = listing["items"]
    assert sorted(c["text"] for c in first["expand"]["comments_via_post"]) == ["first", "second"]
    assert "secrets_via_post" not in first["expand"]  # secrets' rule is null: the path fails
    assert second["expand"] == {}  # resolved path with nothing to show
    su = (await client.get(f"/api/collections/posts/records/{ids['post']}?expand=secrets_via_post",
                           headers=client.su())).json()
    assert len(su["expand"]["secrets_via_post"]) == 1


async def test_expand_with_fields_and_unknown_paths(client):
    ids = await setup(client)
    res = await client.get(
        f"/api/collections/posts/records/{ids['post']}?expand=author,nope,title.x,a.b.c.d.e.f.g.h&fields=title,expand.author.name")
    assert res.status_code == 200
    assert res.json() == {"title": "P", "expand": {"author": {"name": "Ann"}}}


async def test_expand_on_create_update_and_auth(client):
    ids = await setup(client)
    res = await client.post("/api/collections/posts/records?expand=author", json={"title": "N", "author": ids["ann"]})
    assert res.json()["expand"]["author"]["id"] == ids["ann"]
    upd = await client.patch(f"/api/collections/posts/records/{res.json()['id']}?expand=author",
                             headers=client.su(), json={"author": ids["mentor"]})
    assert upd.json()["expand"]["author"]["name"] == "Mentor"
    uid, headers = await token_for(client, "x@example.com")
    refreshed = await client.post("/api/collections/users/auth-refresh?expand=nothing", headers=headers)
    assert refreshed.status_code == 200 and "expand" not in refreshed.json()["record"]
