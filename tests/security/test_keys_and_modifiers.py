"""Attacks through API keys and modifier keys (`f+`, `+f`, `f-`) against rules.

A `*` key must never reach a system collection; a rule on `@request.body.X` must see the
value a modifier key resolves to, exactly as if the plain key had been sent.
"""

from __future__ import annotations

import pytest

from bastion.testing import token_for

SYSTEM = ("_superusers", "_apiKeys", "_authenticators", "_otps", "_mfas", "_externalAuths", "_authOrigins")


async def star_key(client, *actions):
    res = await client.post("/api/api-keys", headers=client.su(), json={
        "name": "star", "collections": ["*"], "actions": list(actions)})
    assert res.status_code == 200, res.text
    return res.json()


async def test_star_key_cannot_create_a_superuser(client):
    key = await star_key(client, "create", "list", "view", "update", "delete")
    h = {"Authorization": key["key"]}
    made = await client.post("/api/collections/_superusers/records", headers=h, json={
        "email": "evil@example.com", "password": "evil-password-1", "passwordConfirm": "evil-password-1"})
    assert made.status_code == 403, made.text
    signin = await client.post("/api/collections/_superusers/auth-with-password",
                               json={"identity": "evil@example.com", "password": "evil-password-1"})
    assert signin.status_code == 400
    for name in SYSTEM:
        listed = await client.get(f"/api/collections/{name}/records", headers=h)
        assert listed.status_code == 403, (name, listed.text)
    # The key still works on the app's own collections.
    assert (await client.get("/api/collections/users/records", headers=h)).status_code == 200


async def test_star_key_cannot_revive_or_widen_keys(client):
    revoked = await star_key(client, "list")
    assert (await client.delete(f"/api/api-keys/{revoked['id']}", headers=client.su())).status_code == 204
    key = await star_key(client, "update", "view")
    h = {"Authorization": key["key"]}
    res = await client.patch(f"/api/collections/_apiKeys/records/{revoked['id']}", headers=h,
                             json={"revoked": False, "actions": ["list", "create", "update", "delete"]})
    assert res.status_code == 403, res.text
    assert (await client.get(f"/api/collections/_apiKeys/records/{key['id']}", headers=h)).status_code == 403
    listing = {k["id"]: k for k in (await client.get("/api/api-keys", headers=client.su())).json()["items"]}
    assert listing[revoked["id"]]["revoked"] is True and listing[revoked["id"]]["actions"] == ["list"]


POSTS_FIELDS = [
    {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
    {"name": "score", "type": "number"},
    {"name": "members", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 10},
    {"name": "perms", "type": "select", "values": ["read", "write", "admin"], "maxSelect": 3},
]
OWNER = "owner = @request.auth.id"


async def owned_record(client, update_rule, create_rule=""):
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "things", "fields": POSTS_FIELDS, "listRule": OWNER, "viewRule": OWNER,
        "createRule": create_rule, "updateRule": update_rule, "deleteRule": None})
    assert res.status_code == 200, res.text
    alice, ha = await token_for(client, "alice@example.com")
    bob, _ = await token_for(client, "bob@example.com")
    made = await client.post("/api/collections/things/records", headers=client.su(), json={
        "owner": alice, "score": 1, "members": [alice], "perms": ["read"]})
    assert made.status_code == 200, made.text
    return made.json()["id"], alice, bob, ha


CASES = [
    ("@request.body.score:isset = false", {"score": 6}, {"score+": 5}, "score", 1),
    ("@request.body.score <= 10", {"score": 51}, {"score+": 50}, "score", 1),
    ("@request.body.members:length <= 1", None, None, "members", None),
    ("@request.body.perms:each != 'admin'", {"perms": ["read", "admin"]}, {"perms+": "admin"}, "perms", ["read"]),
    ("@request.body.owner:isset = false", None, None, "owner", None),
]


@pytest.mark.parametrize("condition,plain,modified,field,before", CASES, ids=[c[0] for c in CASES])
async def test_modifier_keys_meet_body_rules(client, condition, plain, modified, field, before):
    rid, alice, bob, ha = await owned_record(client, f"{OWNER} && {condition}")
    if field == "members":
        plain, modified, before = {"members": [alice, bob]}, {"members+": bob}, [alice]
    if field == "owner":
        plain, modified, before = {"owner": bob}, {"owner+": bob}, alice
    url = f"/api/collections/things/records/{rid}"
    refused_plain = await client.patch(url, headers=ha, json=plain)
    assert refused_plain.status_code == 404, refused_plain.text
    refused = await client.patch(url, headers=ha, json=modified)
    assert refused.status_code == refused_plain.status_code, refused.text
    stored = (await client.get(url, headers=client.su())).json()
    assert stored[field] == before
    # A change the rule allows still goes through the modifier path.
    if field == "score" and "<=" in condition:
        ok = await client.patch(url, headers=ha, json={"score+": 2})
        assert ok.status_code == 200 and ok.json()["score"] == 3, ok.text


async def test_modifier_key_meets_create_rule(client):
    _, alice, _, ha = await owned_record(client, OWNER, create_rule="@request.body.score:isset = false")
    made = await client.post("/api/collections/things/records", headers=ha, json={"owner": alice, "score+": 100})
    assert made.status_code == 400, made.text
    plain = await client.post("/api/collections/things/records", headers=ha, json={"owner": alice, "score": 100})
    assert plain.status_code == 400
    fine = await client.post("/api/collections/things/records", headers=ha, json={"owner": alice})
    assert fine.status_code == 200, fine.text
    listed = (await client.get("/api/collections/things/records", headers=client.su())).json()
    assert sorted(r["score"] for r in listed["items"]) == [0, 1]


async def test_stored_record_conditions_see_the_record_before_the_change(client):
    # `members:length <= 1` without @request.body reads the stored record (as PocketBase).
    rid, alice, bob, ha = await owned_record(client, f"{OWNER} && members:length <= 1")
    res = await client.patch(f"/api/collections/things/records/{rid}", headers=ha, json={"members+": bob})
    assert res.status_code == 200 and res.json()["members"] == [alice, bob], res.text


async def test_modifiers_in_batch_and_multipart_meet_body_rules(client):
    rid, _, _, ha = await owned_record(client, f"{OWNER} && @request.body.score:isset = false")
    url = f"/api/collections/things/records/{rid}"
    multipart = await client.patch(url, headers=ha, data={"score+": "50"})
    assert multipart.status_code == 404, multipart.text
    await client.patch("/api/settings", headers=client.su(), json={"batch": {"enabled": True}})
    batch = await client.post("/api/batch", headers=ha, json={"requests": [
        {"method": "PATCH", "url": f"/api/collections/things/records/{rid}", "body": {"score+": 50}}]})
    assert batch.status_code in (400, 404), batch.text
    assert (await client.get(url, headers=client.su())).json()["score"] == 1
