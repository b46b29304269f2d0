"""Password sign-in, refresh and token checks: tokens that must not work, don't."""

from __future__ import annotations

import base64
import json
import time

import jwt

from bastion.testing import create_user as make_user
from bastion.testing import sign_in


async def test_sign_in_and_refresh(client):
    user = await make_user(client)
    assert "password" not in user and "tokenKey" not in user
    res = await sign_in(client)
    assert res.status_code == 200
    body = res.json()
    assert body["record"]["id"] == user["id"] and body["record"]["email"] == "u@example.com"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["type"] == "auth" and claims["collectionId"] == "_pb_users_auth_" and claims["refreshable"]
    refreshed = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": body["token"]})
    assert refreshed.status_code == 200 and refreshed.json()["record"]["id"] == user["id"]
    wrong = await client.post("/api/collections/_superusers/auth-refresh", headers={"Authorization": body["token"]})
    assert wrong.status_code == 403
    none = await client.post("/api/collections/users/auth-refresh")
    assert none.status_code == 401
    assert none.json()["message"] == "The request requires valid record authorization token."


async def test_bad_credentials_reveal_nothing(client):
    await make_user(client)
    wrong_password = await sign_in(client, password="nope-nope-1")
    unknown_user = await sign_in(client, email="ghost@example.com")
    assert wrong_password.status_code == unknown_user.status_code == 400
    assert wrong_password.json() == unknown_user.json() == {
        "status": 400, "message": "Failed to authenticate.", "data": {}}
    missing = await client.post("/api/collections/users/auth-with-password", json={})
    assert missing.status_code == 400 and set(missing.json()["data"]) == {"identity", "password"}
    not_auth = await client.post("/api/collections/_collections_nope/auth-with-password", json={})
    assert not_auth.status_code == 404


async def test_email_is_case_insensitive_for_sign_in(client):
    await make_user(client, email="Mixed@Example.com")
    assert (await sign_in(client, email="mixed@example.com")).status_code == 200


def forge(claims: dict, key: str = "k" * 40, alg: str = "HS256") -> str:
    if alg == "none":
        head = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        return f"{head.decode()}.{body.decode()}."
    return jwt.encode(claims, key, algorithm=alg)


async def test_tokens_that_must_not_work(client, app):
    user = await make_user(client)
    good = (await sign_in(client)).json()["token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    su_claims = {**claims, "collectionId": "pbc_3142635823"}
    bad_tokens = [
        forge({**claims}, alg="none"),
        forge({**claims}, key="guessed-secret-" * 3),
        forge({**claims, "exp": int(time.time()) - 10}),
        forge(su_claims),  # claims to be a superuser
        good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb"),
        "garbage", "a.b.c", "x" * 10000,
    ]
    for token in bad_tokens:
        res = await client.get("/api/collections", headers={"Authorization": token})
        assert res.status_code == 401, token[:40]
        own = await client.get(f"/api/collections/users/records/{user['id']}", headers={"Authorization": token})
        assert own.status_code == 404, token[:40]  # treated as a guest: the owner rule fails
    refresh = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": good})
    assert refresh.status_code == 200


async def test_password_change_revokes_tokens(client):
    user = await make_user(client)
    old = (await sign_in(client)).json()["token"]
    res = await client.patch(f"/api/collections/users/records/{user['id']}", headers=client.su(),
                             json={"password": "password-2", "passwordConfirm": "password-2"})
    assert res.status_code == 200, res.text
    assert (await client.post("/api/collections/users/auth-refresh", headers={"Authorization": old})).status_code == 401
    assert (await sign_in(client, password="password-2")).status_code == 200


async def test_deleted_user_token_is_dead(client):
    user = await make_user(client)
    token = (await sign_in(client)).json()["token"]
    assert (await client.delete(f"/api/collections/users/records/{user['id']}", headers=client.su())).status_code == 204
    res = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": token})
    assert res.status_code == 401


async def test_mass_assignment_is_refused(client):
    res = await client.post("/api/collections/users/records", json={
        "email": "m@example.com", "password": "password-1", "passwordConfirm": "password-1",
        "verified": True, "tokenKey": "attacker-chosen-token-key-0123456789"})
    assert res.status_code == 400
    assert res.json()["data"]["verified"]["code"] == "validation_values_mismatch"
    ok = await client.post("/api/collections/users/records", json={
        "email": "m@example.com", "password": "password-1", "passwordConfirm": "password-1",
        "tokenKey": "attacker-chosen-token-key-0123456789"})
    assert ok.status_code == 200
    mismatch = await client.post("/api/collections/users/records", json={
        "email": "n@example.com", "password": "password-1", "passwordConfirm": "password-2"})
    assert mismatch.json()["data"]["passwordConfirm"]["code"] == "validation_values_mismatch"


async def test_superuser_collection_is_closed_to_others(client):
    res = await client.post("/api/collections/_superusers/records", json={
        "email": "evil@example.com", "password": "password-1", "passwordConfirm": "password-1"})
    assert res.status_code == 403
    assert (await client.get("/api/collections/_superusers/records")).status_code == 403


async def test_auth_methods(client):
    res = await client.get("/api/collections/users/auth-methods")
    assert res.status_code == 200
    body = res.json()
    assert body["password"] == {"enabled": True, "identityFields": ["email"]}
    assert body["mfa"]["enabled"] is False and body["otp"]["enabled"] is False
    assert (await client.get("/api/collections/nope/auth-methods")).status_code == 404


async def test_manage_rule(client):
    staff = await make_user(client, email="staff@example.com")
    user = await make_user(client, email="plain@example.com")
    await client.post("/api/collections", headers=client.su(), json={
        "name": "staff", "fields": [{"name": "user", "type": "relation", "collectionId": "users"}]})
    await client.post("/api/collections/staff/records", headers=client.su(), json={"user": staff["id"]})
    await client.patch("/api/collections/users", headers=client.su(), json={
        "updateRule": "id = @request.auth.id || @collection.staff.user ?= @request.auth.id",
        "manageRule": "@collection.staff.user ?= @request.auth.id"})
    staff_h = {"Authorization": (await sign_in(client, email="staff@example.com")).json()["token"]}
    user_h = {"Authorization": (await sign_in(client, email="plain@example.com")).json()["token"]}
    managed = await client.patch(f"/api/collections/users/records/{user['id']}", headers=staff_h, json={
        "verified": True, "password": "reset-by-staff", "passwordConfirm": "reset-by-staff"})
    assert managed.status_code == 200, managed.text
    assert managed.json()["verified"] is True
    assert (await sign_in(client, email="plain@example.com", password="reset-by-staff")).status_code == 200
    # the managed user cannot manage staff: changing a password still needs oldPassword
    own = await client.patch(f"/api/collections/users/records/{user['id']}", headers=user_h, json={
        "password": "new-pass-123", "passwordConfirm": "new-pass-123"})
    assert own.status_code in (400, 404)
