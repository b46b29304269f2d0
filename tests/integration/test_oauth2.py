"""OAuth2 / OpenID Connect sign-in against a real OpenID Provider.

``tests/js/oidc/provider.mjs`` runs node-oidc-provider (pinned in
``tests/js/oidc/package.json``; started through ``oidc_support``) on a free port of
127.0.0.1 with two confidential clients, PKCE required, and its development login page;
any login name is an account with the email ``<login>@example.com``, verified unless the
login starts with ``unverified``. The test plays the browser: it opens the ``authURL``
from ``auth-methods`` with httpx, submits the login form, follows the redirects and takes
the ``code`` from the last one.

The provider is installed once into ``$TMPDIR/bastion-oidc-provider-<hash of
package.json>``. Without node/npm (or the npm registry) the tests skip with the reason,
unless ``BASTION_TEST_SERVICES=required``. Bastion runs in-process on SQLite only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from bastion.core.auth import oauth2_providers
from bastion.core.auth.oauth2_providers import ProviderError, code_nonce, validate_id_token
from bastion.testing import create_user as make_user
from bastion.testing import sign_in
from tests.integration.oidc_support import CLIENT, OTHER, REDIRECT, install_provider, run_provider
from tests.services import BACKENDS, Backend


@pytest.fixture
def backend() -> Backend:
    """SQLite only: the flows are database-agnostic, and the provider is the slow part."""
    return BACKENDS["sqlite"]


# --------------------------------------------------------------------------- the provider


@pytest.fixture(scope="module")
def provider_dir() -> Path:
    return install_provider()


@pytest.fixture(scope="module")
def issuer(provider_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_provider(provider_dir, tmp_path_factory.mktemp("oidc")) as url:
        yield url


# --------------------------------------------------------------------------- helpers


async def enable(client, issuer: str, collection: str = "users", **changes: Any) -> None:
    provider = {"name": "oidc", "displayName": "Test IdP", "clientId": CLIENT["client_id"],
                "clientSecret": CLIENT["client_secret"], "extra": {"issuer": issuer}}
    body: dict[str, Any] = {"oauth2": {"enabled": True, "providers": [provider]}, **changes}
    res = await client.patch(f"/api/collections/{collection}", headers=client.su(), json=body)
    assert res.status_code == 200, res.text
    assert all("clientSecret" not in p for p in res.json()["oauth2"]["providers"])  # write-only


async def method(client, collection: str = "users") -> dict[str, Any]:
    res = await client.get(f"/api/collections/{collection}/auth-methods")
    assert res.status_code == 200, res.text
    providers = res.json()["oauth2"]["providers"]
    assert [p["name"] for p in providers] == ["oidc"]
    return providers[0]


async def authorize(m: dict[str, Any], login: str) -> str:
    """Be the browser: open the authorization URL, sign in, return the code."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        res = await browser.get(m["authURL"] + quote(REDIRECT, safe=""))
        for _ in range(12):
            if res.is_redirect:
                location = urljoin(str(res.url), res.headers["location"])
                if location.startswith(REDIRECT):
                    query = parse_qs(urlsplit(location).query)
                    assert query["state"] == [m["state"]], query
                    return query["code"][0]
                res = await browser.get(location)
            elif res.status_code == 200 and 'name="login"' in res.text:
                action = html.unescape(re.search(r'<form[^>]*action="([^"]+)"', res.text).group(1))
                res = await browser.post(urljoin(str(res.url), action),
                                         data={"prompt": "login", "login": login, "password": "any"})
            else:
                raise AssertionError(f"unexpected answer {res.status_code}: {res.text[:500]}")
    raise AssertionError("too many redirects")


async def oauth2(client, m: dict[str, Any], code: str, collection: str = "users", **body: Any) -> httpx.Response:
    headers, params = body.pop("headers", None) or {}, body.pop("params", None)
    payload = {"provider": m["name"], "code": code, "codeVerifier": m["codeVerifier"], "redirectURL": REDIRECT,
               **body}
    return await client.post(f"/api/collections/{collection}/auth-with-oauth2", json=payload, headers=headers,
                             params=params)


async def sign_in_as(client, login: str, collection: str = "users", **body: Any) -> httpx.Response:
    m = await method(client, collection)
    return await oauth2(client, m, await authorize(m, login), collection, **body)


async def links(client, record_id: str) -> list[dict[str, Any]]:
    res = await client.get("/api/collections/_externalAuths/records", headers=client.su(),
                           params={"filter": f"recordRef = '{record_id}'"})
    assert res.status_code == 200, res.text
    return res.json()["items"]


# --------------------------------------------------------------------------- tests


async def test_auth_methods_lists_the_provider(client, issuer):
    res = await client.get("/api/collections/users/auth-methods")
    assert res.json()["oauth2"] == {"enabled": False, "providers": []}
    await enable(client, issuer)
    m = await method(client)
    assert m["displayName"] == "Test IdP" and len(m["state"]) == 30
    assert m["authURL"].startswith(issuer + "/auth?") and m["authURL"].endswith("&redirect_uri=")
    assert m["authUrl"] == m["authURL"]
    assert len(m["codeVerifier"]) == 43 and m["codeChallengeMethod"] == "S256"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(m["codeVerifier"].encode()).digest()).rstrip(b"=").decode()
    query = parse_qs(urlsplit(m["authURL"]).query)
    assert query["code_challenge"] == [challenge] == [m["codeChallenge"]]
    assert query["state"] == [m["state"]] and query["client_id"] == [CLIENT["client_id"]]
    assert query["nonce"] == [code_nonce(m["codeVerifier"])] and query["response_type"] == ["code"]
    other = await method(client)
    assert other["state"] != m["state"] and other["codeVerifier"] != m["codeVerifier"]
    listed = await client.get("/api/collections/users", headers=client.su())
    assert "clientSecret" not in listed.text


async def test_sign_up_then_sign_in_again(client, issuer):
    await enable(client, issuer)
    res = await sign_in_as(client, "alice")
    assert res.status_code == 200, res.text
    body = res.json()
    record, meta = body["record"], body["meta"]
    assert record["email"] == "alice@example.com" and record["verified"] is True
    assert record["name"] == "Test alice"  # users maps the provider's name to "name"
    assert meta["isNew"] is True and meta["id"] == "alice" and meta["email"] == "alice@example.com"
    assert meta["username"] == "alice" and meta["avatarURL"] == "https://avatars.example.com/alice.png"
    assert meta["accessToken"] and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z", meta["expiry"])
    raw = meta["rawUser"]  # the validated id_token's claims, completed by the userinfo endpoint
    assert raw["sub"] == "alice" and raw["email_verified"] is True
    assert raw["iss"] == issuer and raw["aud"] == CLIENT["client_id"] and raw["nonce"]
    [link] = await links(client, record["id"])
    assert link["provider"] == "oidc" and link["providerId"] == "alice"
    assert link["collectionRef"] == "_pb_users_auth_"
    # the owner sees their links through the records API; a guest doesn't
    own = await client.get("/api/collections/_externalAuths/records", headers={"Authorization": body["token"]})
    assert [i["id"] for i in own.json()["items"]] == [link["id"]]
    assert (await client.get("/api/collections/_externalAuths/records")).json()["items"] == []
    # the token works
    refreshed = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": body["token"]})
    assert refreshed.status_code == 200 and refreshed.json()["record"]["id"] == record["id"]

    again = await sign_in_as(client, "alice", redirectURL=None, redirectUrl=REDIRECT,  # the legacy key
                             params={"fields": "record.id,meta.isNew"})
    assert again.status_code == 200, again.text
    assert again.json() == {"record": {"id": record["id"]}, "meta": {"isNew": False}}
    assert len(await links(client, record["id"])) == 1


async def test_links_an_unverified_password_account_by_verified_email(client, issuer):
    await enable(client, issuer)
    squatter = await make_user(client, "bob@example.com", "squatter-password-1")
    assert squatter["verified"] is False
    res = await sign_in_as(client, "bob")
    assert res.status_code == 200, res.text
    assert res.json()["record"]["id"] == squatter["id"] and res.json()["meta"]["isNew"] is False
    assert res.json()["record"]["verified"] is True
    # whoever registered the address first loses the password they set
    assert (await sign_in(client, "bob@example.com", "squatter-password-1")).status_code == 400
    assert [link["providerId"] for link in await links(client, squatter["id"])] == ["bob"]


async def test_links_a_verified_password_account_and_keeps_its_password(client, issuer):
    await enable(client, issuer)
    user = await make_user(client, "carol@example.com", "carol-password-1")
    res = await client.patch(f"/api/collections/users/records/{user['id']}", headers=client.su(),
                             json={"verified": True})
    assert res.status_code == 200, res.text
    res = await sign_in_as(client, "carol")
    assert res.status_code == 200 and res.json()["record"]["id"] == user["id"]
    assert (await sign_in(client, "carol@example.com", "carol-password-1")).status_code == 200


async def test_an_unverified_provider_email_never_links(client, issuer):
    await enable(client, issuer)
    user = await make_user(client, "unverified-dan@example.com", "dan-password-1")
    res = await sign_in_as(client, "unverified-dan")
    assert res.status_code == 400  # sign-up with an address that is taken
    assert res.json()["data"]["email"]["code"] == "validation_not_unique"
    assert await links(client, user["id"]) == []
    assert (await sign_in(client, "unverified-dan@example.com", "dan-password-1")).status_code == 200


async def test_signed_in_user_links_another_account(client, issuer):
    await enable(client, issuer)
    user = await make_user(client, "gina@elsewhere.test", "gina-password-1")
    token = (await sign_in(client, "gina@elsewhere.test", "gina-password-1")).json()["token"]
    res = await sign_in_as(client, "gina", headers={"Authorization": token})
    assert res.status_code == 200, res.text
    assert res.json()["record"]["id"] == user["id"] and res.json()["meta"]["isNew"] is False
    later = await sign_in_as(client, "gina")  # as a guest: found through the link
    assert later.status_code == 200 and later.json()["record"]["id"] == user["id"]


async def test_client_secret_is_write_only_and_kept(client, issuer):
    await enable(client, issuer)
    res = await client.patch("/api/collections/users", headers=client.su(), json={"oauth2": {"providers": [
        {"name": "oidc", "displayName": "Renamed", "clientId": CLIENT["client_id"], "extra": {"issuer": issuer}}]}})
    assert res.status_code == 200 and "clientSecret" not in res.text
    assert (await method(client))["displayName"] == "Renamed"
    res = await sign_in_as(client, "kim")  # still authenticates to the token endpoint
    assert res.status_code == 200, res.text


async def test_wrong_code_verifier_or_reused_code_fail(client, issuer):
    await enable(client, issuer)
    m = await method(client)
    code = await authorize(m, "henry")
    stranger = await method(client)  # a verifier from another sign-in attempt
    res = await oauth2(client, m, code, codeVerifier=stranger["codeVerifier"])
    assert res.status_code == 400 and res.json()["message"] == "Failed to fetch OAuth2 token."
    m = await method(client)
    code = await authorize(m, "henry")
    assert (await oauth2(client, m, code, codeVerifier="")).status_code == 400  # PKCE is required
    m = await method(client)
    code = await authorize(m, "henry")
    assert (await oauth2(client, m, code)).status_code == 200
    replay = await oauth2(client, m, code)
    assert replay.status_code == 400 and replay.json()["message"] == "Failed to fetch OAuth2 token."


async def test_create_rule_can_refuse_oauth2_sign_ups(client, issuer):
    await enable(client, issuer, createRule='@request.context != "oauth2"')
    res = await sign_in_as(client, "erin")
    assert res.status_code == 400 and res.json()["message"] == "Failed to create record."
    listed = await client.get("/api/collections/users/records", headers=client.su())
    assert listed.json()["items"] == []
    # the rule is about sign-ups: an ordinary create still works
    await make_user(client, "erin@example.com")


async def test_unknown_disabled_or_switched_off_providers(client, issuer):
    await enable(client, issuer)
    m = await method(client)
    for name in ("github", "nope", ""):
        res = await oauth2(client, m, "code", provider=name)
        assert res.status_code == 400
        assert res.json()["data"]["provider"]["code"] in ("validation_invalid_provider", "validation_required")
    res = await client.patch("/api/collections/users", headers=client.su(), json={"oauth2": {"providers": [
        {"name": "oidc", "clientId": CLIENT["client_id"], "enabled": False, "extra": {"issuer": issuer}}]}})
    assert res.status_code == 200
    assert (await client.get("/api/collections/users/auth-methods")).json()["oauth2"]["providers"] == []
    res = await oauth2(client, m, "code")
    assert res.json()["data"]["provider"]["code"] == "validation_invalid_provider"
    await client.patch("/api/collections/users", headers=client.su(), json={"oauth2": {"enabled": False}})
    res = await oauth2(client, m, "code")
    assert res.status_code == 403
    assert res.json()["message"] == "The collection is not configured to allow OAuth2 authentication."


async def test_superusers_never_sign_up(client, issuer):
    await enable(client, issuer, collection="_superusers")
    res = await sign_in_as(client, "frank", collection="_superusers")
    assert res.status_code == 400 and res.json()["message"] == "Failed to authenticate."
    listed = await client.get("/api/collections/_superusers/records", headers=client.su())
    assert [r["email"] for r in listed.json()["items"]] == ["root@example.com"]


async def test_redirect_url_must_be_http(client, issuer):
    await enable(client, issuer)
    m = await method(client)
    for url in ("javascript:alert(1)", "data:text/html,x", "//evil.test/x", "ftp://x.test/", "http://"):
        res = await oauth2(client, m, "code", redirectURL=url)
        assert res.status_code == 400, url
        assert res.json()["data"]["redirectURL"]["code"] == "validation_invalid_url"
    res = await oauth2(client, m, "code", redirectURL=None)
    assert res.json()["data"]["redirectURL"]["code"] == "validation_required"


async def test_redirect_endpoint(client):
    res = await client.get("/api/oauth2-redirect", params={"state": "s" * 40, "code": "abc"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    assert "abc" not in res.text
    res = await client.post("/api/oauth2-redirect", data={"state": "s", "code": "abc", "user": "{}"})
    assert res.status_code == 200
    assert (await client.get("/api/oauth2-redirect", params={"code": "abc"})).status_code == 400
    assert (await client.get("/api/oauth2-redirect", params={"state": "s"})).status_code == 400
    denied = await client.get("/api/oauth2-redirect", params={"state": "s", "error": "access_denied"})
    assert denied.status_code == 400


# --------------------------------------------------------------------------- id_token checks


async def test_id_token_validation(issuer):
    """The validator against tokens and keys of the real provider, then forgeries."""
    async with httpx.AsyncClient(timeout=10) as http:
        keys = KeySet.import_key_set((await http.get(issuer + "/jwks")).json())
        verifier = "v" * 43
        m = {"authURL": issuer + "/auth?" + "&".join(f"{k}={quote(v)}" for k, v in {
            "client_id": CLIENT["client_id"], "response_type": "code", "scope": "openid email",
            "state": "s" * 30, "nonce": code_nonce(verifier), "code_challenge_method": "S256",
            "code_challenge":
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode(),
        }.items()) + "&redirect_uri=", "state": "s" * 30}
        code = await authorize(m, "ivan")
        token = await http.post(issuer + "/token", auth=(CLIENT["client_id"], CLIENT["client_secret"]), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
        id_token = token.json()["id_token"]

    def check(value: str, **kw: Any) -> dict[str, Any]:
        args = {"issuer": issuer, "client_id": CLIENT["client_id"], "nonce": code_nonce(verifier), **kw}
        return validate_id_token(value, keys, **args)

    assert check(id_token)["sub"] == "ivan"
    for kw in ({"client_id": OTHER["client_id"]}, {"issuer": "http://127.0.0.1:1"},
               {"nonce": code_nonce("w" * 43)}, {"nonce": None}):
        with pytest.raises(ProviderError):
            check(id_token, **kw)
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "root"}).encode()).rstrip(b"=").decode()
    with pytest.raises(ProviderError):
        check(f"{header}.{tampered}.{signature}")  # a changed payload under the real signature
    forged = jwt.encode({"alg": "RS256", "kid": "test-key-1"}, {**claims, "sub": "root"}, RSAKey.generate_key(2048))
    with pytest.raises(ProviderError):
        check(forged)  # signed with a key the JWKS doesn't have, under the provider's kid
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + f".{tampered}."
    with pytest.raises(ProviderError):
        check(unsigned)

    # the time claims, with a key of our own
    own = RSAKey.generate_key(2048, parameters={"kid": "own"})
    now = int(time.time())
    mine = KeySet([own])
    good = {**claims, "iat": now, "exp": now + 60}
    assert validate_id_token(jwt.encode({"alg": "RS256", "kid": "own"}, good, own), mine, issuer=issuer,
                             client_id=CLIENT["client_id"], nonce=code_nonce(verifier))["sub"] == "ivan"
    for bad in ({"exp": now - 3600}, {"iat": now + 3600}, {"exp": None}, {"aud": [OTHER["client_id"]]},
                {"aud": [CLIENT["client_id"], OTHER["client_id"]], "azp": OTHER["client_id"]}):
        token = jwt.encode({"alg": "RS256", "kid": "own"}, {k: v for k, v in {**good, **bad}.items() if v is not None},
                           own)
        with pytest.raises(ProviderError):
            validate_id_token(token, mine, issuer=issuer, client_id=CLIENT["client_id"], nonce=code_nonce(verifier))


async def test_mfa_applies_to_oauth2(client, issuer):
    await enable(client, issuer, mfa={"enabled": True})
    first = await sign_in_as(client, "lena")  # signs up, then MFA asks for a second factor
    assert first.status_code == 401 and set(first.json()) == {"mfaId"}
    res = await client.get("/api/collections/_externalAuths/records", headers=client.su(),
                           params={"filter": "providerId = 'lena'"})
    [link] = res.json()["items"]
    password = {"password": "lena-password-1", "passwordConfirm": "lena-password-1"}
    res = await client.patch(f"/api/collections/users/records/{link['recordRef']}", headers=client.su(), json=password)
    assert res.status_code == 200, res.text
    second = await client.post("/api/collections/users/auth-with-password", params={"mfaId": first.json()["mfaId"]},
                               json={"identity": "lena@example.com", "password": "lena-password-1"})
    assert second.status_code == 200, second.text
    assert second.json()["record"]["id"] == link["recordRef"]


async def test_simultaneous_first_sign_ins_of_one_account(client, issuer):
    """Two tabs finishing the provider's sign-in at once: one signs up, the other signs in."""
    await enable(client, issuer)
    flows = [await method(client), await method(client)]
    codes = [await authorize(m, "twin") for m in flows]
    answers = await asyncio.gather(*(oauth2(client, m, code) for m, code in zip(flows, codes, strict=True)))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    records = {a.json()["record"]["id"] for a in answers}
    assert len(records) == 1
    assert sorted(a.json()["meta"]["isNew"] for a in answers) == [False, True]
    listed = await client.get("/api/collections/users/records", headers=client.su(),
                              params={"filter": "email = 'twin@example.com'"})
    assert listed.json()["totalItems"] == 1
    assert len(await links(client, records.pop())) == 1


async def test_failed_discovery_is_retried_only_after_a_pause(client, monkeypatch):
    """An issuer that fails is asked again after FAILURE_TTL, not on every auth-methods call."""
    hits: list[int] = []

    async def failing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        hits.append(1)
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(failing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(oauth2_providers, "FAILURE_TTL", 0.5)
    try:
        await enable(client, f"http://127.0.0.1:{port}")
        for _ in range(3):
            res = await client.get("/api/collections/users/auth-methods")
            assert res.status_code == 200 and res.json()["oauth2"] == {"enabled": True, "providers": []}
        assert len(hits) == 1
        await asyncio.sleep(0.6)
        await client.get("/api/collections/users/auth-methods")
        assert len(hits) == 2
    finally:
        server.close()
        await server.wait_closed()
