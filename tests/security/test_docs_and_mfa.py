"""Two holes an outside attack found, kept closed on every engine.

- ``totp/disable`` checked codes without limit: 300 wrong codes, then the right one,
  answered 204. Every TOTP code check (sign-in, confirm, disable) now meets one
  per-record window and lockout.
- ``/api/openapi.json`` described everything to everyone: superuser-only collections,
  ``_apiKeys``, hidden field names and select values. It now describes to each caller only
  what that caller may reach.
"""

from __future__ import annotations

import asyncio
import time

import pyotp
from openapi_spec_validator import validate

from bastion.testing import create_user as make_user
from bastion.testing import sign_in, token_for

USERS = "/api/collections/users/"
SYSTEM = ("_superusers", "_apiKeys", "_otps", "_authenticators", "_mfas", "_externalAuths", "_authOrigins")


# -- TOTP ---------------------------------------------------------------------------

async def enrolled(client) -> tuple[dict[str, str], pyotp.TOTP, list[str]]:
    """A signed-in user with a confirmed authenticator: headers, the TOTP, recovery codes."""
    await make_user(client)
    headers = {"Authorization": (await sign_in(client)).json()["token"]}
    secret = (await client.post(USERS + "totp/enroll", headers=headers)).json()["secret"]
    totp = pyotp.TOTP(secret)
    res = await client.post(USERS + "totp/confirm", headers=headers, json={"code": totp.now()})
    assert res.status_code == 200, res.text
    return headers, totp, res.json()["recoveryCodes"]


def wrong_code(totp: pyotp.TOTP, n: int) -> str:
    """A six-digit code that no step near now accepts."""
    now = int(time.time()) // 30
    valid = {totp.at(step * 30) for step in range(now - 2, now + 3)}
    return next(c for c in (f"{(n * 7919 + i) % 1_000_000:06d}" for i in range(10)) if c not in valid)


async def still_enrolled(client) -> bool:
    """Whether the password alone still stops at the second factor."""
    return (await sign_in(client)).status_code == 401


async def identity_limits(client, enabled: bool) -> None:
    res = await client.patch("/api/settings", headers=client.su(), json={"identityRateLimits": {"enabled": enabled}})
    assert res.status_code == 200, res.text


async def test_totp_disable_stops_guessing_then_refuses_the_right_code(client):
    headers, _, recovery = await enrolled(client)
    answers = [(await client.post(USERS + "totp/disable", headers=headers, json={"code": wrong_code(_, n)})).status_code
               for n in range(12)]
    assert answers[:5] == [400] * 5 and set(answers[5:]) == {429}, answers
    right = await client.post(USERS + "totp/disable", headers=headers, json={"code": recovery[0]})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
    assert await still_enrolled(client)


async def test_totp_disable_locks_out_like_sign_in(client):
    # Without the per-identity windows, the lockout alone stops a guesser: 10 wrong codes.
    await identity_limits(client, False)
    headers, totp, recovery = await enrolled(client)
    answers = [(await client.post(USERS + "totp/disable", headers=headers,
                                  json={"code": wrong_code(totp, n)})).status_code for n in range(11)]
    assert answers == [400] * 10 + [429], answers
    right = await client.post(USERS + "totp/disable", headers=headers, json={"code": recovery[0]})
    assert right.status_code == 429
    assert await still_enrolled(client)
    # the lock is the record's: its sign-in meets it too
    mfa_id = (await sign_in(client)).json()["mfaId"]
    assert (await client.post(USERS + "auth-with-totp", json={"mfaId": mfa_id, "code": recovery[1]})).status_code == 429


async def test_parallel_guesses_at_disable_meet_the_same_window(client):
    headers, totp, _ = await enrolled(client)
    guesses = [client.post(USERS + "totp/disable", headers=headers, json={"code": wrong_code(totp, n)})
               for n in range(30)]
    answers = sorted(res.status_code for res in await asyncio.gather(*guesses))
    assert answers == [400] * 5 + [429] * 25, answers


async def test_every_totp_code_check_shares_one_count(client):
    await identity_limits(client, False)
    headers, totp, recovery = await enrolled(client)
    for n in range(4):  # guesses at disable ...
        res = await client.post(USERS + "totp/disable", headers=headers, json={"code": wrong_code(totp, n)})
        assert res.status_code == 400
    for n in range(4, 10):  # ... and at sign-in count together
        mfa_id = (await sign_in(client)).json()["mfaId"]
        res = await client.post(USERS + "auth-with-totp", json={"mfaId": mfa_id, "code": wrong_code(totp, n)})
        assert res.status_code == 400, (n, res.text)
    res = await client.post(USERS + "totp/disable", headers=headers, json={"code": recovery[0]})
    assert res.status_code == 429
    assert await still_enrolled(client)


async def test_totp_confirm_is_limited_too(client):
    await make_user(client)
    headers = {"Authorization": (await sign_in(client)).json()["token"]}
    totp = pyotp.TOTP((await client.post(USERS + "totp/enroll", headers=headers)).json()["secret"])
    answers = [(await client.post(USERS + "totp/confirm", headers=headers,
                                  json={"code": wrong_code(totp, n)})).status_code for n in range(6)]
    assert answers == [400] * 5 + [429], answers
    assert (await client.post(USERS + "totp/confirm", headers=headers, json={"code": totp.now()})).status_code == 429


async def test_a_right_code_costs_its_owner_nothing(client):
    # Right codes reset the count: an owner who signs in a few times is never locked.
    headers, totp, recovery = await enrolled(client)
    for code in recovery[:6]:
        mfa_id = (await sign_in(client)).json()["mfaId"]
        res = await client.post(USERS + "auth-with-totp", json={"mfaId": mfa_id, "code": code})
        assert res.status_code == 200, res.text
    res = await client.post(USERS + "totp/disable", headers=headers, json={"code": recovery[6]})
    assert res.status_code == 204, res.text
    assert not await still_enrolled(client)


# -- the OpenAPI document ------------------------------------------------------------

SECRETS = ("vault", "vault_field", "inbox", "inbox_field", "secret_note", "clearance", "topsecretvalue",
           "staff_pin", "robots_serial")


async def schema(client) -> None:
    """Collections covering each case of who may reach what (names in SECRETS must not
    reach anyone but superusers)."""
    hidden_select = {"name": "clearance", "type": "select", "hidden": True, "values": ["topsecretvalue", "x"]}
    cols = [
        {"name": "posts", "listRule": "", "viewRule": "", "createRule": "", "updateRule": None, "deleteRule": None,
         "fields": [{"name": "title", "type": "text"}, {"name": "mood", "type": "select", "values": ["calm", "busy"]},
                    {"name": "secret_note", "type": "text", "hidden": True}, hidden_select]},
        {"name": "vault", "fields": [{"name": "vault_field", "type": "text"}]},
        {"name": "inbox", "createRule": "", "fields": [{"name": "inbox_field", "type": "text"}]},
        {"name": "staff", "type": "auth", "authRule": "",
         "fields": [{"name": "staff_pin", "type": "text", "hidden": True}]},
        {"name": "robots", "type": "auth", "authRule": None, "listRule": "", "viewRule": "",
         "fields": [{"name": "robots_serial", "type": "text", "hidden": True}]},
    ]
    for col in cols:
        res = await client.post("/api/collections", headers=client.su(), json=col)
        assert res.status_code == 200, res.text


async def document(client, headers: dict[str, str] | None = None) -> dict:
    res = await client.get("/api/openapi.json", headers=headers or {})
    assert res.status_code == 200, res.text
    assert "authorization" in res.headers.get("vary", "").lower()
    doc = res.json()
    validate(doc)
    return doc


def assert_limited(doc: dict) -> None:
    """What neither a guest nor a signed-in user may read about."""
    text = str(doc)
    for name in (*SYSTEM, *SECRETS):
        assert name not in text, name
    assert not [p for p in doc["paths"] if p.startswith(("/api/collections/{collection}", "/api/settings",
                                                         "/api/api-keys"))]
    assert "/api/collections" not in doc["paths"] and "/api/collections/import" not in doc["paths"]
    paths = doc["paths"]
    # posts: list, view, aggregate and create, not the null-rule update and delete
    assert set(paths["/api/collections/posts/records"]) == {"get", "post"}
    assert set(paths["/api/collections/posts/records/{id}"]) == {"get"}
    assert "/api/collections/posts/aggregate" in paths
    schemas = doc["components"]["schemas"]
    assert set(schemas["posts"]["properties"]) >= {"title", "mood"}
    assert schemas["posts"]["properties"]["mood"]["enum"] == ["calm", "busy", ""]
    assert "postsUpdate" not in schemas and "title" in schemas["postsCreate"]["properties"]
    # staff: no record paths (list and view are null), but its sign-in flows
    assert "/api/collections/staff/records" not in paths
    assert "/api/collections/staff/auth-with-password" in paths
    assert "/api/collections/staff/impersonate/{id}" not in paths
    assert "/api/collections/staff/auth-with-otp" not in paths  # OTP is off
    # robots: listed, but nobody except a superuser may sign in to it
    assert "/api/collections/robots/records" in paths
    assert not [p for p in paths if p.startswith("/api/collections/robots/") and "records" not in p
                and "aggregate" not in p]
    assert "/api/health" in paths


async def test_guest_document_names_only_what_a_guest_may_reach(client):
    await schema(client)
    assert_limited(await document(client))
    # the interactive page fetches the document without a token: a guest's view
    page = await client.get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in page.text


async def test_signed_in_user_reads_no_more_than_a_guest(client):
    await schema(client)
    _, headers = await token_for(client, "reader@example.com")
    doc = await document(client, headers)
    assert_limited(doc)
    assert "/api/collections/users/auth-with-password" in doc["paths"]


async def test_superuser_document_describes_everything(client):
    await schema(client)
    doc = await document(client, client.su())
    text = str(doc)
    for name in (*SYSTEM, *SECRETS):
        assert name in text, name
    assert "/api/collections/_apiKeys/records" in doc["paths"] and "/api/settings" in doc["paths"]
    assert "/api/collections/staff/impersonate/{id}" in doc["paths"]
    assert set(doc["paths"]["/api/collections/vault/records/{id}"]) == {"get", "patch", "delete"}


async def test_api_key_document_names_its_collections_and_actions(client):
    await schema(client)
    res = await client.post("/api/api-keys", headers=client.su(), json={
        "name": "reader", "collections": ["vault"], "actions": ["list", "create"]})
    assert res.status_code == 200, res.text
    doc = await document(client, {"Authorization": res.json()["key"]})
    paths = doc["paths"]
    assert set(paths["/api/collections/vault/records"]) == {"get", "post"}
    assert "/api/collections/vault/records/{id}" not in paths  # no view, update or delete
    assert not [p for p in paths if p.startswith("/api/collections/") and "/vault/" not in p]
    for name in (*SYSTEM, "posts", "staff", "secret_note"):
        assert name not in str(doc), name
    # a star key still never reaches a system collection
    star = await client.post("/api/api-keys", headers=client.su(), json={
        "name": "star", "collections": ["*"], "actions": ["list", "view", "create", "update", "delete"]})
    doc = await document(client, {"Authorization": star.json()["key"]})
    assert "/api/collections/vault/records/{id}" in doc["paths"]
    for name in SYSTEM:
        assert name not in str(doc), name


async def test_errors_do_not_tell_hidden_fields_from_unknown_ones(client):
    # A guest probing names with filter, sort or groupBy learns no more than from the document.
    await schema(client)
    _, headers = await token_for(client, "prober@example.com")
    probes = ("records?filter={}='x'", "records?sort=-{}", "records?filter=title='a'||{}!=''", "aggregate?groupBy={}",
              "aggregate?max={}")
    for who in ({}, headers):
        for probe in probes:
            answers = []
            for name in ("secret_note", "nosuch_field"):
                res = await client.get("/api/collections/posts/" + probe.format(name), headers=who)
                answers.append((res.status_code, res.text.replace(name, "NAME")))
            assert answers[0] == answers[1] and answers[0][0] == 400, answers
