"""MFA as PocketBase does it (401 with an mfaId, then a different factor), and TOTP."""

from __future__ import annotations

import re
import time

import pyotp
import sqlalchemy as sa

from bastion.testing import Inbox, sign_in
from bastion.testing import create_user as make_user


async def test_mfa_needs_two_methods(client):
    res = await client.patch("/api/collections/users", headers=client.su(), json={"mfa": {"enabled": True}})
    assert res.status_code == 400
    assert res.json()["data"]["mfa"]["enabled"]["code"] == "validation_mfa_not_enough_auths"


async def test_password_then_otp(client, inbox):
    await make_user(client)
    res = await client.patch("/api/collections/users", headers=client.su(),
                             json={"otp": {"enabled": True}, "mfa": {"enabled": True}})
    assert res.status_code == 200, res.text
    first = await sign_in(client)
    assert first.status_code == 401 and set(first.json()) == {"mfaId"}
    mfa_id = first.json()["mfaId"]
    again = await client.post(f"/api/collections/users/auth-with-password?mfaId={mfa_id}",
                              json={"identity": "u@example.com", "password": "password-1"})
    assert again.status_code == 400 and again.json()["message"] == "A different authentication method is required."
    otp_id = (await client.post("/api/collections/users/request-otp", json={"email": "u@example.com"})).json()["otpId"]
    code = re.search(r"<strong>(\d+)</strong>", Inbox.body(await inbox.wait(1))).group(1)
    done = await client.post("/api/collections/users/auth-with-otp",
                             json={"otpId": otp_id, "password": code, "mfaId": mfa_id})
    assert done.status_code == 200 and done.json()["token"]
    reused = await client.post(f"/api/collections/users/auth-with-otp?mfaId={mfa_id}",
                               json={"otpId": otp_id, "password": code})
    assert reused.status_code == 400
    assert (await client.post("/api/collections/users/auth-with-password?mfaId=nosuchmfa000000",
                              json={"identity": "u@example.com", "password": "password-1"})).status_code == 400


async def test_totp_enroll_sign_in_recover_disable(client):
    user = await make_user(client)
    headers = {"Authorization": (await sign_in(client)).json()["token"]}
    assert (await client.post("/api/collections/users/totp/enroll")).status_code == 401
    enrolled = (await client.post("/api/collections/users/totp/enroll", headers=headers)).json()
    assert enrolled["otpauthURL"].startswith("otpauth://totp/") and enrolled["secret"] in enrolled["otpauthURL"]
    totp = pyotp.TOTP(enrolled["secret"])
    bad = await client.post("/api/collections/users/totp/confirm", headers=headers, json={"code": "000000"})
    assert bad.status_code == 400
    codes = (await client.post("/api/collections/users/totp/confirm", headers=headers,
                               json={"code": totp.now()})).json()["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    # with an authenticator, the password alone no longer signs in
    first = await sign_in(client)
    assert first.status_code == 401
    mfa_id = first.json()["mfaId"]
    wrong = await client.post("/api/collections/users/auth-with-totp", json={"mfaId": mfa_id, "code": "123456"})
    assert wrong.status_code == 400
    step = int(time.time()) // 30 + 1  # a fresh code not yet used (confirm used the current one)
    ok = await client.post("/api/collections/users/auth-with-totp",
                           json={"mfaId": mfa_id, "code": totp.at(step * 30)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["record"]["id"] == user["id"]
    # a recovery code works once
    mfa_id = (await sign_in(client)).json()["mfaId"]
    assert (await client.post("/api/collections/users/auth-with-totp",
                              json={"mfaId": mfa_id, "code": codes[0]})).status_code == 200
    mfa_id = (await sign_in(client)).json()["mfaId"]
    assert (await client.post("/api/collections/users/auth-with-totp",
                              json={"mfaId": mfa_id, "code": codes[0]})).status_code == 400
    assert (await client.post("/api/collections/users/totp/disable", headers=headers,
                              json={"code": codes[1]})).status_code == 204
    assert (await sign_in(client)).status_code == 200
    hidden = await client.get("/api/collections/_authenticators/records", headers=headers)
    assert hidden.status_code == 403


def count_lookups(app, table: str) -> list[str]:
    """Statements that read ``table`` on their own (not as a subquery of another read)."""
    seen: list[str] = []
    own = re.compile(rf"^\s*SELECT\s+[`\"]?{table}[`\"]?\.")

    def note(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - SQLAlchemy's hook
        if own.match(statement):
            seen.append(statement)

    for engine in _engines(app.db):
        sa.event.listen(engine, "before_cursor_execute", note)
    return seen


def _engines(db) -> set[sa.Engine]:
    """The SQLAlchemy engines behind a Database adapter, whatever it names them."""
    found = set()
    for value in vars(db).values():
        engine = getattr(value, "sync_engine", None) or getattr(value, "engine", None) or value
        if isinstance(engine, sa.Engine):
            found.add(engine)
    assert found, f"no engine found on {type(db).__name__}"
    return found


async def test_sign_in_skips_the_authenticator_lookup_but_not_its_check(app, client, inbox):
    await make_user(client)
    lookups = count_lookups(app, "_authenticators")
    assert (await sign_in(client)).status_code == 200
    assert lookups == []  # read with the record: MFA off, no authenticator
    headers = {"Authorization": (await sign_in(client)).json()["token"]}
    secret = (await client.post("/api/collections/users/totp/enroll", headers=headers)).json()["secret"]
    assert (await client.post("/api/collections/users/totp/confirm", headers=headers,
                              json={"code": pyotp.TOTP(secret).now()})).status_code == 200
    lookups.clear()
    assert (await sign_in(client)).status_code == 401  # MFA off, but this user enrolled
    assert lookups == []
    # a first factor that did not read the flag (OTP) still looks the authenticator up
    await client.patch("/api/collections/users", headers=client.su(), json={"otp": {"enabled": True}})
    otp_id = (await client.post("/api/collections/users/request-otp", json={"email": "u@example.com"})).json()["otpId"]
    code = re.search(r"<strong>(\d+)</strong>", Inbox.body(await inbox.wait(1))).group(1)
    res = await client.post("/api/collections/users/auth-with-otp", json={"otpId": otp_id, "password": code})
    assert res.status_code == 401 and set(res.json()) == {"mfaId"}
    assert len(lookups) == 1


async def test_totp_guessing_is_limited_per_record(client):
    await make_user(client)
    headers = {"Authorization": (await sign_in(client)).json()["token"]}
    secret = (await client.post("/api/collections/users/totp/enroll", headers=headers)).json()["secret"]
    totp = pyotp.TOTP(secret)
    assert (await client.post("/api/collections/users/totp/confirm", headers=headers,
                              json={"code": totp.now()})).status_code == 200
    answers = []
    for n in range(6):  # a fresh mfaId each time: the count is the record's
        mfa_id = (await sign_in(client)).json()["mfaId"]
        res = await client.post("/api/collections/users/auth-with-totp", json={"mfaId": mfa_id, "code": f"00000{n}"})
        answers.append(res.status_code)
    assert answers == [400] * 5 + [429]
    mfa_id = (await sign_in(client)).json()["mfaId"]
    step = int(time.time()) // 30 + 1
    right = await client.post("/api/collections/users/auth-with-totp",
                              json={"mfaId": mfa_id, "code": totp.at(step * 30)})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1


async def test_totp_secrets_are_stored_encrypted_when_a_key_is_set(client, app):
    from bastion.core.auth.secretbox import PREFIX, SecretBox

    await make_user(client)
    headers = {"Authorization": (await sign_in(client)).json()["token"]}
    app.mfa.box = SecretBox("an encryption key of 32 chars ok")
    secret = (await client.post("/api/collections/users/totp/enroll", headers=headers)).json()["secret"]
    table = app.registry.table(app.registry.get("_authenticators"))
    async with app.db.read() as conn:
        stored = (await conn.fetch_one(sa.select(table.c.secret)))["secret"]
    assert stored.startswith(PREFIX) and secret not in stored
    # superusers see the sealed value through the records API, not the secret
    listed = await client.get("/api/collections/_authenticators/records", headers=client.su())
    assert secret not in listed.text
    confirmed = await client.post("/api/collections/users/totp/confirm", headers=headers,
                                  json={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.text
    # started without the key, the server cannot use the secret: a 500, logged, no sign-in
    app.mfa.box = SecretBox()
    wrong = await client.post("/api/collections/users/totp/disable", headers=headers,
                              json={"code": pyotp.TOTP(secret).now()})
    assert wrong.status_code == 500
