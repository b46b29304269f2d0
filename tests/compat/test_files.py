"""The files API compared with PocketBase: the same uploads, downloads, thumbs, errors and
protected files sent to both servers.

Stored names hold ten random characters, so names are compared by their shape (the
cleaned original name, ``_``, ten characters, the extension) and answers with the random
part masked. Bastion's ``ETag`` (PocketBase sends none) is the one header it adds.
"""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.compat.harness import Pair
from tests.files import media

DOCS = "/api/collections/docs/records"
RID = "f1f1f1f1f1f1f1f"
RANDOM = re.compile(r"_[a-z0-9]{10}(?=\.|$)")
SAME_HEADERS = ("content-type", "content-disposition", "cache-control", "content-security-policy",
                "x-frame-options", "x-content-type-options", "accept-ranges")


def masked(value: Any) -> Any:
    if isinstance(value, str):
        return RANDOM.sub("_<random>", value)
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


@pytest.fixture(scope="module")
def scenario(pair: Pair) -> tuple[Pair, dict[str, dict[str, Any]]]:
    pair.setup("POST", "/api/collections", json={
        "id": "pbc_docs", "name": "docs", "type": "base", "listRule": "", "createRule": "",
        "viewRule": "@request.auth.id != ''",  # a protected file needs a caller passing it
        "updateRule": "", "deleteRule": "",
        "fields": [{"name": "title", "type": "text"},
                   {"name": "doc", "type": "file", "maxSize": 2000},
                   {"name": "imgs", "type": "file", "maxSelect": 3, "thumbs": ["50x50", "0x20", "20x20f", "30x30t"],
                    "mimeTypes": ["image/png", "image/jpeg"]},
                   {"name": "secret", "type": "file", "protected": True}]})
    records = {}
    for side in pair.sides:
        res = side.request("POST", DOCS, "su", data={"id": RID, "title": "t"}, files=[
            ("doc", ("Report Final.txt", b"hello files", "text/plain")),
            ("imgs", ("one.png", media.png(80, 40), "image/png")),
            ("imgs", ("two.jpg", media.jpeg(60, 60), "image/jpeg")),
            ("secret", ("secret.txt", b"classified", "text/plain"))])
        assert res.status_code == 200, (side.name, res.text)
        records[side.name] = res.json()
    return pair, records


def test_an_upload_answers_the_same_record(scenario: tuple[Pair, dict[str, dict[str, Any]]]) -> None:
    pair, records = scenario
    pb, bastion = (masked({k: v for k, v in r.items() if k not in ("created", "updated")})
                   for r in (records["pocketbase"], records["bastion"]))
    assert bastion == pb
    assert pb["doc"] == "report_final_<random>.txt"


def _get(pair: Pair, records: dict[str, dict[str, Any]], field: str, index: int = 0,
         **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    out = []
    for side in pair.sides:
        value = records[side.name][field]
        name = value[index] if isinstance(value, list) else value
        out.append(side.request("GET", f"/api/files/docs/{RID}/{name}", **kw))
    pair.compared += 1
    return out[0], out[1]


@pytest.mark.parametrize("field,index,params", [
    ("doc", 0, {}), ("imgs", 0, {}), ("imgs", 1, {}), ("doc", 0, {"download": "1"}), ("imgs", 0, {"download": "t"}),
    ("imgs", 0, {"thumb": "50x50"}), ("imgs", 1, {"thumb": "100x100"}),
], ids=["text", "png", "jpeg", "download", "download-t", "thumb", "default-thumb"])
def test_downloads_answer_the_same_headers(scenario: tuple[Pair, dict[str, dict[str, Any]]], field: str, index: int,
                                          params: dict[str, str]) -> None:
    pair, records = scenario
    pb, bastion = _get(pair, records, field, index, params=params)
    assert bastion.status_code == pb.status_code == 200
    assert ({h: masked(bastion.headers.get(h)) for h in SAME_HEADERS}
            == {h: masked(pb.headers.get(h)) for h in SAME_HEADERS})
    if "thumb" not in params:
        assert bastion.content == pb.content


@pytest.mark.parametrize("spec", ["50x50", "0x20", "20x20f", "30x30t", "100x100", "99x99", "0x0", "bogus"])
def test_thumbs_have_the_same_size(scenario: tuple[Pair, dict[str, dict[str, Any]]], spec: str) -> None:
    pair, records = scenario
    pb, bastion = _get(pair, records, "imgs", 0, params={"thumb": spec})
    assert bastion.status_code == pb.status_code == 200
    sizes = [Image.open(io.BytesIO(res.content)).size for res in (pb, bastion)]
    assert sizes[1] == sizes[0], spec


def test_ranges_and_conditional_requests(scenario: tuple[Pair, dict[str, dict[str, Any]]]) -> None:
    pair, records = scenario
    pb, bastion = _get(pair, records, "doc", headers={"Range": "bytes=2-4"})
    assert (bastion.status_code, bastion.content, bastion.headers["content-range"]) == (
        pb.status_code, pb.content, pb.headers["content-range"])
    for headers in ({"Range": "bytes=50-"}, {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        pb, bastion = _get(pair, records, "doc", headers=headers)
        assert bastion.status_code == pb.status_code, headers


def test_protected_files_and_tokens(scenario: tuple[Pair, dict[str, dict[str, Any]]]) -> None:
    """Without a token a guest fails the view rule (404); a file token passes it. (With
    an empty view rule both servers serve a protected file to anyone.)"""
    pair, records = scenario
    pb, bastion = _get(pair, records, "secret")
    assert (bastion.status_code, bastion.json()) == (pb.status_code, pb.json()) and pb.status_code == 404
    for side in pair.sides:
        token = side.request("POST", "/api/files/token", "su").json()["token"]
        name = records[side.name]["secret"]
        res = side.request("GET", f"/api/files/docs/{RID}/{name}", params={"token": token})
        assert (res.status_code, res.content) == (200, b"classified"), side.name
    pb_guest, bastion_guest = (side.request("POST", "/api/files/token") for side in pair.sides)
    assert (bastion_guest.status_code, bastion_guest.json()) == (pb_guest.status_code, pb_guest.json())


@pytest.mark.parametrize("body,files", [
    ({"imgs": ["nonexistent.png"]}, None),
    ({}, [("doc", ("big.txt", b"x" * 2001, "text/plain"))]),
    ({}, [("imgs", ("fake.png", media.HTML, "image/png"))]),
    ({}, [("imgs", (f"{i}.png", media.png(), "image/png")) for i in range(4)]),
], ids=["unknown-name", "too-big", "wrong-type", "too-many"])
def test_refused_uploads_answer_the_same_error(scenario: tuple[Pair, dict[str, dict[str, Any]]],
                                               body: dict[str, Any], files: Any) -> None:
    pair, _ = scenario
    kw: dict[str, Any] = {"json": body} if files is None else {"files": files}
    pb, bastion = (side.request("POST", "/api/collections/docs/records", **kw) for side in pair.sides)
    pair.compared += 1
    assert (bastion.status_code, masked(bastion.json())) == (pb.status_code, masked(pb.json()))


def test_missing_files_are_the_same_404(scenario: tuple[Pair, dict[str, dict[str, Any]]]) -> None:
    pair, _ = scenario
    for path in (f"/api/files/docs/{RID}/nope.txt", "/api/files/docs/nosuchrecord00/x.txt",
                 f"/api/files/nosuchcollection/{RID}/x.txt"):
        pb, bastion = pair.both("GET", path)
        assert bastion == pb, path
