"""Keys and tokens across collections, guests on superuser routes, and what errors say.

The scenario is ``world.World`` (users, private posts, a locked vault, a
second auth collection ``members`` with open sign-up) plus Mallory, who signed up in
``members``, and API keys of every scope. Tokens are forged the way an attacker who
learnt one secret or another would: ``alg: none``, another collection's secret, claims
switched, expired, another token type.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import jwt
import pytest
import sqlalchemy as sa

from bastion.api import (
    aggregate,
    auth,
    auth_flows,
    batch,
    collections,
    crons,
    files,
    health,
    jobs,
    oauth2,
    openapi,
    realtime,
    records,
    settings,
    webhooks,
)
from bastion.api import api_keys as api_keys_routes
from tests.security.world import PASSWORD, SECRETS, Actor, World, assert_error

SUPERUSERS_ID = "pbc_3142635823"


class TokenWorld(World):
    """The attack scenario, plus Mallory in ``members``, a collection ruled on the
    caller's auth collection, and API keys."""

    async def build(self) -> None:
        await super().build()
        self.mallory = Actor("mallory", email="mallory@example.com")
        res = await self.client.post("/api/collections/members/records", json={
            "email": self.mallory.email, "password": PASSWORD, "passwordConfirm": PASSWORD})
        assert res.status_code == 200, res.text
        await self.sign_in(self.mallory, "members")
        await self.ok("POST", "/api/collections", json={
            "name": "notices", "listRule": "@request.auth.collectionName = 'users'",
            "viewRule": "@request.auth.collectionId = '_pb_users_auth_'",
            "createRule": "@request.auth.collectionName = 'users' && @request.auth.id != ''",
            "fields": [{"name": "text", "type": "text"}]})
        self.ids["N1"] = (await self.ok("POST", "/api/collections/notices/records", json={"text": "for users"}))["id"]
        self.keys: dict[str, dict[str, Any]] = {}
        for name, body in {
            "posts-list": {"collections": ["posts"], "actions": ["list", "view"]},
            "users-update": {"collections": ["users"], "actions": ["update", "view"]},
            "star": {"collections": ["*"], "actions": ["list", "view", "create", "update", "delete"]},
            "revoked": {"collections": ["*"], "actions": ["list", "view"]},
            "expired": {"collections": ["*"], "actions": ["list", "view"]},
        }.items():
            self.keys[name] = await self.ok("POST", "/api/api-keys", json={"name": name, **body})
        await self.ok("DELETE", f"/api/api-keys/{self.keys['revoked']['id']}")
        table = self.app.registry.table(self.app.registry.get("_apiKeys"))
        async with self.app.db.transaction() as conn:  # as if its day had come
            await conn.execute(sa.update(table).where(table.c.id == self.keys["expired"]["id"])
                               .values(expires="2001-01-01 00:00:00.000Z"))
        rows = await self.rows()
        self.su_id = next(iter(rows["_superusers"]))
        self.token_keys = {name: {i: r["tokenKey"] for i, r in rows[name].items()}
                           for name in ("users", "members", "_superusers")}

    def key(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]['key']}"}

    def secret(self, collection: str, kind: str = "authToken") -> str:
        return str(self.app.registry.get(collection).auth[kind]["secret"])


@pytest.fixture(scope="module")
async def world(engine: Any, tmp_path_factory: pytest.TempPathFactory):
    tw = TokenWorld(engine, tmp_path_factory.mktemp(f"tokens_{engine.name}"))
    await tw.open()
    try:
        yield tw
    finally:
        await tw.close()


@pytest.fixture
async def w(world: TokenWorld):
    world.checked = False
    yield world
    if not world.checked:
        try:
            await world.assert_intact()
        except AssertionError:
            await world.rebuild()


def headers_of(w: TokenWorld, who: str) -> dict[str, str]:
    if who.startswith("key:"):
        return w.key(who[4:])
    return {"guest": {}, "bob": w.bob.h, "mallory": w.mallory.h, "su": w.su}[who]


# --------------------------------------------------------------------------- members on users
async def test_a_members_token_is_nobody_on_users(w):
    m = w.mallory.h
    refresh = await w.call("POST", "/api/collections/users/auth-refresh", m)
    assert_error(refresh, 403)
    for url in (f"/api/collections/users/impersonate/{w.alice.id}",
                f"/api/collections/members/impersonate/{w.mallory.id}",
                f"/api/collections/_superusers/impersonate/{w.su_id}"):
        assert_error(await w.call("POST", url, m, json={}), 403)
    for url in ("/api/collections/users/totp/enroll", "/api/collections/users/totp/disable"):
        assert_error(await w.call("POST", url, m, json={"code": "123456"}), 401)
    assert_error(await w.call("PATCH", f"/api/collections/users/records/{w.alice.id}", m, json={"name": "x"}), 404)
    assert_error(await w.call("DELETE", f"/api/collections/users/records/{w.alice.id}", m), 404)
    # A members record cannot take a users id, so `owner = @request.auth.id` never meets it.
    twin = await w.call("POST", "/api/collections/members/records", {}, json={
        "id": w.alice.id, "email": "twin@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD})
    assert_error(twin, 400)
    assert twin.json()["data"]["id"]["code"] == "validation_invalid_auth_id"
    # Rules naming the auth collection: Mallory is not a user.
    listed = await w.call("GET", "/api/collections/notices/records", m)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert_error(await w.call("GET", f"/api/collections/notices/records/{w.ids['N1']}", m), 404)
    assert_error(await w.call("POST", "/api/collections/notices/records", m, json={"text": "x"}), 400)
    bob_sees = await w.call("GET", "/api/collections/notices/records", w.bob)
    assert [n["id"] for n in bob_sees.json()["items"]] == [w.ids["N1"]]
    # Posts: none listed, none created for herself or for Alice.
    posts = await w.call("GET", "/api/collections/posts/records", m)
    assert posts.status_code == 200 and posts.json()["items"] == []
    for owner in (w.mallory.id, w.alice.id):
        assert_error(await w.call("POST", "/api/collections/posts/records", m, json={"owner": owner}), 400)
    # Users' public list: no email but her own (she has none there).
    users = await w.call("GET", "/api/collections/users/records", m)
    assert users.status_code == 200 and "@example.com" not in users.text
    await w.assert_intact()


async def test_a_user_token_is_nobody_on_superusers(w):
    b = w.bob.h
    for method, url in (("GET", "/api/collections/_superusers/records"),
                        ("GET", f"/api/collections/_superusers/records/{w.su_id}"),
                        ("POST", "/api/collections/_superusers/records"),
                        ("PATCH", f"/api/collections/_superusers/records/{w.su_id}"),
                        ("DELETE", f"/api/collections/_superusers/records/{w.su_id}")):
        assert_error(await w.call(method, url, b, json={"email": "x@example.com"}), 403)
    assert_error(await w.call("POST", "/api/collections/_superusers/auth-refresh", b), 403)
    assert_error(await w.call("POST", f"/api/collections/users/impersonate/{w.alice.id}", b, json={}), 403)
    health = await w.call("GET", "/api/health", b)
    assert health.status_code == 200 and health.json()["data"] == {}
    await w.assert_intact()


# --------------------------------------------------------------------------- forged tokens
def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    def enc(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{enc(header)}.{enc(claims)}."


def forged_tokens(w: TokenWorld) -> dict[str, str]:
    su_token = w.su["Authorization"]
    su = claims_of(su_token)
    su_key = w.token_keys["_superusers"][w.su_id] + w.secret("_superusers")
    bob_key = w.token_keys["users"][w.bob.id] + w.secret("users")
    mallory_key = w.token_keys["members"][w.mallory.id] + w.secret("members")
    later = int(time.time()) + 3600

    def sign(claims: dict[str, Any], key: str, alg: str = "HS256") -> str:
        return jwt.encode(claims, key, algorithm=alg)

    return {
        "alg-none": unsigned(su, {"alg": "none", "typ": "JWT"}),
        "alg-None": unsigned(su, {"alg": "None", "typ": "JWT"}),
        "alg-HS512": sign(su, su_key, "HS512"),
        "no-signature": su_token.rsplit(".", 1)[0] + ".",
        "bad-signature": su_token[:-4] + ("AAAA" if not su_token.endswith("AAAA") else "BBBB"),
        "users-secret": sign(su, w.token_keys["_superusers"][w.su_id] + w.secret("users")),
        "members-secret": sign(su, w.token_keys["_superusers"][w.su_id] + w.secret("members")),
        "bob-key-su-claims": sign({**su, "id": w.su_id}, bob_key),
        "bob-key-su-collection": sign({**claims_of(w.bob.h["Authorization"]), "collectionId": SUPERUSERS_ID}, bob_key),
        "mallory-key-as-users": sign({**claims_of(w.mallory.h["Authorization"]), "collectionId": "_pb_users_auth_",
                                      "id": w.alice.id}, mallory_key),
        "mallory-key-as-alice": sign({**claims_of(w.mallory.h["Authorization"]), "id": w.alice.id}, mallory_key),
        "expired": sign({**su, "exp": int(time.time()) - 5}, su_key),
        "no-exp": sign({k: v for k, v in su.items() if k != "exp"}, su_key),
        "type-refresh": sign({**su, "type": "refresh", "exp": later}, su_key),
        "type-file": sign({**su, "type": "file", "exp": later}, su_key),
        "type-verification": sign({**su, "type": "verification", "exp": later},
                                  w.token_keys["_superusers"][w.su_id] + w.secret("_superusers", "verificationToken")),
        "type-passwordReset": sign(
            {**su, "type": "passwordReset", "exp": later},
            w.token_keys["_superusers"][w.su_id] + w.secret("_superusers", "passwordResetToken")),
        "collection-users": sign({**su, "collectionId": "_pb_users_auth_"}, su_key),
        "collection-missing": sign({k: v for k, v in su.items() if k != "collectionId"}, su_key),
        "id-list": sign({**su, "id": [w.su_id]}, su_key),
        "id-wildcard": sign({**su, "id": "%"}, su_key),
        "huge": sign({**su, "pad": "x" * 5000}, su_key),
        "garbage": "eyJ" + "A" * 40,
        "bearer-bearer": "Bearer Bearer " + su_token,
    }


FORGED = ["alg-none", "alg-None", "alg-HS512", "no-signature", "bad-signature", "users-secret", "members-secret",
          "bob-key-su-claims", "bob-key-su-collection", "mallory-key-as-users", "mallory-key-as-alice",
          "expired", "no-exp", "type-refresh", "type-file", "type-verification", "type-passwordReset",
          "collection-users", "collection-missing", "id-list", "id-wildcard", "huge", "garbage", "bearer-bearer"]


@pytest.mark.parametrize("name", FORGED)
async def test_forged_tokens_make_a_guest(w, name):
    token = forged_tokens(w)[name]
    h = {"Authorization": token}
    assert_error(await w.call("GET", "/api/collections", h), 401)
    assert_error(await w.call("GET", "/api/settings", h), 401)
    assert_error(await w.call("POST", "/api/collections/_superusers/auth-refresh", h), 401)
    assert_error(await w.call("POST", "/api/collections/users/auth-refresh", h), 401)
    assert_error(await w.call("POST", f"/api/collections/users/impersonate/{w.alice.id}", h, json={}), 401)
    assert_error(await w.call("GET", "/api/collections/vault/records", h), 403)
    posts = await w.call("GET", "/api/collections/posts/records", h)
    assert posts.status_code == 200 and posts.json()["items"] == []
    users = await w.call("GET", "/api/collections/users/records", h)
    assert users.status_code == 200 and "@example.com" not in users.text
    assert (await w.call("GET", "/api/health", h)).json()["data"] == {}
    await w.assert_intact()


async def test_genuine_tokens_still_work(w):
    """The controls: the same requests with the genuine tokens succeed."""
    assert (await w.call("GET", "/api/collections", w.su)).status_code == 200
    assert (await w.call("POST", "/api/collections/users/auth-refresh", w.bob)).status_code == 200
    assert (await w.call("POST", "/api/collections/members/auth-refresh", w.mallory)).status_code == 200
    su = claims_of(w.su["Authorization"])
    resigned = jwt.encode(su, w.token_keys["_superusers"][w.su_id] + w.secret("_superusers"), algorithm="HS256")
    assert (await w.call("GET", "/api/collections", {"Authorization": f"bearer {resigned}"})).status_code == 200


async def test_tokens_die_with_their_record_and_password(w):
    made = await w.call("POST", "/api/collections/users/records", {}, json={
        "email": "temp@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD})
    assert made.status_code == 200, made.text
    temp = Actor("temp", email="temp@example.com")
    await w.sign_in(temp)
    old = dict(temp.h)
    changed = await w.call("PATCH", f"/api/collections/users/records/{temp.id}", temp, json={
        "oldPassword": PASSWORD, "password": "another-password-1", "passwordConfirm": "another-password-1"})
    assert changed.status_code == 200, changed.text
    assert_error(await w.call("POST", "/api/collections/users/auth-refresh", old), 401)
    # An impersonation token cannot be refreshed into a longer one.
    imp = await w.call("POST", f"/api/collections/users/impersonate/{temp.id}", w.su, json={"duration": 60})
    assert imp.status_code == 200
    imp_token = imp.json()["token"]
    again = await w.call("POST", "/api/collections/users/auth-refresh", {"Authorization": imp_token})
    assert again.status_code == 200 and again.json()["token"] == imp_token
    assert (await w.call("DELETE", f"/api/collections/users/records/{temp.id}", w.su)).status_code == 204
    for token in (imp_token, old["Authorization"]):
        assert_error(await w.call("POST", "/api/collections/users/auth-refresh", {"Authorization": token}), 401)
    await w.assert_intact()


# --------------------------------------------------------------------------- API keys
KEY_CASES = [
    # (key, method, url, body, expected status)
    ("posts-list", "GET", "/api/collections/comments/records", None, 403),
    ("posts-list", "GET", "/api/collections/vault/records", None, 403),
    ("posts-list", "GET", "/api/collections/vault/records/{VA}", None, 403),
    ("posts-list", "GET", "/api/collections/_superusers/records", None, 403),
    ("posts-list", "GET", "/api/collections/_apiKeys/records", None, 403),
    ("posts-list", "POST", "/api/collections/posts/records", {"owner": "{bob}"}, 403),
    ("posts-list", "PATCH", "/api/collections/posts/records/{A1}", {"title": "pwned"}, 403),
    ("posts-list", "DELETE", "/api/collections/posts/records/{A1}", None, 403),
    ("posts-list", "GET", "/api/collections/vault/aggregate", None, 403),
    ("posts-list", "GET", "/api/collections/posts/records?filter=vault_via_post.code ?~ 'V'", None, 400),
    ("posts-list", "GET", "/api/collections/posts/records?filter=secret ~ 'a'", None, 400),
    ("posts-list", "GET", "/api/collections/posts/records?filter=@request.auth.id = ''", None, 403),
    ("posts-list", "GET", "/api/collections", None, 401),
    ("posts-list", "GET", "/api/collections/posts", None, 401),
    ("posts-list", "PATCH", "/api/collections/posts", {"listRule": ""}, 401),
    ("posts-list", "GET", "/api/settings", None, 401),
    ("posts-list", "GET", "/api/api-keys", None, 401),
    ("posts-list", "POST", "/api/api-keys", {"name": "x", "collections": ["*"], "actions": ["list"]}, 401),
    ("posts-list", "POST", "/api/collections/users/impersonate/{alice}", {}, 401),
    ("users-update", "PATCH", "/api/collections/users/records/{alice}",
     {"password": "pwned-password-1", "passwordConfirm": "pwned-password-1"}, 400),
    ("users-update", "PATCH", "/api/collections/users/records/{alice}", {"verified": True}, 400),
    ("users-update", "PATCH", "/api/collections/users/records/{alice}", {"email": "eve@example.com"}, 400),
    ("users-update", "PATCH", "/api/collections/members/records/{mallory}", {"name": "x"}, 403),
    ("users-update", "PATCH", "/api/collections/_superusers/records/{su}", {"email": "eve@example.com"}, 403),
    ("star", "POST", "/api/collections/_superusers/records",
     {"email": "eve@example.com", "password": "pwned-password-1", "passwordConfirm": "pwned-password-1"}, 403),
    ("star", "PATCH", "/api/collections/_apiKeys/records/{key:revoked}", {"revoked": False}, 403),
    ("star", "GET", "/api/collections/_otps/records", None, 403),
    ("star", "GET", "/api/collections/_authenticators/records", None, 403),
    ("star", "GET", "/api/collections/_mfas/records", None, 403),
    ("star", "GET", "/api/collections/_externalAuths/records", None, 403),
    ("star", "GET", "/api/collections/_authOrigins/records", None, 403),
    ("star", "DELETE", "/api/collections/posts", None, 401),
    ("star", "PATCH", "/api/settings", {"batch": {"enabled": False}}, 401),
    ("star", "DELETE", "/api/api-keys/{key:star}", None, 401),
    ("star", "POST", "/api/collections/_superusers/auth-refresh", None, 401),
    ("revoked", "GET", "/api/collections/vault/records", None, 403),
    ("revoked", "GET", "/api/collections/_apiKeys/records", None, 403),
    ("expired", "GET", "/api/collections/vault/records", None, 403),
    ("expired", "GET", "/api/collections/comments/records", None, 200),  # a guest: nothing listed
]


def fill(w: TokenWorld, text: str) -> str:
    text = re.sub(r"\{key:(\w+)\}", lambda m: w.keys[m.group(1)]["id"], text)
    return w.fill(text.replace("{mallory}", w.mallory.id).replace("{su}", w.su_id))


@pytest.mark.parametrize("key,method,url,body,status", KEY_CASES,
                         ids=[f"{k}-{m}-{u}" for k, m, u, _, _ in KEY_CASES])
async def test_api_keys_stay_in_their_scope(w, key, method, url, body, status):
    res = await w.call(method, fill(w, url), w.key(key), **({"json": w.fill_any(body)} if body is not None else {}))
    if status == 200:
        assert res.status_code == 200 and res.json()["items"] == [], res.text
    else:
        assert_error(res, status)
    for secret in SECRETS:
        assert secret not in res.text
    await w.assert_intact()


async def test_a_posts_key_reads_posts_but_not_what_is_hidden_behind_them(w):
    h = w.key("posts-list")
    res = await w.call("GET", "/api/collections/posts/records", h,
                       params={"expand": "vault_via_post,comments_via_post,owner,members", "fields": "*,secret,expand"})
    assert res.status_code == 200, res.text
    assert sorted(p["title"] for p in res.json()["items"]) == ["alice-diary", "alice-plans", "bob-notes"]
    for secret in ("secret", "VAULT-", "alice-private", "@example.com", '"reviewer"', '"watchers"'):
        assert secret not in res.text, secret
    # The key's rights end where its collections end: a bogus or revoked key is a guest.
    for token in (f"bk_{w.keys['star']['id']}_wrongsecret", "bk_" + "a" * 15 + "_" + "b" * 40,
                  w.keys["star"]["key"] + "x", w.keys["star"]["key"][:-1], "bk_" + "x" * 200,
                  w.keys["revoked"]["key"], w.keys["expired"]["key"]):
        listed = await w.call("GET", "/api/collections/posts/records", {"Authorization": token})
        assert listed.status_code == 200 and listed.json()["items"] == [], token
    await w.assert_intact()


async def test_keys_in_a_batch_stay_in_their_scope(w):
    for key, request in (
        ("star", {"method": "POST", "url": "/api/collections/_superusers/records",
                  "body": {"email": "eve@example.com", "password": "pwned-password-1",
                           "passwordConfirm": "pwned-password-1"}}),
        ("posts-list", {"method": "PATCH", "url": f"/api/collections/posts/records/{w.ids['A1']}",
                        "body": {"title": "pwned"}}),
        ("users-update", {"method": "PATCH", "url": f"/api/collections/users/records/{w.alice.id}",
                          "body": {"password": "pwned-password-1", "passwordConfirm": "pwned-password-1"}}),
        ("revoked", {"method": "DELETE", "url": f"/api/collections/vault/records/{w.ids['VA']}"}),
    ):
        res = await w.call("POST", "/api/batch", w.key(key), json={"requests": [request]})
        body = assert_error(res, 400)
        assert body["data"]["requests"]["0"]["response"]["status"] in (400, 403), res.text
    await w.assert_intact()


# --------------------------------------------------------------------------- superuser routes
SUPERUSER_MODULES = (collections, settings, api_keys_routes, crons, jobs, webhooks)
OPEN_MODULES = (health, openapi, records, auth, auth_flows, batch, aggregate, oauth2, files, realtime)
SUPERUSER_ROUTES = {(m, r.path) for mod in SUPERUSER_MODULES for r in mod.routes for m in sorted(r.methods or ())
                    if m != "HEAD"} | {("POST", "/api/collections/{collection}/impersonate/{id}")}
LOCKED_SYSTEM = ("_superusers", "_apiKeys", "_authenticators")
OWNED_SYSTEM = ("_otps", "_mfas", "_externalAuths", "_authOrigins")  # each caller's own rows


def test_every_route_is_classified():
    """Every module of bastion/api with routes is either superuser-only (and tested route by
    route below) or open; a new module must be placed in one of the two."""
    import importlib
    import pkgutil

    import bastion.api

    with_routes = set()
    for info in pkgutil.iter_modules(bastion.api.__path__):
        mod = importlib.import_module(f"bastion.api.{info.name}")
        if isinstance(getattr(mod, "routes", None), list):
            with_routes.add(mod.__name__)
    assert with_routes == {m.__name__ for m in (*SUPERUSER_MODULES, *OPEN_MODULES)}
    assert len(SUPERUSER_ROUTES) >= 14, SUPERUSER_ROUTES


@pytest.mark.parametrize("who", ["guest", "bob", "mallory", "key:star", "key:revoked"])
async def test_nobody_but_a_superuser_reaches_superuser_routes(w, who):
    h = headers_of(w, who)
    signed_in = who in ("bob", "mallory")
    seen = []
    for method, path in sorted(SUPERUSER_ROUTES):
        for collection in ("posts", "_superusers", "users"):
            if "impersonate" in path and collection == "posts":
                continue  # not an auth collection: 404 before anything else
            url = path.replace("{collection}", collection).replace("{id}", w.alice.id)
            res = await w.call(method, url, h, json={"name": "pwned", "listRule": "", "batch": {"enabled": False}})
            assert_error(res, 403 if signed_in else 401)
            seen.append((method, url))
    for name in (*LOCKED_SYSTEM, *OWNED_SYSTEM):
        res = await w.call("POST", f"/api/collections/{name}/records", h, json={"email": "eve@example.com"})
        assert_error(res, 403)
        listed = await w.call("GET", f"/api/collections/{name}/records", h)
        if name in LOCKED_SYSTEM or who == "key:star":
            assert_error(listed, 403)
        else:
            own = {"bob": w.bob.id, "mallory": w.mallory.id}.get(who)
            assert listed.status_code == 200, listed.text
            assert all(r["recordRef"] == own for r in listed.json()["items"]), listed.text
    # The truncate route must have been reached too (it writes the most).
    assert ("DELETE", "/api/collections/posts/truncate") in seen
    await w.assert_intact()


# --------------------------------------------------------------------------- error bodies
FORBIDDEN_IN_ERRORS = [re.compile(p) for p in (
    r"\bSELECT\b", r"\bFROM\b", r"\bWHERE\b", r"\bINSERT\b", r"\bUPDATE\b", r"\bJOIN\b", r"Traceback",
    r"(?i)sqlite3", r"(?i)asyncpg", r"(?i)asyncmy", r"(?i)psycopg", r"(?i)sqlalchemy", r"(?i)pymysql",
    r"\.py\b", r"/work/", r"site-packages", r"\b[A-Z][A-Za-z]+(Error|Exception)\b", r"\b_collections\b",
    r"\bagg_rows\b", r"\banon_\d", r"\bbastion_\w+", r"(?i)errno", r"(?i)\bsyntax error at\b",
    r"(?i)mariadb", r"(?i)postgres", r"\$argon2",
)]


def bad_requests(w: TokenWorld) -> list[tuple[str, str, dict[str, Any]]]:
    posts = "/api/collections/posts/records"
    big = "9" * 400
    return [
        ("POST", posts, {"content": b'{"owner": ', "headers": {"Content-Type": "application/json"}}),
        ("POST", posts, {"content": b"[1, 2, 3]", "headers": {"Content-Type": "application/json"}}),
        ("POST", posts, {"content": b'{"score": 1e400}', "headers": {"Content-Type": "application/json"}}),
        ("POST", posts, {"content": b'{"score": ' + big.encode() + b"}",
                         "headers": {"Content-Type": "application/json"}}),
        ("POST", posts, {"content": b'{"title": "\\ud800"}', "headers": {"Content-Type": "application/json"}}),
        ("POST", posts, {"content": b'{"title": "a\\u0000b", "owner": "x"}',
                         "headers": {"Content-Type": "application/json"}}),
        ("POST", posts, {"json": {"id": "a" * 300, "owner": w.bob.id}}),
        ("POST", posts, {"json": {"id": "../../etc", "owner": w.bob.id}}),
        ("POST", posts, {"json": {"owner": w.bob.id, "score": "1e999", "tags": ["nope"]}}),  # (1e999 alone reads 0)
        ("POST", posts, {"json": {"owner": w.bob.id, "tags": ["nope"], "members": ["x" * 300]}}),
        ("GET", posts, {"params": {"filter": "title = "}}),
        ("GET", posts, {"params": {"filter": "((((((title = 'x'"}}),
        ("GET", posts, {"params": {"filter": "title ~ 'x' && && score > 1"}}),
        ("GET", posts, {"params": {"filter": "nope = 1"}}),
        ("GET", posts, {"params": {"filter": f"score > {big}"}}),
        ("GET", posts, {"params": {"filter": f"score > -{big}.5e99999"}}),
        ("GET", posts, {"params": {"filter": "score > 1e400 || score < -1e400"}}),
        ("GET", posts, {"params": {"filter": "title = 'a\x00b'"}}),
        ("GET", posts, {"params": {"filter": "title = '\U0001f600\u202e' || title:lower ~ '\u0130'"}}),
        ("GET", posts, {"params": {"filter": "title = 'x' OR 1=1 --"}}),
        ("GET", posts, {"params": {"filter": "title = 'x'; DROP TABLE posts"}}),
        ("GET", posts, {"params": {"sort": "title;DROP TABLE posts"}}),
        ("GET", posts, {"params": {"sort": "t\u00edtle"}}),
        ("GET", posts, {"params": {"perPage": big}}),
        ("GET", posts, {"params": {"page": big}}),
        ("GET", posts, {"params": {"page": "-1e9", "perPage": "1.5"}}),
        ("GET", posts, {"params": {"skipTotal": "maybe"}}),
        ("GET", posts, {"params": {"cursor": "\x00" * 10}}),
        ("GET", posts, {"params": {"cursor": "", "sort": "owner.email"}}),
        ("GET", "/api/collections/nope/records", {}),
        ("GET", "/api/collections/%F0%9F%98%80/records", {}),
        ("GET", "/api/collections/posts%00/records", {}),
        ("GET", f"{posts}/{'a' * 5000}", {}),
        ("GET", f"{posts}/abc%00def", {}),
        ("GET", f"{posts}/{big}", {}),
        ("PATCH", f"{posts}/{'b' * 300}", {"json": {"title": "x"}}),
        ("DELETE", f"{posts}/%27%20OR%20%271%27=%271", {}),
        ("GET", "/api/collections/posts/aggregate", {"params": {"groupBy": "title;DROP", "limit": big}}),
        ("GET", "/api/collections/posts/aggregate", {"params": {"sum": "title", "max": "nope"}}),
        ("GET", "/api/collections/posts/aggregate", {"params": {"filter": f"score > {big}", "sum": "score"}}),
        ("POST", "/api/batch", {"json": {"requests": "all"}}),
        ("POST", "/api/batch", {"json": {"requests": [{"method": "POST", "url": posts, "body": {"score": big}}]}}),
        ("POST", "/api/collections/users/auth-with-password", {"json": {"identity": {"$ne": ""}, "password": []}}),
        ("POST", "/api/collections/users/auth-with-password", {"json": {"identity": "x" * 10000, "password": "y"}}),
        ("POST", "/api/collections/users/auth-with-password", {
            "content": b"identity=a&password=%zz", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("POST", "/api/collections/users/confirm-password-reset", {"json": {"token": "a.b.c", "password": 1}}),
        ("POST", "/api/collections/users/request-otp", {"json": {"email": "\x00@example.com"}}),
        ("POST", posts, {"content": b"<xml/>", "headers": {"Content-Type": "application/xml"}}),
        ("GET", "/api/collections/posts/records/" + "%FF" * 20, {}),
        ("PUT", posts, {"json": {}}),
        ("GET", "/api/nowhere/../collections", {}),
    ]


@pytest.mark.parametrize("who", ["bob", "guest"])
async def test_error_bodies_reveal_no_internals(w, who):
    h = headers_of(w, who)
    answers = []
    for method, url, kw in bad_requests(w):
        res = await w.call(method, url, h, **kw)
        answers.append((method, url[:80], kw, res))
    failures = []
    for method, url, kw, res in answers:
        if res.status_code == 200:
            continue  # a harmless value: an empty list or a clamped perPage
        try:
            body = res.json()
        except ValueError:
            failures.append((method, url, kw, res.status_code, res.text[:200]))
            continue
        problems = []
        if res.status_code >= 500:
            problems.append("5xx")
        if set(body) - {"detail"} != {"status", "message", "data"} or body["status"] != res.status_code:
            problems.append("shape")
        problems += [p.pattern for p in FORBIDDEN_IN_ERRORS if p.search(res.text)]
        if problems:
            failures.append((method, url, str(kw)[:100], res.status_code, problems, res.text[:300]))
    assert not failures, "\n".join(map(str, failures))
    await w.assert_intact()


@pytest.mark.parametrize("who", ["guest", "bob", "mallory", "key:posts-list", "key:star"])
async def test_openapi_describes_nothing_locked_or_hidden(w, who):
    res = await w.call("GET", "/api/openapi.json", headers_of(w, who))
    assert res.status_code == 200
    locked = () if who == "key:star" else ('"vault',)  # a "*" key may read the vault
    for name in (*locked, "secret", "reviewer", "watchers", "_superusers", "_apiKeys", "/api/settings",
                 "/api/api-keys", "_authenticators"):
        assert name not in res.text, name
    full = await w.call("GET", "/api/openapi.json", w.su)  # the control: a superuser sees them
    assert all(name in full.text for name in ('"vault', "secret", "_superusers", "/api/settings"))
