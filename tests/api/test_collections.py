"""The collections API: superusers only, PocketBase shapes, schema changes that keep data."""

from __future__ import annotations

import pytest

from tests.shapes import make_posts


async def test_requires_superuser(client):
    res = await client.get("/api/collections")
    assert res.status_code == 401
    assert res.json() == {
        "status": 401, "message": "The request requires valid record authorization token.", "data": {}}
    user = await client.post("/api/collections/users/records", json={
        "email": "u@example.com", "password": "password-1", "passwordConfirm": "password-1"})
    assert user.status_code == 200, user.text
    auth = await client.post("/api/collections/users/auth-with-password",
                             json={"identity": "u@example.com", "password": "password-1"})
    token = auth.json()["token"]
    res = await client.get("/api/collections", headers={"Authorization": token})
    assert res.status_code == 403
    assert res.json()["message"] == "The authorized record is not allowed to perform this action."


async def test_bearer_prefix_accepted(client):
    res = await client.get("/api/collections", headers={"Authorization": "Bearer " + client.superuser_token})
    assert res.status_code == 200


async def test_fresh_app_has_users_and_superusers(client):
    res = await client.get("/api/collections", headers=client.su())
    body = res.json()
    names = {c["name"] for c in body["items"]}
    assert {"users", "_superusers"} <= names
    users = (await client.get("/api/collections/users", headers=client.su())).json()
    assert users["id"] == "_pb_users_auth_"
    assert users["type"] == "auth"
    assert [f["name"] for f in users["fields"]][:6] == [
        "id", "password", "tokenKey", "email", "emailVisibility", "verified"]
    assert users["listRule"] == "id = @request.auth.id"
    assert "secret" not in users["authToken"]
    su = (await client.get("/api/collections/_superusers", headers=client.su())).json()
    assert su["id"] == "pbc_3142635823"


async def test_create_view_update_delete(client):
    col = await make_posts(client)
    assert col["id"] == "pbc_1125843985"
    assert col["type"] == "base"
    assert col["fields"][0]["name"] == "id" and col["fields"][0]["primaryKey"] is True
    assert col["indexes"] == ["CREATE UNIQUE INDEX `idx_posts_slug` ON `posts` (`slug`) WHERE `slug` != ''"]
    got = await client.get("/api/collections/posts", headers=client.su())
    assert got.json()["id"] == col["id"]
    by_id = await client.get(f"/api/collections/{col['id']}", headers=client.su())
    assert by_id.json()["name"] == "posts"
    patched = await client.patch("/api/collections/posts", json={"listRule": None}, headers=client.su())
    assert patched.status_code == 200 and patched.json()["listRule"] is None
    assert (await client.delete("/api/collections/posts", headers=client.su())).status_code == 204
    assert (await client.get("/api/collections/posts", headers=client.su())).status_code == 404


async def test_validation_errors(client):
    res = await client.post("/api/collections", json={"name": "bad name!", "type": "nope"}, headers=client.su())
    assert res.status_code == 400
    body = res.json()
    assert body["message"] == "Failed to create collection."
    assert body["data"]["name"]["code"] == "validation_match_invalid"
    assert body["data"]["type"]["code"] == "validation_in_invalid"
    await make_posts(client)
    dup = await client.post("/api/collections", json={"name": "POSTS"}, headers=client.su())
    assert dup.json()["data"]["name"]["code"] == "validation_collection_name_exists"
    bad_index = await client.post("/api/collections", json={
        "name": "x", "fields": [{"name": "a", "type": "text"}], "indexes": ["DROP TABLE users"]},
        headers=client.su())
    assert bad_index.json()["data"]["indexes"]["0"]["code"] == "validation_invalid_index_expression"
    type_change = await client.patch("/api/collections/posts", json={"type": "auth"}, headers=client.su())
    assert type_change.json()["data"]["type"]["code"] == "validation_collection_type_change"


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b'"text"'])
async def test_bad_json_bodies(client, body):
    res = await client.post("/api/collections", content=body,
                            headers={**client.su(), "content-type": "application/json"})
    assert res.status_code == 400
    assert set(res.json()) == {"status", "message", "data"}


async def test_system_collections_are_protected(client):
    res = await client.delete("/api/collections/_superusers", headers=client.su())
    assert res.status_code == 400
    res = await client.patch("/api/collections/_superusers", json={"listRule": ""}, headers=client.su())
    assert res.status_code == 400
    assert res.json()["data"]["listRule"]["code"] == "validation_collection_system_rule_change"


async def test_rename_field_keeps_values(client):
    col = await make_posts(client)
    rec = (await client.post("/api/collections/posts/records", json={"title": "Hi", "views": 7, "slug": "hi"})).json()
    fields = col["fields"]
    fields[1]["name"] = "headline"
    res = await client.patch("/api/collections/posts", json={"fields": fields}, headers=client.su())
    assert res.status_code == 200, res.text
    assert res.json()["indexes"] == ["CREATE UNIQUE INDEX `idx_posts_slug` ON `posts` (`slug`) WHERE `slug` != ''"]
    got = (await client.get(f"/api/collections/posts/records/{rec['id']}")).json()
    assert got["headline"] == "Hi" and "title" not in got
    # the unique index still holds after the change
    dup = await client.post("/api/collections/posts/records", json={"headline": "x", "slug": "hi"})
    assert dup.json()["data"]["slug"]["code"] == "validation_not_unique"


async def test_type_change_converts_or_refuses(client):
    col = await make_posts(client)
    a = (await client.post("/api/collections/posts/records", json={"title": "A", "views": 12, "slug": "a"})).json()
    fields = col["fields"]
    fields[2]["type"] = "text"  # number -> text converts
    res = await client.patch("/api/collections/posts", json={"fields": fields}, headers=client.su())
    assert res.status_code == 200, res.text
    assert (await client.get(f"/api/collections/posts/records/{a['id']}")).json()["views"] == "12"
    await client.patch(f"/api/collections/posts/records/{a['id']}", json={"views": "twelve"})
    fields = res.json()["fields"]
    fields[2]["type"] = "number"  # "twelve" cannot become a number
    res = await client.patch("/api/collections/posts", json={"fields": fields}, headers=client.su())
    assert res.status_code == 400
    assert "twelve" not in res.json()["message"] and a["id"] in res.json()["message"]
    # the refused change left schema and data as they were
    got = (await client.get(f"/api/collections/posts/records/{a['id']}")).json()
    assert got["views"] == "twelve"
    schema = (await client.get("/api/collections/posts", headers=client.su())).json()
    assert schema["fields"][2]["type"] == "text"


async def test_truncate_and_delete_with_references(client):
    await make_posts(client)
    await client.post("/api/collections/posts/records", json={"title": "A"})
    res = await client.post("/api/collections", json={
        "name": "comments", "fields": [{"name": "post", "type": "relation", "collectionId": "posts"}]},
        headers=client.su())
    assert res.status_code == 200, res.text
    assert res.json()["fields"][1]["collectionId"] == "pbc_1125843985"
    blocked = await client.delete("/api/collections/posts", headers=client.su())
    assert blocked.status_code == 400
    assert "comments" in blocked.json()["message"]
    assert (await client.delete("/api/collections/comments/truncate", headers=client.su())).status_code == 204
    assert (await client.delete("/api/collections/comments", headers=client.su())).status_code == 204
    assert (await client.delete("/api/collections/posts/truncate", headers=client.su())).status_code == 204
    listing = (await client.get("/api/collections/posts/records")).json()
    assert listing["totalItems"] == 0


async def test_view_collection(client):
    await make_posts(client)
    await client.post("/api/collections/posts/records", json={"title": "A", "views": 3})
    res = await client.post("/api/collections", json={
        "name": "popular", "type": "view", "listRule": "", "viewRule": "",
        "viewQuery": "SELECT id, title, views FROM posts WHERE views > 1"}, headers=client.su())
    assert res.status_code == 200, res.text
    assert [(f["name"], f["type"]) for f in res.json()["fields"]] == [
        ("id", "text"), ("title", "text"), ("views", "number")]
    items = (await client.get("/api/collections/popular/records")).json()["items"]
    assert [(i["title"], i["views"]) for i in items] == [("A", 3)]
    ro = await client.post("/api/collections/popular/records", json={"title": "x"})
    assert ro.status_code == 400 and ro.json()["message"] == "Unsupported collection type."


@pytest.mark.parametrize("query", [
    "DELETE FROM posts", "SELECT 1; DROP TABLE posts", "SELECT title FROM posts", "SELECT * FROM missing_table",
])
async def test_view_query_is_validated(client, query):
    await make_posts(client)
    res = await client.post("/api/collections", json={"name": "v", "type": "view", "viewQuery": query},
                            headers=client.su())
    assert res.status_code == 400
    assert res.json()["data"]["viewQuery"]["code"] == "validation_invalid_view_query"


async def test_import_and_scaffolds(client):
    res = await client.put("/api/collections/import", json={"collections": [
        {"name": "tags", "fields": [{"name": "label", "type": "text"}]},
        {"name": "notes", "fields": [{"name": "tag", "type": "relation", "collectionId": "tags"}]},
    ]}, headers=client.su())
    assert res.status_code == 204, res.text
    names = {c["name"] for c in (await client.get("/api/collections?perPage=100", headers=client.su())).json()["items"]}
    assert {"tags", "notes"} <= names
    bad = await client.put("/api/collections/import", json={"collections": [{"name": "!"}]}, headers=client.su())
    assert bad.status_code == 400 and bad.json()["message"] == "Failed to import collections."
    scaffolds = (await client.get("/api/collections/meta/scaffolds", headers=client.su())).json()
    assert set(scaffolds) == {"auth", "base", "view"}
    assert scaffolds["base"]["name"] == "" and scaffolds["base"]["fields"][0]["name"] == "id"


async def test_list_paging_and_sort(client):
    res = await client.get("/api/collections?sort=-name&perPage=1&page=2", headers=client.su())
    body = res.json()
    assert body["perPage"] == 1 and body["page"] == 2 and len(body["items"]) == 1
    assert body["totalItems"] >= 2
    assert (await client.get("/api/collections?sort=bogus", headers=client.su())).status_code == 400
    assert (await client.get("/api/collections?perPage=abc", headers=client.su())).status_code == 400


async def test_refused_type_change_can_be_retried(client):
    col = await make_posts(client)
    await client.post("/api/collections/posts/records", json={"title": "A", "slug": "nan"})
    fields = col["fields"]
    fields[3]["type"] = "number"
    for _ in range(2):  # a refusal must leave nothing behind that breaks the next try
        res = await client.patch("/api/collections/posts", json={"fields": fields}, headers=client.su())
        assert res.status_code == 400
    fields[3]["type"] = "editor"
    res = await client.patch("/api/collections/posts", json={"fields": fields}, headers=client.su())
    assert res.status_code == 200, res.text
