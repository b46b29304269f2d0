"""Rules and filters through the API: who sees what, on every database."""

from __future__ import annotations

from bastion.testing import token_for


async def test_users_see_only_themselves(client):
    alice, ha = await token_for(client, "alice@example.com")
    bob, hb = await token_for(client, "bob@example.com")
    listing = (await client.get("/api/collections/users/records", headers=ha)).json()
    assert [u["id"] for u in listing["items"]] == [alice]
    assert (await client.get(f"/api/collections/users/records/{bob}", headers=ha)).status_code == 404
    assert (await client.get(f"/api/collections/users/records/{alice}", headers=ha)).status_code == 200
    assert (await client.patch(f"/api/collections/users/records/{bob}", headers=ha,
                               json={"name": "x"})).status_code == 404
    assert (await client.delete(f"/api/collections/users/records/{bob}", headers=ha)).status_code == 404
    guest = (await client.get("/api/collections/users/records")).json()
    assert guest["items"] == []
    own = await client.patch(f"/api/collections/users/records/{alice}", headers=ha, json={"name": "Alice"})
    assert own.status_code == 200 and own.json()["name"] == "Alice"


async def test_relation_rule_members(client):
    alice, ha = await token_for(client, "alice@example.com")
    bob, hb = await token_for(client, "bob@example.com")
    rule = "@request.auth.id ?= members.id"
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "teams", "listRule": rule, "viewRule": rule, "updateRule": rule,
        "createRule": "@request.auth.id != '' && @request.body.members:length > 0",
        "fields": [{"name": "name", "type": "text"},
                   {"name": "members", "type": "relation", "collectionId": "users", "maxSelect": 10}]})
    assert res.status_code == 200, res.text
    t1 = await client.post("/api/collections/teams/records", headers=ha, json={"name": "a", "members": [alice]})
    assert t1.status_code == 200, t1.text
    await client.post("/api/collections/teams/records", headers=hb, json={"name": "b", "members": [bob]})
    refused = await client.post("/api/collections/teams/records", headers=hb, json={"name": "c", "members": []})
    assert refused.status_code == 400 and refused.json()["message"] == "Failed to create record."
    guest = await client.post("/api/collections/teams/records", json={"name": "d", "members": [bob]})
    assert guest.status_code == 400
    names = [t["name"] for t in (await client.get("/api/collections/teams/records", headers=ha)).json()["items"]]
    assert names == ["a"]
    total = (await client.get("/api/collections/teams/records", headers=client.su())).json()["totalItems"]
    assert total == 2  # the refused creates wrote nothing
    tid = t1.json()["id"]
    assert (await client.get(f"/api/collections/teams/records/{tid}", headers=hb)).status_code == 404
    add = await client.patch(f"/api/collections/teams/records/{tid}", headers=ha, json={"members+": bob})
    assert add.status_code == 200 and add.json()["members"] == [alice, bob]
    assert (await client.get(f"/api/collections/teams/records/{tid}", headers=hb)).status_code == 200


async def test_collection_join_rule(client):
    alice, ha = await token_for(client, "alice@example.com")
    await client.post("/api/collections", headers=client.su(), json={
        "name": "admins", "fields": [{"name": "user", "type": "relation", "collectionId": "users"}]})
    await client.post("/api/collections", headers=client.su(), json={
        "name": "reports", "listRule": "@collection.admins.user ?= @request.auth.id",
        "fields": [{"name": "title", "type": "text"}]})
    await client.post("/api/collections/reports/records", headers=client.su(), json={"title": "r"})
    assert (await client.get("/api/collections/reports/records", headers=ha)).json()["items"] == []
    await client.post("/api/collections/admins/records", headers=client.su(), json={"user": alice})
    assert len((await client.get("/api/collections/reports/records", headers=ha)).json()["items"]) == 1


async def test_filter_and_sort_parameters(client):
    await client.post("/api/collections", headers=client.su(), json={
        "name": "posts", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "number"},
                   {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                   {"name": "secret", "type": "text", "hidden": True}]})
    for title, views, tags in (("Hello", 5, ["a"]), ("help", 1, ["a", "b"]), ("other", 9, [])):
        await client.post("/api/collections/posts/records", json={"title": title, "views": views, "tags": tags})

    async def titles(query):
        res = await client.get(f"/api/collections/posts/records?{query}")
        assert res.status_code == 200, res.text
        return [i["title"] for i in res.json()["items"]]

    assert await titles("filter=" + "title~'hel'&sort=views") == ["help", "Hello"]
    assert await titles("filter=views>=5&sort=-views") == ["other", "Hello"]
    assert await titles("filter=tags:each?='b'") == ["help"]
    assert await titles("filter=tags~'b'") == ["help"]  # a multi-select compares as its JSON text
    assert await titles("filter=tags:length=0") == ["other"]
    assert await titles("filter=(views>1 %26%26 views<9) || title='help'&sort=title") == ["Hello", "help"]
    bad = await client.get("/api/collections/posts/records?filter=views>")
    assert bad.status_code == 400 and "position" in bad.json()["detail"]
    assert bad.json()["message"] == "Something went wrong while processing your request."  # PocketBase's
    unknown = await client.get("/api/collections/posts/records?filter=nope=1")
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]
    hidden = await client.get("/api/collections/posts/records?filter=secret='x'")
    assert hidden.status_code == 400
    req = await client.get("/api/collections/posts/records?filter=@request.auth.id=''")
    assert req.status_code == 403
    injected = await client.get("/api/collections/posts/records", params={"filter": "title = \"x' OR '1'='1\""})
    assert injected.status_code == 200 and injected.json()["items"] == []
    assert (await client.get("/api/collections/posts/records?sort=-nope")).status_code == 400


async def test_invalid_rules_are_refused_at_save(client):
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "x", "listRule": "title = ", "viewRule": "missing_field = 1",
        "fields": [{"name": "title", "type": "text"}]})
    assert res.status_code == 400
    data = res.json()["data"]
    assert data["listRule"]["code"] == "validation_invalid_rule"
    assert data["viewRule"]["code"] == "validation_invalid_rule"


async def test_filter_collections_list(client):
    res = await client.get("/api/collections", params={"filter": "type = 'auth'"}, headers=client.su())
    assert res.status_code == 200, res.text
    assert {c["name"] for c in res.json()["items"]} == {"users", "_superusers"}
    bad = await client.get("/api/collections", params={"filter": "nope = 1"}, headers=client.su())
    assert bad.status_code == 400


async def test_client_filters_respect_joined_collections(client):
    alice, ha = await token_for(client, "alice@example.com")
    su = client.su()
    await client.post("/api/collections", headers=su, json={
        "name": "vault", "fields": [{"name": "code", "type": "text"}]})  # all rules locked
    await client.post("/api/collections", headers=su, json={
        "name": "notes", "listRule": "public = true",
        "fields": [{"name": "text", "type": "text"}, {"name": "public", "type": "bool"}]})
    await client.post("/api/collections", headers=su, json={
        "name": "boxes", "listRule": "", "viewRule": "",
        "fields": [{"name": "vault", "type": "relation", "collectionId": "vault"},
                   {"name": "notes", "type": "relation", "collectionId": "notes", "maxSelect": 5}]})
    v = (await client.post("/api/collections/vault/records", headers=su, json={"code": "1234"})).json()["id"]
    secret = (await client.post("/api/collections/notes/records", headers=su, json={"text": "hidden"})).json()["id"]
    shown = (await client.post("/api/collections/notes/records", headers=su,
                               json={"text": "shown", "public": True})).json()["id"]
    await client.post("/api/collections/boxes/records", headers=su, json={"vault": v, "notes": [secret]})
    await client.post("/api/collections/boxes/records", headers=su, json={"notes": [shown]})
    probe = await client.get("/api/collections/boxes/records", params={"filter": "vault.code = '1234'"}, headers=ha)
    assert probe.status_code == 400 and "vault" in probe.json()["detail"]
    via = await client.get("/api/collections/boxes/records", params={"filter": "notes.text ?= 'hidden'"}, headers=ha)
    assert via.status_code == 200 and via.json()["items"] == []
    ok = await client.get("/api/collections/boxes/records", params={"filter": "notes.text ?= 'shown'"}, headers=ha)
    assert len(ok.json()["items"]) == 1
    as_su = await client.get("/api/collections/boxes/records", params={"filter": "vault.code = '1234'"}, headers=su)
    assert len(as_su.json()["items"]) == 1


async def test_hidden_emails_cannot_be_guessed_by_filter(client):
    await client.patch("/api/collections/users", headers=client.su(), json={"listRule": ""})
    alice, ha = await token_for(client, "alice@example.com")
    bob, hb = await token_for(client, "bob@example.com")

    async def ids(filter_, headers):
        res = await client.get("/api/collections/users/records", params={"filter": filter_}, headers=headers)
        assert res.status_code == 200, res.text
        return [u["id"] for u in res.json()["items"]]

    assert await ids("email ~ 'bob%'", ha) == []  # bob's email is not visible to alice
    assert await ids("email ~ 'bob%'", hb) == []  # nor to bob himself, as in PocketBase
    assert await ids("email != 'x'", ha) == []  # a hidden email fails every comparison
    await client.patch(f"/api/collections/users/records/{bob}", headers=hb, json={"emailVisibility": True})
    assert await ids("email ~ 'bob%'", ha) == [bob]
    assert await ids("email != 'x'", ha) == [bob]


async def test_collection_references_share_one_joined_row(client):
    alice, ha = await token_for(client, "alice@example.com")
    su = client.su()
    await client.post("/api/collections", headers=su, json={
        "name": "projects", "fields": [{"name": "name", "type": "text"}]})
    await client.post("/api/collections", headers=su, json={
        "name": "members", "fields": [{"name": "user", "type": "relation", "collectionId": "users"},
                                      {"name": "project", "type": "relation", "collectionId": "projects"}]})
    rule = "@collection.members.user ?= @request.auth.id && @collection.members.project ?= id"
    await client.patch("/api/collections/projects", headers=su, json={"listRule": rule, "viewRule": rule})
    mine = (await client.post("/api/collections/projects/records", headers=su, json={"name": "mine"})).json()["id"]
    other = (await client.post("/api/collections/projects/records", headers=su, json={"name": "other"})).json()["id"]
    bob, _ = await token_for(client, "bob@example.com")
    # alice is a member of "mine"; bob of "other": no single row makes alice a member of "other"
    await client.post("/api/collections/members/records", headers=su, json={"user": alice, "project": mine})
    await client.post("/api/collections/members/records", headers=su, json={"user": bob, "project": other})
    names = [p["name"] for p in (await client.get("/api/collections/projects/records", headers=ha)).json()["items"]]
    assert names == ["mine"]
    assert (await client.get(f"/api/collections/projects/records/{other}", headers=ha)).status_code == 404
    # independent aliases join independently
    loose = "@collection.members:a.user ?= @request.auth.id && @collection.members:b.project ?= id"
    await client.patch("/api/collections/projects", headers=su, json={"listRule": loose})
    names = sorted(p["name"] for p in (
        await client.get("/api/collections/projects/records", headers=ha)).json()["items"])
    assert names == ["mine", "other"]
    # an empty joined collection does not hide rows that match without it
    await client.patch("/api/collections/projects", headers=su,
                       json={"listRule": "name = 'other' || @collection.members.user ?= 'nobody'"})
    await client.delete("/api/collections/members/truncate", headers=su)
    names = [p["name"] for p in (await client.get("/api/collections/projects/records", headers=ha)).json()["items"]]
    assert names == ["other"]


async def test_create_rule_sees_autodate_fields_unstamped(client):
    su = client.su()
    fields = [{"name": "title", "type": "text"}, {"name": "created", "type": "autodate", "onCreate": True}]
    for name, rule in (("stamped", "created != ''"), ("unstamped", "created = ''")):
        res = await client.post("/api/collections", headers=su, json={
            "name": name, "createRule": rule, "listRule": "", "fields": fields})
        assert res.status_code == 200, res.text
    refused = await client.post("/api/collections/stamped/records", json={"title": "x"})
    assert refused.status_code == 400
    made = await client.post("/api/collections/unstamped/records", json={"title": "x"})
    assert made.status_code == 200 and made.json()["created"] != ""
    listed = await client.get("/api/collections/unstamped/records")
    assert listed.json()["items"][0]["created"] == made.json()["created"]  # stamped after the check
    assert (await client.get("/api/collections/stamped/records")).json()["totalItems"] == 0
