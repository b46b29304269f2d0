"""Auth identities: an id is unique across auth collections, an email whatever its case."""

from __future__ import annotations

from bastion.testing import Inbox, token_for, token_in

PASSWORD = {"password": "password-123", "passwordConfirm": "password-123"}


async def test_another_auth_collection_cannot_borrow_a_user_id(client):
    await client.post("/api/collections", headers=client.su(), json={
        "name": "posts", "listRule": "owner = @request.auth.id", "viewRule": "owner = @request.auth.id",
        "fields": [{"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]})
    alice, _ = await token_for(client, "alice@example.com")
    await client.post("/api/collections/posts/records", headers=client.su(), json={"owner": alice})
    made = await client.post("/api/collections", headers=client.su(), json={
        "name": "members", "type": "auth", "createRule": "", "fields": []})
    assert made.status_code == 200, made.text
    twin = await client.post("/api/collections/members/records", json={
        "id": alice, "email": "mallory@example.com", **PASSWORD})
    assert twin.status_code == 400, twin.text
    assert twin.json()["data"]["id"]["code"] == "validation_invalid_auth_id"
    assert twin.json()["data"]["id"]["message"] == "Invalid or duplicated auth record id."
    # The same id in a base collection is fine, and a fresh id in members too.
    ok = await client.post("/api/collections/members/records", json={"email": "mallory@example.com", **PASSWORD})
    assert ok.status_code == 200, ok.text
    res = await client.post("/api/collections/members/auth-with-password",
                            json={"identity": "mallory@example.com", "password": "password-123"})
    listed = await client.get("/api/collections/posts/records", headers={"Authorization": res.json()["token"]})
    assert listed.json()["items"] == []


async def test_emails_differing_in_case_cannot_both_register(client):
    first = await client.post("/api/collections/users/records", json={"email": "alice@example.com", **PASSWORD})
    assert first.status_code == 200
    twin = await client.post("/api/collections/users/records", json={"email": "ALICE@example.com", **PASSWORD})
    assert twin.status_code == 400, twin.text
    assert twin.json()["data"]["email"]["code"] == "validation_not_unique"
    other = await client.post("/api/collections/users/records", json={"email": "bob@example.com", **PASSWORD})
    moved = await client.patch(f"/api/collections/users/records/{other.json()['id']}", headers=client.su(),
                               json={"email": "Alice@Example.com"})
    assert moved.status_code == 400, moved.text
    signed = await client.post("/api/collections/users/auth-with-password",
                               json={"identity": "ALICE@EXAMPLE.COM", "password": "password-123"})
    assert signed.status_code == 200 and signed.json()["record"]["id"] == first.json()["id"]


async def test_old_password_guesses_meet_the_lockout(client):
    uid, headers = await token_for(client, "alice@example.com")
    url = f"/api/collections/users/records/{uid}"

    async def change(old):
        return await client.patch(url, headers=headers, json={
            "oldPassword": old, "password": "new-password-1", "passwordConfirm": "new-password-1"})

    for i in range(5):
        res = await change(f"guess-{i}")
        assert res.status_code == 400 and "oldPassword" in res.json()["data"], res.text
    locked = await change("password-1")  # the right one, too late
    assert locked.status_code == 429, locked.text
    assert "Retry-After" in locked.headers or "retry-after" in locked.headers


async def test_parallel_password_guesses_cannot_race_the_lockout(client):
    import asyncio

    await token_for(client, "bob@example.com")
    tries = await asyncio.gather(*(client.post("/api/collections/users/auth-with-password", json={
        "identity": "bob@example.com", "password": f"wrong-{i}"}) for i in range(20)))
    codes = [r.status_code for r in tries]
    assert codes.count(400) <= 5 and codes.count(429) >= 15, codes


async def test_email_change_password_guesses_meet_the_lockout(client, inbox):
    _, headers = await token_for(client, "carol@example.com")
    res = await client.post("/api/collections/users/request-email-change", headers=headers,
                            json={"newEmail": "thief@example.com"})
    assert res.status_code == 204
    token = token_in(Inbox.body(await inbox.wait(1)))
    for i in range(5):
        wrong = await client.post("/api/collections/users/confirm-email-change",
                                  json={"token": token, "password": f"guess-{i}"})
        assert wrong.status_code == 400, wrong.text
    right = await client.post("/api/collections/users/confirm-email-change",
                              json={"token": token, "password": "password-1"})
    assert right.status_code == 429, right.text
