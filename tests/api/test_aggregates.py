"""``/api/collections/{c}/aggregate`` on every database: numbers, rules, errors."""

from __future__ import annotations

from bastion.testing import create_user as make_user
from bastion.testing import sign_in

OWNER = "owner = @request.auth.id"
PLACED = "2024-0{}-01 10:00:00.000Z"


async def _user(client, email, name):
    user = await make_user(client, email=email)
    await client.patch(f"/api/collections/users/records/{user['id']}", headers=client.su(), json={"name": name})
    token = (await sign_in(client, email=email)).json()["token"]
    return user["id"], {"Authorization": token}


async def seed(client):
    """Two users, two categories (one not viewable by users), five orders."""
    alice, ha = await _user(client, "alice@example.com", "Alice")
    bob, hb = await _user(client, "bob@example.com", "Bob")
    su = client.su()
    res = await client.post("/api/collections", headers=su, json={
        "name": "categories", "listRule": "visible = true", "viewRule": "visible = true",
        "fields": [{"name": "name", "type": "text"}, {"name": "visible", "type": "bool"}]})
    assert res.status_code == 200, res.text
    books = (await client.post("/api/collections/categories/records", headers=su,
                               json={"name": "Books", "visible": True})).json()["id"]
    secret = (await client.post("/api/collections/categories/records", headers=su,
                                json={"name": "Secret", "visible": False})).json()["id"]
    res = await client.post("/api/collections", headers=su, json={
        "name": "orders", "listRule": OWNER, "viewRule": OWNER,
        "fields": [
            {"name": "status", "type": "text"}, {"name": "total", "type": "number"},
            {"name": "qty", "type": "number"}, {"name": "paid", "type": "bool"},
            {"name": "placed", "type": "date"},
            {"name": "owner", "type": "relation", "collectionId": "users"},
            {"name": "category", "type": "relation", "collectionId": "categories"},
            {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            {"name": "meta", "type": "json"},
            {"name": "secret", "type": "text", "hidden": True},
            {"name": "created", "type": "autodate", "onCreate": True}]})
    assert res.status_code == 200, res.text
    rows = [
        (alice, "paid", 10, 1, True, 1, books),
        (alice, "paid", 20.5, 2, False, 2, secret),
        (alice, "Draft", 5, 3, False, 3, ""),
        (bob, "paid", 100, 1, True, 4, books),
        (bob, "refund", -7.5, 1, False, 5, books),
    ]
    for owner, status, total, qty, paid, month, category in rows:
        res = await client.post("/api/collections/orders/records", headers=su, json={
            "owner": owner, "status": status, "total": total, "qty": qty, "paid": paid,
            "placed": PLACED.format(month), "category": category, "tags": ["a"],
            "meta": {"k": 1}, "secret": f"s-{status}"})
        assert res.status_code == 200, res.text
    return {"alice": ha, "bob": hb}


async def agg(client, query, headers=None, status=200):
    res = await client.get(f"/api/collections/orders/aggregate?{query}", headers=headers or {})
    assert res.status_code == status, (query, res.status_code, res.text)
    return res.json()


async def test_numbers_per_group_and_whole_set(client):
    await seed(client)
    su = client.su()
    body = await agg(client, "groupBy=status&count=1&sum=total,qty&avg=total&min=placed,paid,total"
                             "&max=total,paid,placed", su)
    assert body == {"totalGroups": 3, "items": [
        {"group": {"status": "Draft"}, "count": 1, "sum": {"total": 5, "qty": 3}, "avg": {"total": 5},
         "min": {"placed": PLACED.format(3), "paid": False, "total": 5},
         "max": {"total": 5, "paid": False, "placed": PLACED.format(3)}},
        {"group": {"status": "paid"}, "count": 3, "sum": {"total": 130.5, "qty": 4}, "avg": {"total": 43.5},
         "min": {"placed": PLACED.format(1), "paid": False, "total": 10},
         "max": {"total": 100, "paid": True, "placed": PLACED.format(4)}},
        {"group": {"status": "refund"}, "count": 1, "sum": {"total": -7.5, "qty": 1}, "avg": {"total": -7.5},
         "min": {"placed": PLACED.format(5), "paid": False, "total": -7.5},
         "max": {"total": -7.5, "paid": False, "placed": PLACED.format(5)}},
    ]}
    whole = await agg(client, "sum=total&avg=total,qty&min=total&max=paid", su)
    assert whole == {"totalGroups": 1, "items": [{
        "group": {}, "count": 5, "sum": {"total": 128}, "avg": {"total": 25.6, "qty": 1.6},
        "min": {"total": -7.5}, "max": {"paid": True}}]}
    assert isinstance(whole["items"][0]["sum"]["total"], int)
    two = await agg(client, "groupBy=status,paid&limit=2", su)
    assert two["totalGroups"] == 4
    assert [i["group"] for i in two["items"]] == [
        {"status": "Draft", "paid": False}, {"status": "paid", "paid": False}]
    by_bool = await agg(client, "groupBy=paid&sum=qty", su)
    assert [(i["group"]["paid"], i["count"], i["sum"]["qty"]) for i in by_bool["items"]] == [
        (False, 3, 6), (True, 2, 2)]
    nothing = await agg(client, "sum=total&avg=total&min=placed&filter=total>1000", su)
    assert nothing["items"] == [{"group": {}, "count": 0, "sum": {"total": 0}, "avg": {"total": None},
                                 "min": {"placed": None}}]
    empty = await agg(client, "groupBy=status&filter=total>1000", su)
    assert empty == {"items": [], "totalGroups": 0}
    picked = await agg(client, "groupBy=status&fields=items.count,totalGroups", su)
    assert picked == {"items": [{"count": 1}, {"count": 3}, {"count": 1}], "totalGroups": 3}


async def test_sort_filter_and_relation_groups(client):
    await seed(client)
    su = client.su()

    async def keys(query, headers=su):
        return [(i["group"].get("status"), i["count"]) for i in (await agg(client, query, headers))["items"]]

    assert await keys("groupBy=status&sort=-count") == [("paid", 3), ("Draft", 1), ("refund", 1)]
    assert await keys("groupBy=status&sum=total&sort=-sum.total") == [("paid", 3), ("Draft", 1), ("refund", 1)]
    assert await keys("groupBy=status&avg=total&sort=%2Bavg.total") == [("refund", 1), ("Draft", 1), ("paid", 3)]
    assert await keys("groupBy=status&sort=-status") == [("refund", 1), ("paid", 3), ("Draft", 1)]
    assert await keys("groupBy=status&filter=total>6") == [("paid", 3)]
    assert await keys("groupBy=status", su) == await keys("groupBy=status&filter=") == [
        ("Draft", 1), ("paid", 3), ("refund", 1)]
    by_owner = await agg(client, "groupBy=owner.name&sum=total&sort=owner.name", su)
    assert [(i["group"]["owner.name"], i["sum"]["total"]) for i in by_owner["items"]] == [
        ("Alice", 35.5), ("Bob", 92.5)]
    by_category = await agg(client, "groupBy=category.name&min=category.visible", su)
    assert [(i["group"]["category.name"], i["count"], i["min"]["category.visible"])
            for i in by_category["items"]] == [("", 1, None), ("Books", 3, True), ("Secret", 1, False)]


async def test_list_rule_applies(client):
    users = await seed(client)
    alice, bob = users["alice"], users["bob"]

    async def groups(headers, query="groupBy=status&sum=total"):
        body = await agg(client, query, headers)
        return [(i["group"].get("status"), i["count"], i["sum"]["total"]) for i in body["items"]]

    assert await groups(alice) == [("Draft", 1, 5), ("paid", 2, 30.5)]
    assert await groups(bob) == [("paid", 1, 100), ("refund", 1, -7.5)]
    assert await groups(None) == []
    assert await groups(alice, "sum=total") == [(None, 3, 35.5)]
    assert await groups(None, "sum=total") == [(None, 0, 0)]
    assert await groups(alice, "groupBy=status&sum=total&filter=paid=true") == [("paid", 1, 10)]
    # Related records count only where the caller may view them (as expand does).
    mine = await agg(client, "groupBy=owner.name,category.name", alice)
    assert [(i["group"], i["count"]) for i in mine["items"]] == [
        ({"owner.name": "Alice", "category.name": ""}, 2),
        ({"owner.name": "Alice", "category.name": "Books"}, 1)]
    # Hidden fields, other users' emails: superusers only.
    for query in ("groupBy=secret", "min=secret", "groupBy=owner.email", "max=owner.email"):
        res = await client.get(f"/api/collections/orders/aggregate?{query}", headers=alice)
        assert res.status_code == 400, (query, res.text)
        assert (await client.get(f"/api/collections/orders/aggregate?{query}", headers=client.su())).status_code == 200
    forbidden = await client.get("/api/collections/orders/aggregate?filter=@request.auth.id!=''", headers=alice)
    assert forbidden.status_code == 403
    locked = await client.patch("/api/collections/categories", headers=client.su(), json={"viewRule": None})
    assert locked.status_code == 200, locked.text
    res = await client.get("/api/collections/orders/aggregate?groupBy=category.name", headers=alice)
    assert res.status_code == 403 and "categories" in res.json()["message"]
    res = await client.patch("/api/collections/orders", headers=client.su(), json={"listRule": None})
    assert res.status_code == 200, res.text
    for headers in (alice, None):
        res = await client.get("/api/collections/orders/aggregate", headers=headers)
        assert res.status_code == 403, res.text
        assert res.json() == {"status": 403, "message": "Only superusers can perform this action.", "data": {}}
    assert (await agg(client, "", client.su()))["items"][0]["count"] == 5


BAD = [
    # (query, words the message must contain)
    ("groupBy=nope", "nope"),
    ("sum=owner.nope", "nope"),
    ("groupBy=tags", "multi-valued"),
    ("min=tags", "multi-valued"),
    ("groupBy=meta", "json"),
    ("max=meta.k", "json"),
    ("sum=status", "number"),
    ("avg=placed", "number"),
    ("groupBy=a,b,c,d,e,f", "at most 5"),
    ("sum=" + ",".join(f"f{i}" for i in range(21)), "at most 20"),
    ("groupBy=status,,paid", "empty"),
    ("sum=total,", "empty"),
    ("limit=0", "limit"),
    ("limit=1001", "limit"),
    ("limit=abc", "limit"),
    ("count=abc", "count"),
    ("sort=nope", "sort"),
    ("sort=sum.total", "sort"),
    ("groupBy=status&sort=-", "sort"),
    ("groupBy=status&sort=status,,count", "sort"),
    ("groupBy=status&sort=" + ",".join(["count"] * 9), "sort"),
    ("groupBy=count&sort=count", "both"),
    ("groupby=status", "groupBy"),
    ("groupBy=status&groupBy=paid", "more than once"),
    ("filter=total>", "filter"),
    ("filter=" + "a" * 3501, "too long"),
    ("groupBy=@request.auth.id", "not a field name"),
    ("groupBy=status:lower", "not a field name"),
    ("groupBy=id,owner.id&sum=owner.missing.x", "missing"),
    # injection attempts: rejected before any SQL is built
    ("groupBy=status;DROP TABLE orders", "not a field name"),
    ("groupBy=status%22)%20--", "not a field name"),
    ("sum=total)%20FROM%20orders;--", "not a field name"),
    ("min=total`", "not a field name"),
    ("avg=total'%20OR%20'1'='1", "not a field name"),
    ("max=total/**/", "not a field name"),
    ("count=1;DROP TABLE orders", "count"),
    ("sort=-count;DELETE FROM orders", "sort"),
    ("limit=1;DROP TABLE orders", "limit"),
    ("groupBy=sta%00tus", "not a field name"),
    ("groupBy=st%C3%A4tus", "not a field name"),
    ("groupBy=" + "x" * 300, "not a field name"),
]


async def test_bad_requests_are_400_with_a_reason(client):
    await seed(client)
    for query, words in BAD:
        res = await client.get(f"/api/collections/orders/aggregate?{query}", headers=client.su())
        assert res.status_code == 400, (query, res.status_code, res.text)
        body = res.json()
        # a filter or sort that cannot be read answers PocketBase's shape, the reason in "detail"
        assert set(body) - {"detail"} == {"status", "message", "data"} and body["status"] == 400
        assert body["data"] == {}
        reason = body.get("detail", body["message"])
        assert words.lower() in reason.lower(), (query, body)
    injected = await agg(client, "", client.su())
    assert injected["items"][0]["count"] == 5  # nothing above reached the table
    values = await client.get("/api/collections/orders/aggregate", headers=client.su(), params={
        "groupBy": "status", "filter": "status = \"x' OR '1'='1\" || secret = '1; DROP TABLE orders'"})
    assert values.status_code == 200 and values.json() == {"items": [], "totalGroups": 0}
    res = await client.get("/api/collections/orders;DROP/aggregate", headers=client.su())
    assert res.status_code == 404
    assert (await agg(client, "", client.su()))["items"][0]["count"] == 5
