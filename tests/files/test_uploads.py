"""Uploads through the records API and downloads through ``/api/files``, on each engine."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from PIL import Image

from bastion.core.app import App
from bastion.testing import TestClient, token_for
from tests.files import media
from tests.files.conftest import stored_keys

pytestmark = pytest.mark.backends

DOCS = {
    "name": "docs", "type": "base",
    "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
    "fields": [
        {"name": "title", "type": "text"},
        {"name": "doc", "type": "file", "maxSize": 2000},
        {"name": "images", "type": "file", "maxSelect": 3, "thumbs": [
            "50x50", "40x0", "20x20f", "30x30t", "30x30b", "0x20"],
         "mimeTypes": ["image/png", "image/jpeg"]},
    ],
}


async def _docs(client: TestClient, **changes: Any) -> dict[str, Any]:
    res = await client.post("/api/collections", json={**DOCS, **changes}, headers=client.su())
    assert res.status_code == 200, res.text
    return res.json()


async def test_upload_then_download(where: str, client: TestClient, app: App) -> None:
    col = await _docs(client)
    res = await client.post("/api/collections/docs/records", data={"title": "a"},
                            files=[("doc", ("Report Final.TXT", b"hello files", "application/pdf")),
                                   ("images", ("one.png", media.png(), "image/png")),
                                   ("images", ("two.jpg", media.jpeg(), "image/jpeg"))])
    assert res.status_code == 200, res.text
    record = res.json()
    assert record["doc"].startswith("report_final_") and record["doc"].endswith(".TXT")
    assert len(record["doc"]) == len("report_final_") + 10 + 4
    assert [n.split("_")[0] for n in record["images"]] == ["one", "two"]
    got = await client.get(f"/api/files/docs/{record['id']}/{record['doc']}")
    assert got.status_code == 200 and got.content == b"hello files"
    # sniffed, never the client's word: text is shown as an attachment with nosniff
    assert got.headers["content-type"].startswith("text/plain")
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    # as in PocketBase, another site may frame a file (its CSP sandboxes it), not the API
    assert "x-frame-options" not in got.headers and "x-bastion-frameable" not in got.headers
    assert (await client.get("/api/health")).headers["x-frame-options"] == "SAMEORIGIN"
    img = await client.get(f"/api/files/{col['id']}/{record['id']}/{record['images'][0]}")
    assert img.headers["content-type"] == "image/png" and img.headers["content-disposition"].startswith("inline")
    forced = await client.get(f"/api/files/docs/{record['id']}/{record['images'][0]}?download=1")
    assert forced.headers["content-disposition"].startswith("attachment")
    assert f"{col['id']}/{record['id']}/{record['doc']}" in await stored_keys(app)


async def test_conditional_and_range_requests(where: str, client: TestClient) -> None:
    await _docs(client)
    rec = (await client.post("/api/collections/docs/records",
                             files={"doc": ("a.txt", b"0123456789", "text/plain")})).json()
    url = f"/api/files/docs/{rec['id']}/{rec['doc']}"
    first = await client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
    assert (await client.get(url, headers={"If-Modified-Since": modified})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    part = await client.get(url, headers={"Range": "bytes=2-4"})
    assert part.status_code == 206 and part.content == b"234"
    assert part.headers["content-range"] == "bytes 2-4/10"
    assert (await client.get(url, headers={"Range": "bytes=-3"})).content == b"789"
    assert (await client.get(url, headers={"Range": "bytes=20-"})).status_code == 416
    stale = await client.get(url, headers={"Range": "bytes=2-4", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == b"0123456789"


async def test_names_only_of_the_record_and_limits(where: str, client: TestClient) -> None:
    await _docs(client)
    bogus = await client.post("/api/collections/docs/records", json={"images": ["nonexistent.png"]})
    assert bogus.status_code == 400
    assert bogus.json()["data"]["images"]["code"] == "validation_invalid_file"
    big = await client.post("/api/collections/docs/records", files={"doc": ("big.txt", b"x" * 2001, "text/plain")})
    assert big.status_code == 400 and big.json()["data"]["doc"]["code"] == "validation_file_size_limit"
    wrong = await client.post("/api/collections/docs/records", files={"images": ("x.png", media.HTML, "image/png")})
    assert wrong.status_code == 400 and wrong.json()["data"]["images"]["code"] == "validation_invalid_mime_type"
    many = [("images", (f"{i}.png", media.png(), "image/png")) for i in range(4)]
    too_many = await client.post("/api/collections/docs/records", files=many)
    assert too_many.status_code == 400
    assert too_many.json()["data"]["images"]["code"] == "validation_too_many_files"
    assert (await client.get("/api/collections/docs/records")).json()["totalItems"] == 0


async def test_append_remove_and_clear(where: str, client: TestClient, app: App) -> None:
    col = await _docs(client)
    rec = (await client.post("/api/collections/docs/records",
                             files={"images": ("a.png", media.png(), "image/png")})).json()
    first = rec["images"][0]
    url = f"/api/collections/docs/records/{rec['id']}"
    added = (await client.patch(url, files={"images+": ("b.png", media.png(), "image/png")})).json()
    assert added["images"][0] == first and len(added["images"]) == 2
    second = added["images"][1]
    removed = (await client.patch(url, json={"images-": [first]})).json()
    assert removed["images"] == [second]
    assert f"{col['id']}/{rec['id']}/{first}" not in await stored_keys(app)
    cleared = (await client.patch(url, json={"images": []})).json()
    assert cleared["images"] == [] and not any(rec["id"] in k for k in await stored_keys(app))
    # a form resending the kept names under the plain key keeps them beside the new file
    again = (await client.patch(url, files={"images": ("c.png", media.png(), "image/png")})).json()
    kept = (await client.patch(url, data={"images": again["images"][0]},
                               files={"images": ("d.png", media.png(), "image/png")})).json()
    assert kept["images"][0] == again["images"][0] and len(kept["images"]) == 2


async def test_thumbs(where: str, client: TestClient) -> None:
    await _docs(client)
    rec = (await client.post("/api/collections/docs/records",
                             files={"images": ("a.png", media.png(80, 40), "image/png")})).json()
    base = f"/api/files/docs/{rec['id']}/{rec['images'][0]}"
    sizes = {"50x50": (50, 50), "40x0": (40, 20), "20x20f": (20, 10), "100x100": (100, 100),
             "30x30t": (30, 30), "30x30b": (30, 30), "0x20": (40, 20)}
    for spec, size in sizes.items():
        res = await client.get(f"{base}?thumb={spec}")
        assert res.status_code == 200, spec
        assert Image.open(io.BytesIO(res.content)).size == size, spec
        assert res.headers["content-disposition"].endswith(f'"{spec}_{rec["images"][0]}"')
    original = await client.get(base)
    not_listed = await client.get(f"{base}?thumb=30x30")
    assert not_listed.content == original.content  # a size the field does not list: the original


async def test_protected_files_need_a_token_passing_the_view_rule(where: str, client: TestClient) -> None:
    owner_id, owner = await token_for(client, "owner@example.com")
    _other_id, other = await token_for(client, "other@example.com")
    await _docs(client, viewRule="owner = @request.auth.id", fields=[
        {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
        {"name": "secret", "type": "file", "protected": True}])
    rec = (await client.post("/api/collections/docs/records", data={"owner": owner_id},
                             files={"secret": ("s.txt", b"classified", "text/plain")})).json()
    url = f"/api/files/docs/{rec['id']}/{rec['secret']}"
    assert (await client.get(url)).status_code == 404
    own_token = (await client.post("/api/files/token", headers=owner)).json()["token"]
    other_token = (await client.post("/api/files/token", headers=other)).json()["token"]
    assert (await client.get(url, params={"token": own_token})).content == b"classified"
    assert (await client.get(url, headers={"Authorization": own_token})).status_code == 200
    assert (await client.get(url, params={"token": other_token})).status_code == 404
    # an auth token is not a file token in the query
    assert (await client.get(url, params={"token": owner["Authorization"]})).status_code == 404
    assert (await client.post("/api/files/token")).status_code == 401


async def test_delete_removes_files_after_commit(where: str, client: TestClient, app: App) -> None:
    await _docs(client)
    rec = (await client.post("/api/collections/docs/records",
                             files={"doc": ("a.txt", b"bye", "text/plain")})).json()
    assert any(rec["id"] in k for k in await stored_keys(app))
    assert (await client.delete(f"/api/collections/docs/records/{rec['id']}")).status_code == 204
    assert not any(rec["id"] in k for k in await stored_keys(app))
    assert (await client.get(f"/api/files/docs/{rec['id']}/{rec['doc']}")).status_code == 404


async def test_a_refused_write_leaves_no_file(where: str, client: TestClient, app: App) -> None:
    await _docs(client, createRule="title = 'ok'", fields=[
        {"name": "title", "type": "text"}, {"name": "doc", "type": "file"},
        {"name": "code", "type": "text", "required": True}])
    refused = await client.post("/api/collections/docs/records", data={"title": "no", "code": "x"},
                                files={"doc": ("a.txt", b"x", "text/plain")})
    assert refused.status_code == 400
    invalid = await client.post("/api/collections/docs/records", data={"title": "ok"},
                                files={"doc": ("a.txt", b"x", "text/plain")})
    assert invalid.status_code == 400
    assert await stored_keys(app) == set()


async def test_batch_uploads_and_rollback(where: str, client: TestClient, app: App) -> None:
    await client.patch("/api/settings", json={"batch": {"enabled": True}}, headers=client.su())
    await _docs(client)
    payload = {"requests": [
        {"method": "POST", "url": "/api/collections/docs/records", "body": {"title": "one"}},
        {"method": "POST", "url": "/api/collections/docs/records", "body": {"title": "two"}}]}
    ok = await client.post("/api/batch", data={"@jsonPayload": orjson.dumps(payload).decode()}, files=[
        ("requests.0.doc", ("first.txt", b"first", "text/plain")),
        ("requests[1].images", ("b.png", media.png(), "image/png"))])
    assert ok.status_code == 200, ok.text
    first, second = (r["body"] for r in ok.json())
    assert first["doc"].startswith("first_") and len(second["images"]) == 1
    before = await stored_keys(app)
    payload["requests"].append({"method": "POST", "url": "/api/collections/nope/records", "body": {}})
    failed = await client.post("/api/batch", data={"@jsonPayload": orjson.dumps(payload).decode()}, files=[
        ("requests.0.doc", ("c.txt", b"gone", "text/plain"))])
    assert failed.status_code == 400
    assert await stored_keys(app) == before


async def test_orphan_sweep(where: str, client: TestClient, app: App) -> None:
    await _docs(client)
    rec = (await client.post("/api/collections/docs/records",
                             files={"doc": ("a.txt", b"kept", "text/plain")})).json()
    storage = app.file_service.storage()
    await storage.put(f"{rec['collectionId']}/{rec['id']}/stray_0123456789.txt", io.BytesIO(b"x"), "")
    await storage.put(f"{rec['collectionId']}/nosuchrecord/lost_0123456789.txt", io.BytesIO(b"x"), "")
    assert await app.file_service.sweep(grace=3600) == []  # too young
    removed = await app.file_service.sweep(grace=0, now=10**10)
    assert sorted(k.split("/")[-1] for k in removed) == ["lost_0123456789.txt", "stray_0123456789.txt"]
    assert (await client.get(f"/api/files/docs/{rec['id']}/{rec['doc']}")).content == b"kept"


async def test_a_view_serves_the_files_of_the_records_it_reads(where: str, client: TestClient) -> None:
    await _docs(client)
    rec = (await client.post("/api/collections/docs/records", data={"title": "v"},
                             files=[("doc", ("a.txt", b"through the view", "text/plain")),
                                    ("images", ("i.png", media.png(), "image/png"))])).json()
    for name, query in (("docs_view", "SELECT id, title, doc, images FROM docs"),
                        ("docs_view2", "SELECT v.id AS id, v.doc AS doc FROM docs_view v")):
        res = await client.post("/api/collections", headers=client.su(), json={
            "name": name, "type": "view", "listRule": "", "viewRule": "", "viewQuery": query})
        assert res.status_code == 200, res.text
    got = await client.get(f"/api/files/docs_view/{rec['id']}/{rec['doc']}")
    assert got.status_code == 200 and got.content == b"through the view"
    thumb = await client.get(f"/api/files/docs_view/{rec['id']}/{rec['images'][0]}?thumb=50x50")
    assert Image.open(io.BytesIO(thumb.content)).size == (50, 50)
    assert (await client.get(f"/api/files/docs_view2/{rec['id']}/{rec['doc']}")).content == b"through the view"
    assert (await client.get(f"/api/files/docs_view/{rec['id']}/nope.txt")).status_code == 404


async def test_head_answers_the_headers_alone(where: str, client: TestClient) -> None:
    await _docs(client)
    rec = (await client.post("/api/collections/docs/records",
                             files={"doc": ("a.txt", b"0123456789", "text/plain")})).json()
    res = await client.head(f"/api/files/docs/{rec['id']}/{rec['doc']}")
    assert res.status_code == 200 and res.content == b""
    assert res.headers["content-length"] == "10" and res.headers["content-type"].startswith("text/plain")


async def test_a_batch_carries_files_beyond_its_json_bound(where: str, client: TestClient) -> None:
    """The batch bound (16 KiB per request by default: 32 KiB here) is on the requests'
    JSON: two 400 KB files go in one batch."""
    await client.patch("/api/settings", json={"batch": {"enabled": True, "maxRequests": 2}}, headers=client.su())
    await _docs(client, fields=[{"name": "doc", "type": "file", "maxSize": 1_000_000}])
    payload = {"requests": [{"method": "POST", "url": "/api/collections/docs/records"}] * 2}
    big = b"\x00" * 400_000
    res = await client.post("/api/batch", data={"@jsonPayload": orjson.dumps(payload).decode()}, files=[
        ("requests.0.doc", ("a.bin", big, "application/octet-stream")),
        ("requests.1.doc", ("b.bin", big, "application/octet-stream"))])
    assert res.status_code == 200, res.text[:300]
    over = {"requests": [{"method": "POST", "url": "/api/collections/docs/records",
                          "body": {"pad": "x" * 40_000}}] * 2}  # the JSON itself over 32 KiB
    res = await client.post("/api/batch", data={"@jsonPayload": orjson.dumps(over).decode()})
    assert res.status_code == 413
