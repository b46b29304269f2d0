"""Email flows against a real SMTP server on 127.0.0.1 (aiosmtpd): the messages it
receives carry the tokens and codes the flows then consume."""

from __future__ import annotations

import asyncio
import re

from bastion.testing import Inbox, sign_in, token_in
from bastion.testing import create_user as make_user


async def test_verification(client, inbox):
    user = await make_user(client)
    assert (await client.post("/api/collections/users/request-verification",
                              json={"email": "ghost@example.com"})).status_code == 204
    assert (await client.post("/api/collections/users/request-verification",
                              json={"email": "U@example.com"})).status_code == 204
    message = await inbox.wait(1)
    assert message["To"] == "u@example.com" and "Acme" in message["Subject"]
    assert len(inbox.messages) == 1  # nothing was sent for the unknown address
    token = token_in(Inbox.body(message))
    assert (await client.post("/api/collections/users/confirm-verification",
                              json={"token": "x.y.z"})).status_code == 400
    assert (await client.post("/api/collections/_superusers/confirm-verification",
                              json={"token": token})).status_code == 400  # bound to its collection
    assert (await client.post("/api/collections/users/confirm-verification", json={"token": token})).status_code == 204
    got = await client.get(f"/api/collections/users/records/{user['id']}", headers=client.su())
    assert got.json()["verified"] is True
    su = await client.post("/api/collections/_superusers/request-verification", json={"email": "root@example.com"})
    assert su.status_code == 400


async def test_password_reset_is_single_use_and_revokes_sessions(client, inbox):
    await make_user(client)
    old_session = (await sign_in(client)).json()["token"]
    assert (await client.post("/api/collections/users/request-password-reset",
                              json={"email": "u@example.com"})).status_code == 204
    token = token_in(Inbox.body(await inbox.wait(1)))
    mismatch = await client.post("/api/collections/users/confirm-password-reset",
                                 json={"token": token, "password": "new-password-1", "passwordConfirm": "nope"})
    assert mismatch.status_code == 400
    ok = await client.post("/api/collections/users/confirm-password-reset",
                           json={"token": token, "password": "new-password-1", "passwordConfirm": "new-password-1"})
    assert ok.status_code == 204
    replay = await client.post("/api/collections/users/confirm-password-reset",
                               json={"token": token, "password": "other-pass-2", "passwordConfirm": "other-pass-2"})
    assert replay.status_code == 400 and replay.json()["data"]["token"]["code"] == "validation_invalid_token"
    assert (await sign_in(client, password="new-password-1")).status_code == 200
    assert (await client.post("/api/collections/users/auth-refresh",
                              headers={"Authorization": old_session})).status_code == 401
    # a second request within the cooldown sends nothing more
    await client.post("/api/collections/users/request-password-reset", json={"email": "u@example.com"})
    await asyncio.sleep(0.2)
    assert len(inbox.messages) == 1


async def test_email_change(client, inbox):
    user = await make_user(client)
    other = await make_user(client, email="taken@example.com")
    headers = {"Authorization": (await sign_in(client)).json()["token"]}
    assert (await client.post("/api/collections/users/request-email-change",
                              json={"newEmail": "new@example.com"})).status_code == 401
    taken = await client.post("/api/collections/users/request-email-change", headers=headers,
                              json={"newEmail": "taken@example.com"})
    assert taken.json()["data"]["newEmail"]["code"] == "validation_invalid_new_email"
    assert (await client.post("/api/collections/users/request-email-change", headers=headers,
                              json={"newEmail": "new@example.com"})).status_code == 204
    message = await inbox.wait(1)
    assert message["To"] == "new@example.com"
    token = token_in(Inbox.body(message))
    wrong = await client.post("/api/collections/users/confirm-email-change", json={"token": token, "password": "nope"})
    assert wrong.json()["data"]["password"]["code"] == "validation_invalid_password"
    ok = await client.post("/api/collections/users/confirm-email-change",
                           json={"token": token, "password": "password-1"})
    assert ok.status_code == 204
    got = (await client.get(f"/api/collections/users/records/{user['id']}", headers=client.su())).json()
    assert got["email"] == "new@example.com" and got["verified"] is True
    assert (await client.post("/api/collections/users/confirm-email-change",
                              json={"token": token, "password": "password-1"})).status_code == 400
    # another user cannot change someone else's email through a record update
    theirs = await client.patch(f"/api/collections/users/records/{other['id']}", headers=headers,
                                json={"email": "stolen@example.com"})
    assert theirs.status_code == 404


async def test_one_time_passwords(client, inbox):
    await make_user(client)
    off = await client.post("/api/collections/users/request-otp", json={"email": "u@example.com"})
    assert off.status_code == 403
    await client.patch("/api/collections/users", headers=client.su(), json={"otp": {"enabled": True, "length": 6}})
    methods = (await client.get("/api/collections/users/auth-methods")).json()
    assert methods["otp"] == {"enabled": True, "duration": 180}
    res = await client.post("/api/collections/users/request-otp", json={"email": "u@example.com"})
    otp_id = res.json()["otpId"]
    code = re.search(r"<strong>(\d{6})</strong>", Inbox.body(await inbox.wait(1))).group(1)
    wrong = await client.post("/api/collections/users/auth-with-otp", json={"otpId": otp_id, "password": "000000"})
    assert wrong.status_code == 400 and wrong.json()["message"] == "Invalid or expired OTP."
    ok = await client.post("/api/collections/users/auth-with-otp", json={"otpId": otp_id, "password": code})
    assert ok.status_code == 200 and ok.json()["record"]["verified"] is True
    replay = await client.post("/api/collections/users/auth-with-otp", json={"otpId": otp_id, "password": code})
    assert replay.status_code == 400
    ghost = await client.post("/api/collections/users/request-otp", json={"email": "ghost@example.com"})
    assert ghost.status_code == 200 and len(ghost.json()["otpId"]) == 15  # looks the same
    # guessing: as in PocketBase, the sixth try for an email within three minutes is refused
    # with 429 before the code is checked (test_auth_threats.py has the rest)
    otp_id = (await client.post("/api/collections/users/request-otp", json={"email": "u@example.com"})).json()["otpId"]
    code = re.search(r"<strong>(\d{6})</strong>", Inbox.body(await inbox.wait(2))).group(1)
    for _ in range(5):
        await client.post("/api/collections/users/auth-with-otp", json={"otpId": otp_id, "password": "999999"})
    burned = await client.post("/api/collections/users/auth-with-otp", json={"otpId": otp_id, "password": code})
    assert burned.status_code == 429 and 1 <= int(burned.headers["retry-after"]) <= 180
    assert burned.json() == {"status": 429, "message": "Too many attempts, please try again later with a new OTP.",
                             "data": {}}



async def test_impersonate(client):
    user = await make_user(client)
    user_token = (await sign_in(client)).json()["token"]
    denied = await client.post(f"/api/collections/users/impersonate/{user['id']}",
                               headers={"Authorization": user_token})
    assert denied.status_code == 403
    res = await client.post(f"/api/collections/users/impersonate/{user['id']}", headers=client.su(),
                            json={"duration": 60})
    assert res.status_code == 200
    token = res.json()["token"]
    refreshed = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": token})
    assert refreshed.status_code == 200 and refreshed.json()["token"] == token  # not refreshable
    assert (await client.post("/api/collections/users/impersonate/nobody000000000",
                              headers=client.su())).status_code == 404


async def test_settings_test_email(client, inbox):
    res = await client.post("/api/settings/test/email", headers=client.su(),
                            json={"email": "check@example.com", "template": "password-reset", "collection": "users"})
    assert res.status_code == 204, res.text
    message = await inbox.wait(1)
    assert message["To"] == "check@example.com" and "SAMPLE_TOKEN" in Inbox.body(message)
    bad = await client.post("/api/settings/test/email", headers=client.su(),
                            json={"email": "x@example.com", "template": "nope"})
    assert bad.status_code == 400
    assert (await client.post("/api/settings/test/email", json={"email": "x@example.com"})).status_code == 401
