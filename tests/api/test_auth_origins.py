"""``_authOrigins`` and ``authAlert`` as PocketBase has them: each completed sign-in records
its device (MD5 of IP + user agent); a sign-in from a new device mails the alert template;
owners list, view and delete their own devices."""

from __future__ import annotations

import hashlib
from typing import Any

from bastion.testing import Inbox, sign_in, token_in
from bastion.testing import create_user as make_user

USERS = "/api/collections/users/"
ORIGINS = "/api/collections/_authOrigins/records"
OWNER = "@request.auth.id != '' && recordRef = @request.auth.id && collectionRef = @request.auth.collectionId"


async def sign_in_from(client, agent: str, email: str = "u@example.com", password: str = "password-1"):
    return await client.post(USERS + "auth-with-password", headers={"User-Agent": agent},
                             json={"identity": email, "password": password})


async def origins(client, token: str) -> list[dict[str, Any]]:
    res = await client.get(ORIGINS, headers={"Authorization": token}, params={"sort": "created"})
    assert res.status_code == 200, res.text
    return res.json()["items"]


async def test_the_collection_is_pocketbase_s(client):
    res = await client.get("/api/collections/_authOrigins", headers=client.su())
    assert res.status_code == 200, res.text
    col = res.json()
    assert col["id"] == "pbc_4275539003" and col["system"] is True and col["type"] == "base"
    assert (col["listRule"], col["viewRule"], col["deleteRule"]) == (OWNER, OWNER, OWNER)
    assert col["createRule"] is None and col["updateRule"] is None
    assert [f["name"] for f in col["fields"]] == [
        "id", "collectionRef", "recordRef", "fingerprint", "created", "updated"]
    assert any("idx_authOrigins_unique_pairs" in i and "UNIQUE" in i for i in col["indexes"])


async def test_auth_alert_options_round_trip(client):
    defaults = (await client.get("/api/collections/users", headers=client.su())).json()["authAlert"]
    assert defaults["enabled"] is True and set(defaults["emailTemplate"]) == {"subject", "body"}
    changed = {"enabled": False,
               "emailTemplate": {"subject": "New sign-in to {APP_NAME}", "body": "<p>{ALERT_INFO}</p>"}}
    res = await client.patch("/api/collections/users", headers=client.su(), json={"authAlert": changed})
    assert res.status_code == 200, res.text
    assert res.json()["authAlert"] == changed
    assert (await client.get("/api/collections/users", headers=client.su())).json()["authAlert"] == changed


async def test_new_device_alert(client, inbox):
    await make_user(client)
    other = await make_user(client, "other@example.com")
    await client.patch("/api/collections/users", headers=client.su(), json={"authAlert": {"emailTemplate": {
        "subject": "New sign-in to {APP_NAME}", "body": "<p>Seen: {ALERT_INFO}</p>"}}})
    first = await sign_in_from(client, "Firefox/1")
    assert first.status_code == 200
    token = first.json()["token"]
    mine = await origins(client, token)
    assert len(mine) == 1 and mine[0]["fingerprint"] == hashlib.md5(b"127.0.0.1Firefox/1").hexdigest()
    assert mine[0]["recordRef"] == first.json()["record"]["id"] and mine[0]["collectionRef"] == "_pb_users_auth_"
    assert (await sign_in_from(client, "Firefox/1")).status_code == 200  # the same device again
    long_agent = "Chrome/" + "x" * 300
    assert (await sign_in_from(client, long_agent)).status_code == 200  # a new one: alert
    alert = await inbox.wait(1)
    assert alert["To"] == "u@example.com" and alert["Subject"] == "New sign-in to Acme"
    body = Inbox.body(alert)
    assert f"127.0.0.1 {long_agent[:200]}..." in body and long_agent[:201] not in body
    assert len(inbox.messages) == 1  # neither the first device nor a known one was alerted
    assert len(await origins(client, token)) == 2
    # other people's devices stay hidden and cannot be deleted
    other_token = (await sign_in_from(client, "Safari/1", "other@example.com")).json()["token"]
    assert [o["recordRef"] for o in await origins(client, other_token)] == [other["id"]]
    assert (await client.get(ORIGINS)).json()["items"] == []
    assert (await client.delete(f"{ORIGINS}/{mine[0]['id']}",
                                headers={"Authorization": other_token})).status_code == 404
    assert (await client.post(ORIGINS, headers={"Authorization": token}, json={
        "collectionRef": "_pb_users_auth_", "recordRef": mine[0]["recordRef"], "fingerprint": "x"})).status_code == 403
    assert (await client.delete(f"{ORIGINS}/{mine[0]['id']}", headers={"Authorization": token})).status_code == 204
    assert len(await origins(client, token)) == 1


async def test_five_devices_at_most_and_a_reset_forgets_them(client, inbox):
    await make_user(client)
    for n in range(7):
        assert (await sign_in_from(client, f"Device/{n}")).status_code == 200
    token = (await sign_in_from(client, "Device/6")).json()["token"]
    kept = await origins(client, token)
    assert len(kept) == 5
    assert kept[-1]["fingerprint"] == hashlib.md5(b"127.0.0.1Device/6").hexdigest()
    assert len(inbox.messages) == 6  # every device after the first
    assert (await client.post(USERS + "request-password-reset", json={"email": "u@example.com"})).status_code == 204
    reset = token_in(Inbox.body(await inbox.wait(7)))
    res = await client.post(USERS + "confirm-password-reset",
                            json={"token": reset, "password": "new-password-1", "passwordConfirm": "new-password-1"})
    assert res.status_code == 204
    token = (await sign_in_from(client, "Device/99", password="new-password-1")).json()["token"]
    assert len(await origins(client, token)) == 1
    assert len(inbox.messages) == 7  # after a reset the next device counts as the first


async def test_alerts_off_records_nothing(client, inbox):
    await make_user(client)
    await client.patch("/api/collections/users", headers=client.su(), json={"authAlert": {"enabled": False}})
    for agent in ("A/1", "B/1"):
        assert (await sign_in_from(client, agent)).status_code == 200
    token = (await sign_in(client)).json()["token"]
    assert await origins(client, token) == [] and inbox.messages == []


async def test_mfa_first_factor_is_not_a_device_sign_in(client, inbox):
    user = await make_user(client)
    await sign_in_from(client, "Known/1")
    await client.patch("/api/collections/users", headers=client.su(),
                       json={"otp": {"enabled": True}, "mfa": {"enabled": True}})
    assert (await sign_in_from(client, "Stranger/1")).status_code == 401  # no device recorded, no alert
    res = await client.get(ORIGINS, headers=client.su(), params={"filter": f"recordRef = '{user['id']}'"})
    assert [o["fingerprint"] for o in res.json()["items"]] == [hashlib.md5(b"127.0.0.1Known/1").hexdigest()]
    assert inbox.messages == []


async def test_a_password_change_through_the_records_api_forgets_the_devices(client, inbox):
    user = await make_user(client)
    await sign_in_from(client, "Firefox/1")
    token = (await sign_in_from(client, "Safari/2")).json()["token"]
    assert len(await origins(client, token)) == 2
    wrong = await client.patch(USERS + f"records/{user['id']}", headers={"Authorization": token}, json={
        "oldPassword": "not-it-1", "password": "password-2", "passwordConfirm": "password-2"})
    assert wrong.status_code == 400
    assert len(await origins(client, (await sign_in_from(client, "Firefox/1")).json()["token"])) == 2
    res = await client.patch(USERS + f"records/{user['id']}", headers={"Authorization": token}, json={
        "oldPassword": "password-1", "password": "password-2", "passwordConfirm": "password-2"})
    assert res.status_code == 200, res.text
    fresh = (await sign_in_from(client, "Firefox/1", password="password-2")).json()["token"]
    assert [o["fingerprint"] for o in await origins(client, fresh)] == [
        hashlib.md5(b"127.0.0.1Firefox/1").hexdigest()]
