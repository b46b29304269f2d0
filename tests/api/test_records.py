"""Records CRUD over HTTP: shapes, rules, bounds and errors that lose nothing."""

from __future__ import annotations

import pytest

from tests.shapes import make_posts


async def test_crud_round_trip(client):
    await make_posts(client)
    created = await client.post("/api/collections/posts/records", json={"title": "Hello", "views": 2, "slug": "h"})
    assert created.status_code == 200
    rec = created.json()
    assert rec["collectionName"] == "posts" and rec["collectionId"] == "pbc_1125843985"
    assert len(rec["id"]) == 15 and rec["id"].isalnum() and rec["id"].islower()
    got = await client.get(f"/api/collections/posts/records/{rec['id']}")
    assert got.json() == rec
    upd = await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"views+": 5, "title": "Hi"})
    assert upd.status_code == 200 and upd.json()["views"] == 7 and upd.json()["title"] == "Hi"
    lst = (await client.get("/api/collections/posts/records")).json()
    assert lst["totalItems"] == 1 and lst["items"][0]["id"] == rec["id"]
    assert (await client.delete(f"/api/collections/posts/records/{rec['id']}")).status_code == 204
    gone = await client.get(f"/api/collections/posts/records/{rec['id']}")
    assert gone.status_code == 404
    assert gone.json() == {"status": 404, "message": "The requested resource wasn't found.", "data": {}}


async def test_custom_ids(client):
    await make_posts(client)
    ok = await client.post("/api/collections/posts/records", json={"id": "abcdefghij12345", "title": "x"})
    assert ok.status_code == 200 and ok.json()["id"] == "abcdefghij12345"
    dup = await client.post("/api/collections/posts/records", json={"id": "abcdefghij12345", "title": "y"})
    assert dup.json()["data"]["id"]["code"] == "validation_not_unique"
    bad = await client.post("/api/collections/posts/records", json={"id": "UPPER", "title": "y"})
    assert bad.status_code == 400 and "id" in bad.json()["data"]
    change = await client.patch("/api/collections/posts/records/abcdefghij12345", json={"id": "zzzzzzzzzzzzzzz"})
    assert change.json()["data"]["id"]["code"] == "validation_pk_change"


async def test_paging_sort_and_bounds(client):
    await make_posts(client)
    for i in range(5):
        await client.post("/api/collections/posts/records", json={"title": f"t{i}", "views": i, "slug": f"s{i}"})
    page = (await client.get("/api/collections/posts/records?perPage=2&page=2&sort=-views")).json()
    assert [i["views"] for i in page["items"]] == [2, 1]
    assert page["totalItems"] == 5 and page["totalPages"] == 3
    skip = (await client.get("/api/collections/posts/records?skipTotal=1")).json()
    assert skip["totalItems"] == -1 and skip["totalPages"] == -1
    clamp = (await client.get("/api/collections/posts/records?perPage=100000")).json()
    assert clamp["perPage"] == 1000
    for bad in ("perPage=x", "page=1.5", "sort=nope", "sort=-", "skipTotal=maybe"):
        res = await client.get(f"/api/collections/posts/records?{bad}")
        assert res.status_code == 400, bad
        assert set(res.json()) - {"detail"} == {"status", "message", "data"}


async def test_unknown_collection_and_record(client):
    res = await client.get("/api/collections/nope/records")
    assert res.status_code == 404 and res.json()["message"] == "Missing collection context."
    res = await client.post("/api/collections/nope/records", json={})
    assert res.status_code == 404
    await make_posts(client)
    assert (await client.get("/api/collections/posts/records/" + "x" * 300)).status_code == 404
    assert (await client.patch("/api/collections/posts/records/missing", json={})).status_code == 404
    assert (await client.delete("/api/collections/posts/records/missing")).status_code == 404


async def test_unknown_keys_are_ignored(client):
    await make_posts(client)
    res = await client.post("/api/collections/posts/records", json={
        "title": "x", "nope": 1, "collectionName": "other", "expand": {"a": 1}})
    assert res.status_code == 200
    assert "nope" not in res.json() and res.json()["collectionName"] == "posts"


async def test_failed_write_changes_nothing(client):
    await make_posts(client)
    rec = (await client.post("/api/collections/posts/records", json={"title": "keep", "views": 1})).json()
    res = await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"title": "", "views": 9})
    assert res.status_code == 400 and res.json()["message"] == "Failed to update record."
    got = (await client.get(f"/api/collections/posts/records/{rec['id']}")).json()
    assert got["title"] == "keep" and got["views"] == 1


async def test_body_limit_and_content_types(client):
    await make_posts(client)
    huge = await client.post("/api/collections/posts/records", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                             headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert huge.json()["message"] == "Request entity too large."
    weird = await client.post("/api/collections/posts/records", content=b"title=x",
                              headers={"content-type": "text/plain"})
    assert weird.status_code == 400
    bad_utf8 = await client.post("/api/collections/posts/records", content=b'{"title":"\xff\xfe"}',
                                 headers={"content-type": "application/json"})
    assert bad_utf8.status_code == 400


async def test_multipart_and_form_bodies(client):
    await make_posts(client)
    res = await client.post("/api/collections/posts/records", data={"title": "form", "views": "12"})
    assert res.status_code == 200 and res.json()["views"] == 12
    res = await client.post("/api/collections/posts/records",
                            files={"@jsonPayload": (None, '{"title":"json part","views":3}')})
    assert res.status_code == 200, res.text
    assert res.json()["title"] == "json part"


@pytest.mark.parametrize("rule,status", [(None, 403), ("", 200)])
async def test_rules_null_and_empty(client, rule, status):
    await make_posts(client, listRule=rule, viewRule=rule, createRule=rule)
    assert (await client.get("/api/collections/posts/records")).status_code == status
    res = await client.post("/api/collections/posts/records", json={"title": "x"})
    assert res.status_code == status
    if status == 403:
        assert res.json()["message"] == "Only superusers can perform this action."
    su = await client.post("/api/collections/posts/records", json={"title": "y"}, headers=client.su())
    assert su.status_code == 200


async def test_expression_rule_without_match_denies(client):
    await make_posts(client, listRule="views > 100000", viewRule="views > 100000", deleteRule="views > 100000",
                     updateRule="views > 100000")
    rec = (await client.post("/api/collections/posts/records", json={"title": "x", "views": 1})).json()
    listing = (await client.get("/api/collections/posts/records")).json()
    assert listing["items"] == []
    assert (await client.get(f"/api/collections/posts/records/{rec['id']}")).status_code == 404
    assert (await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"title": "z"})).status_code == 404
    assert (await client.delete(f"/api/collections/posts/records/{rec['id']}")).status_code == 404
    assert (await client.get(f"/api/collections/posts/records/{rec['id']}", headers=client.su())).status_code == 200


async def test_hidden_fields(client):
    await make_posts(client, fields=[
        {"name": "title", "type": "text"}, {"name": "secret", "type": "text", "hidden": True}], indexes=[])
    rec = (await client.post("/api/collections/posts/records", json={"title": "a", "secret": "s"})).json()
    assert "secret" not in rec
    su = (await client.get(f"/api/collections/posts/records/{rec['id']}", headers=client.su())).json()
    assert su["secret"] == ""  # hidden values submitted by guests are dropped
    await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"secret": "s2"}, headers=client.su())
    su = (await client.get(f"/api/collections/posts/records/{rec['id']}", headers=client.su())).json()
    assert su["secret"] == "s2"
    assert (await client.get("/api/collections/posts/records?sort=secret")).status_code == 400


async def test_fields_parameter(client):
    await make_posts(client)
    rec = (await client.post("/api/collections/posts/records?fields=id,title",
                             json={"title": "<b>Hello</b> world"})).json()
    assert set(rec) == {"id", "title"}
    got = (await client.get(f"/api/collections/posts/records/{rec['id']}?fields=title:excerpt(5,true)")).json()
    assert got == {"title": "Hello..."}
    lst = (await client.get("/api/collections/posts/records?fields=id")).json()
    assert set(lst) == {"page", "perPage", "totalItems", "totalPages", "items"} and set(lst["items"][0]) == {"id"}


async def test_concurrent_increments_lose_nothing(client):
    import asyncio

    await make_posts(client, updateRule="")
    rec = (await client.post("/api/collections/posts/records", json={"title": "counter"})).json()
    url = f"/api/collections/posts/records/{rec['id']}"
    results = await asyncio.gather(*(client.patch(url, json={"views+": 1}) for _ in range(20)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
    assert (await client.get(url)).json()["views"] == 20
