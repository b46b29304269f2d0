"""Hostile uploads and downloads: bombs, lies about types, odd names, endless bodies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bastion.testing import TestClient
from tests.files import media

pytestmark = pytest.mark.backends

COLLECTION = {
    "name": "media", "type": "base",
    "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
    "fields": [{"name": "file", "type": "file", "maxSize": 10_000, "thumbs": ["10x10"]}],
}


async def _upload(client: TestClient, name: str, data: bytes) -> dict[str, Any]:
    if (await client.get("/api/collections/media", headers=client.su())).status_code == 404:
        res = await client.post("/api/collections", json=COLLECTION, headers=client.su())
        assert res.status_code == 200, res.text
    res = await client.post("/api/collections/media/records", files={"file": (name, data, "image/png")})
    assert res.status_code == 200, res.text
    return res.json()


async def test_a_bomb_is_never_decoded(where: str, client: TestClient) -> None:
    bomb = media.png_declaring(100_000, 100_000)
    rec = await _upload(client, "bomb.png", bomb)
    started = time.perf_counter()
    res = await client.get(f"/api/files/media/{rec['id']}/{rec['file']}?thumb=10x10")
    assert time.perf_counter() - started < 5
    assert res.status_code == 200 and res.content == bomb  # no thumb: the original


async def test_html_and_svg_posing_as_images_never_run_inline(where: str, client: TestClient) -> None:
    for name, data, shown in (("cat.png", media.HTML, "text/html"), ("logo.svg", media.SVG, "image/svg+xml")):
        rec = await _upload(client, name, data)
        res = await client.get(f"/api/files/media/{rec['id']}/{rec['file']}")
        assert res.headers["content-type"].startswith(shown)
        assert res.headers["content-disposition"].startswith("attachment")
        assert "sandbox" in res.headers["content-security-policy"]
        thumb = await client.get(f"/api/files/media/{rec['id']}/{rec['file']}?thumb=10x10")
        assert thumb.content == data  # not an image: never decoded


async def test_a_wrong_extension_does_not_change_the_type(where: str, client: TestClient) -> None:
    rec = await _upload(client, "photo.txt", media.png())
    res = await client.get(f"/api/files/media/{rec['id']}/{rec['file']}")
    assert res.headers["content-type"] == "image/png" and rec["file"].endswith(".txt")


ODD_NAMES = ["../../etc/passwd", "..\\..\\boot.ini", "a\x00b.png", "x" * 600 + ".png", "\u202egnp.exe",
             "/abs/path.png", ".hidden", "..", "ﬁle\u0301.png", "CON.tar.gz", "a" * 30 + "." + "b" * 40]


@pytest.mark.parametrize("name", ODD_NAMES, ids=[str(i) for i in range(len(ODD_NAMES))])
async def test_odd_names_are_neutralised(where: str, client: TestClient, name: str) -> None:
    rec = await _upload(client, name, b"data")
    stored = rec["file"]
    assert "/" not in stored and "\\" not in stored and "\x00" not in stored and ".." not in stored
    assert len(stored) <= 150 and not stored.startswith(".")
    assert stored.isascii()
    res = await client.get(f"/api/files/media/{rec['id']}/{stored}")
    assert res.status_code == 200 and res.content == b"data"


async def test_traversal_in_a_download_path_finds_nothing(where: str, client: TestClient) -> None:
    rec = await _upload(client, "a.txt", b"data")
    for path in (f"{rec['id']}/..%2F..%2Fdata.db", f"{rec['id']}/%2e%2e", f"{rec['id']}/{rec['file']}%00"):
        assert (await client.get(f"/api/files/media/{path}")).status_code == 404


async def test_an_oversize_upload_is_cut_off_early(where: str, client: TestClient) -> None:
    await _upload(client, "seed.txt", b"x")
    sent = 0
    boundary = "bastionboundary"

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        yield head
        for _ in range(2000):  # 128 MB if read to the end
            sent += 65536
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    res = await client.post("/api/collections/media/records", content=body(),
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert res.status_code in (400, 413)
    assert sent < 4 * 1024 * 1024  # stopped long before the end


async def test_folders_in_a_sent_name_are_dropped(where: str, client: TestClient) -> None:
    rec = await _upload(client, "photos/cat.png", media.png())
    assert rec["file"].startswith("cat_") and rec["file"].endswith(".png")
    rec = await _upload(client, "../../etc/passwd", b"root:x:0:0")
    assert rec["file"].startswith("passwd_") and rec["file"].endswith(".txt")  # extension sniffed
