"""The threat model of OTP sign-in and password reset, one attack per test.

Replays, tokens used for the wrong user, purpose or collection, expired tokens, tokens
after a password change: on every backend, since each answer depends on what the database
holds. Enumeration and brute force depend on the request path only: on SQLite. Mail goes
through a real SMTP server (aiosmtpd, the ``inbox`` fixture).
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import pytest
import sqlalchemy as sa

from bastion.core.auth import tokens
from bastion.testing import Inbox, sign_in, token_in
from bastion.testing import create_user as make_user

USERS = "/api/collections/users/"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
INVALID_OTP = {"status": 400, "message": "Invalid or expired OTP.", "data": {}}
TOO_MANY_OTP = {"status": 429, "message": "Too many attempts, please try again later with a new OTP.", "data": {}}


async def enable_otp(client, **otp: Any) -> None:
    res = await client.patch("/api/collections/users", headers=client.su(), json={"otp": {"enabled": True, **otp}})
    assert res.status_code == 200, res.text


async def settings(client, **body: Any) -> None:
    res = await client.patch("/api/settings", headers=client.su(), json=body)
    assert res.status_code == 200, res.text


async def request_otp(client, box: Inbox, email: str, count: int) -> tuple[str, str]:
    """Ask for an OTP; the ``count``-th message of the inbox carries its code."""
    res = await client.post(USERS + "request-otp", json={"email": email})
    assert res.status_code == 200, res.text
    code = re.search(r"<strong>(\d+)</strong>", Inbox.body(await box.wait(count))).group(1)
    return res.json()["otpId"], code


async def otp_sign_in(client, otp_id: str, code: str, **kwargs: Any):
    return await client.post(USERS + "auth-with-otp", json={"otpId": otp_id, "password": code}, **kwargs)


async def reset_token(client, box: Inbox, email: str, count: int) -> str:
    assert (await client.post(USERS + "request-password-reset", json={"email": email})).status_code == 204
    return token_in(Inbox.body(await box.wait(count)))


async def confirm_reset(client, token: str, password: str = "new-password-1"):
    return await client.post(USERS + "confirm-password-reset",
                             json={"token": token, "password": password, "passwordConfirm": password})


def token_code(res) -> str:
    return res.json()["data"]["token"]["code"]


# -- replay, binding, expiry (every backend) -------------------------------------------

async def test_otp_works_once_and_only_for_its_user_and_collection(client, inbox):
    ann, bob = await make_user(client, "ann@example.com"), await make_user(client, "bob@example.com")
    await enable_otp(client)
    ann_otp, ann_code = await request_otp(client, inbox, "ann@example.com", 1)
    bob_otp, bob_code = await request_otp(client, inbox, "bob@example.com", 2)
    # one user's code with another's OTP id fails both ways
    assert (await otp_sign_in(client, bob_otp, ann_code)).json() == INVALID_OTP
    assert (await otp_sign_in(client, ann_otp, bob_code)).json() == INVALID_OTP
    # an OTP of users is not one of _superusers
    cross = await client.post("/api/collections/_superusers/auth-with-otp",
                              json={"otpId": ann_otp, "password": ann_code})
    assert cross.status_code in (400, 403)
    ok = await otp_sign_in(client, ann_otp, ann_code)
    assert ok.status_code == 200 and ok.json()["record"]["id"] == ann["id"]
    assert (await otp_sign_in(client, ann_otp, ann_code)).json() == INVALID_OTP  # replay
    ok = await otp_sign_in(client, bob_otp, bob_code)
    assert ok.status_code == 200 and ok.json()["record"]["id"] == bob["id"]


async def test_expired_otp(app, client, inbox):
    await make_user(client)
    await enable_otp(client, duration=60)
    otp_id, code = await request_otp(client, inbox, "u@example.com", 1)
    table = app.registry.table(app.registry.get("_otps"))
    async with app.db.transaction() as conn:
        await conn.execute(sa.update(table).where(table.c.id == otp_id).values(created="2020-01-01 00:00:00.000Z"))
    assert (await otp_sign_in(client, otp_id, code)).json() == INVALID_OTP


async def test_reset_token_replay_purpose_and_user_binding(app, client, inbox):
    ann = await make_user(client, "ann@example.com")
    await make_user(client, "bob@example.com")
    token = await reset_token(client, inbox, "ann@example.com", 1)
    # purpose binding: a reset token neither verifies an email nor changes one
    wrong_use = await client.post(USERS + "confirm-verification", json={"token": token})
    assert wrong_use.status_code == 400 and token_code(wrong_use) == "validation_invalid_token"
    as_change = await client.post(USERS + "confirm-email-change", json={"token": token, "password": "password-1"})
    assert as_change.status_code == 400 and token_code(as_change) == "validation_invalid_token"
    # an auth token or a verification token is not a reset token
    session = (await sign_in(client, "ann@example.com")).json()["token"]
    assert token_code(await confirm_reset(client, session)) == "validation_invalid_token"
    assert (await client.post(USERS + "request-verification", json={"email": "ann@example.com"})).status_code == 204
    verification = token_in(Inbox.body(await inbox.wait(2)))
    assert token_code(await confirm_reset(client, verification)) == "validation_invalid_token"
    # a reset token for Ann with Bob's id in it no longer carries a valid signature
    claims = tokens.unverified_claims(token)
    assert claims is not None and claims["id"] == ann["id"]
    bob_row = await _record(app, "bob@example.com")
    forged = tokens.sign({**claims, "id": bob_row["id"]}, "not-the-key-" * 4, 600)
    assert token_code(await confirm_reset(client, forged)) == "validation_invalid_token"
    # the other collection refuses it
    other = await client.post("/api/collections/_superusers/confirm-password-reset",
                              json={"token": token, "password": "new-password-1", "passwordConfirm": "new-password-1"})
    assert other.status_code == 400
    assert (await confirm_reset(client, token)).status_code == 204
    replay = await confirm_reset(client, token, "other-password-2")
    assert replay.status_code == 400 and token_code(replay) == "validation_invalid_token"
    assert (await sign_in(client, "ann@example.com", "new-password-1")).status_code == 200
    assert (await sign_in(client, "bob@example.com", "password-1")).status_code == 200


async def _record(app, email: str) -> dict[str, Any]:
    table = app.registry.table(app.registry.get("users"))
    async with app.db.read() as conn:
        row = await conn.fetch_one(sa.select(table).where(table.c.email == email))
    assert row is not None
    return dict(row)


async def test_expired_reset_token(app, client):
    await make_user(client)
    row = await _record(app, "u@example.com")
    col = app.registry.get("users")
    key = row["tokenKey"] + col.auth["passwordResetToken"]["secret"]
    claims = {"id": row["id"], "collectionId": col.id, "type": "passwordReset", "email": row["email"]}
    assert (await confirm_reset(client, tokens.sign(claims, key, -5))).json()["data"]["token"]["code"] == \
        "validation_invalid_token"
    assert (await confirm_reset(client, tokens.sign(claims, key, 600))).status_code == 204  # the same, unexpired


async def test_tokens_die_with_a_password_change(client, inbox):
    user = await make_user(client)
    reset = await reset_token(client, inbox, "u@example.com", 1)
    assert (await client.post(USERS + "request-verification", json={"email": "u@example.com"})).status_code == 204
    verification = token_in(Inbox.body(await inbox.wait(2)))
    session = (await sign_in(client)).json()["token"]
    changed = await client.patch(f"{USERS}records/{user['id']}", headers={"Authorization": session},
                                 json={"oldPassword": "password-1", "password": "changed-pass-1",
                                       "passwordConfirm": "changed-pass-1"})
    assert changed.status_code == 200, changed.text
    assert token_code(await confirm_reset(client, reset)) == "validation_invalid_token"
    stale = await client.post(USERS + "confirm-verification", json={"token": verification})
    assert token_code(stale) == "validation_invalid_token"
    assert (await client.post(USERS + "auth-refresh", headers={"Authorization": session})).status_code == 401


# -- enumeration (SQLite) -------------------------------------------------------------------

def similar(a: float, b: float) -> bool:
    """Within 35 % (+5 ms) of each other: a skipped argon2 hash or SMTP send would show."""
    return abs(a - b) <= 0.005 + 0.35 * max(a, b)


def alike(known: list[float], unknown: list[float]) -> bool:
    """Whether the CPU times of both kinds of request tell nothing apart, by their medians.

    The process' CPU time (argon2 hashes in its threads, the SMTP exchange with the
    inbox in another) is what a skipped hash or send would save; unlike wall-clock time,
    other work on the machine does not stretch it."""
    return similar(statistics.median(known), statistics.median(unknown))


@SQLITE_ONLY
async def test_same_answers_and_timing_for_unknown_emails(client, inbox):
    await settings(client, identityRateLimits={"enabled": False})
    rounds = 7
    for i in range(rounds):
        await make_user(client, f"known{i}@example.com")
    await enable_otp(client)

    async def both(path: str, body_of) -> tuple[list[Any], list[float], list[float]]:
        answers: list[Any] = []
        known_t: list[float] = []
        unknown_t: list[float] = []
        for i in range(rounds):  # interleaved, so machine noise hits both alike
            for who, timings in (("known", known_t), ("ghost", unknown_t)):
                cpu = time.process_time()
                res = await client.post(USERS + path, json=body_of(f"{who}{i}@example.com"))
                timings.append(time.process_time() - cpu)
                body = res.json() if res.content else None
                answers.append((who, res.status_code, _shape(body)))
        return answers, known_t, unknown_t

    for path, body_of in (
        ("request-otp", lambda email: {"email": email}),
        ("request-password-reset", lambda email: {"email": email}),
        ("auth-with-password", lambda email: {"identity": email, "password": "wrong-password-9"}),
    ):
        answers, known_t, unknown_t = await both(path, body_of)
        assert {a[1:] for a in answers if a[0] == "known"} == {a[1:] for a in answers if a[0] == "ghost"}, path
        assert len({a[1:] for a in answers}) == 1, (path, answers)
        assert alike(known_t, unknown_t), (path, known_t, unknown_t)


def _shape(body: Any) -> Any:
    """An answer with its random parts (ids) replaced by their length."""
    if isinstance(body, dict):
        return tuple(sorted((k, len(v) if k == "otpId" else _shape(v)) for k, v in body.items()))
    return body


@SQLITE_ONLY
async def test_limits_answer_alike_for_unknown_identities(client, inbox):
    await make_user(client)
    await enable_otp(client)
    for path, key in (("request-otp", "email"), ("request-password-reset", "email")):
        known = [(await client.post(USERS + path, json={key: "u@example.com"})).status_code for _ in range(6)]
        ghost = [(await client.post(USERS + path, json={key: "ghost@example.com"})).status_code for _ in range(6)]
        assert known == ghost and known[-1] == 429 and known.count(429) == 1, (path, known, ghost)
    # guesses at a real OTP and at the made-up id of an unknown email meet the same wall
    await settings(client, identityRateLimits={"rules": [
        {"label": "*:requestOTP", "duration": 60, "maxRequests": 99},
        {"label": "*:authWithOTP", "duration": 180, "maxRequests": 5}]})
    real = (await client.post(USERS + "request-otp", json={"email": "u@example.com"})).json()["otpId"]
    fake = (await client.post(USERS + "request-otp", json={"email": "nobody@example.com"})).json()["otpId"]
    for otp_id in (real, fake):
        answers = [(await otp_sign_in(client, otp_id, "00000000")).json() for _ in range(6)]
        assert answers == [INVALID_OTP] * 5 + [TOO_MANY_OTP], otp_id


# -- brute force from many addresses (SQLite) ------------------------------------------------

def from_ip(addr: str) -> dict[str, str]:
    return {"X-Forwarded-For": addr}


@SQLITE_ONLY
async def test_forwarded_for_is_ignored_unless_trusted(client):
    await make_user(client)
    rule = {"label": "*:authWithPassword", "audience": "", "duration": 60, "maxRequests": 3}
    await settings(client, rateLimits={"enabled": True, "excludedIPs": [], "rules": [rule]})
    # untrusted: every "address" is the connection's own, so the per-IP rule sees one caller
    statuses = [(await client.post(USERS + "auth-with-password", headers=from_ip(f"198.51.100.{i}"),
                                   json={"identity": f"x{i}@example.com", "password": "p"})).status_code
                for i in range(4)]
    assert statuses == [400, 400, 400, 429]


@SQLITE_ONLY
async def test_password_brute_force_from_many_addresses(client):
    await make_user(client)
    await settings(client, rateLimits={"enabled": True, "excludedIPs": [], "rules": [
        {"label": "*:auth", "audience": "", "duration": 60, "maxRequests": 3}]},
        trustedProxy={"headers": ["X-Forwarded-For"], "useLeftmostIP": False})
    statuses = []
    for i in range(12):  # one try per address: the per-IP rule never trips
        res = await client.post(USERS + "auth-with-password", headers=from_ip(f"203.0.113.{i}"),
                                json={"identity": "U@example.com ", "password": f"guess-{i}"})
        statuses.append(res.status_code)
    assert statuses[:5] == [400] * 5 and set(statuses[5:]) == {429}
    right = await client.post(USERS + "auth-with-password", headers=from_ip("203.0.113.200"),
                              json={"identity": "u@example.com", "password": "password-1"})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1


@SQLITE_ONLY
async def test_otp_brute_force_from_many_addresses_locks_the_identity(client, inbox):
    await make_user(client)
    await enable_otp(client)
    await settings(client, trustedProxy={"headers": ["X-Forwarded-For"], "useLeftmostIP": False},
                   identityRateLimits={"rules": [{"label": "*:requestOTP", "duration": 60, "maxRequests": 99},
                                                 {"label": "*:authWithOTP", "duration": 180, "maxRequests": 99}]})
    # with the per-window limit raised, failures across OTPs still lock the identity
    answers: list[int] = []
    for n in range(3):
        otp_id, _ = await request_otp(client, inbox, "u@example.com", n + 1)
        for i in range(4):
            res = await otp_sign_in(client, otp_id, "00000000", headers=from_ip(f"192.0.2.{n * 10 + i}"))
            answers.append(res.status_code)
    assert answers[:10] == [400] * 10 and set(answers[10:]) == {429}
    otp_id, code = await request_otp(client, inbox, "u@example.com", 4)
    locked = await otp_sign_in(client, otp_id, code, headers=from_ip("192.0.2.250"))
    assert locked.json() == TOO_MANY_OTP and int(locked.headers["retry-after"]) > 200


@SQLITE_ONLY
async def test_five_wrong_codes_burn_the_otp(client, inbox):
    await make_user(client)
    await enable_otp(client)
    await settings(client, identityRateLimits={"enabled": False})
    otp_id, code = await request_otp(client, inbox, "u@example.com", 1)
    for _ in range(5):
        assert (await otp_sign_in(client, otp_id, "00000000")).json() == INVALID_OTP
    assert (await otp_sign_in(client, otp_id, code)).json() == INVALID_OTP


async def test_otp_sign_in_ends_a_pre_hijacked_account(client, inbox):
    """Someone registered the owner's email first; the owner's first OTP sign-in proves the
    address, so the squatter's password and sessions die (unless MFA still needs one)."""
    await make_user(client, "owner@example.com", "squatter-pass-1")
    squatter = (await sign_in(client, "owner@example.com", "squatter-pass-1")).json()["token"]
    await enable_otp(client)
    otp_id, code = await request_otp(client, inbox, "owner@example.com", 1)
    res = await otp_sign_in(client, otp_id, code)
    assert res.status_code == 200 and res.json()["record"]["verified"] is True
    assert (await sign_in(client, "owner@example.com", "squatter-pass-1")).status_code == 400
    assert (await client.post(USERS + "auth-refresh", headers={"Authorization": squatter})).status_code == 401
    assert (await client.post(USERS + "auth-refresh",
                              headers={"Authorization": res.json()["token"]})).status_code == 200
