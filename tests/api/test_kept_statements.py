"""List statements, filters and sorts are compiled once per schema and kept; these tests
check that nothing kept outlives what it was built from: the schema, the caller, the
clock or a rule of a joined collection. On every database."""

from __future__ import annotations

import pytest

from bastion.testing import token_for

POSTS = "/api/collections/posts/records"


async def make_posts(client, owners: dict[str, str]) -> None:
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "posts", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "number"},
                   {"name": "secret", "type": "text", "hidden": True},
                   {"name": "owner", "type": "relation", "collectionId": "users"},
                   {"name": "created", "type": "autodate", "onCreate": True}]})
    assert res.status_code == 200, res.text
    for n, (title, owner) in enumerate([("a", "alice"), ("b", "bob"), ("c", "alice")]):
        res = await client.post(POSTS, headers=client.su(), json={
            "title": title, "views": n, "secret": f"s{n}", "owner": owners[owner]})
        assert res.status_code == 200, res.text


@pytest.fixture
async def people(client):
    """alice and bob (ids and auth headers), and three posts: a, c by alice, b by bob."""
    alice, ha = await token_for(client, "alice@example.com")
    bob, hb = await token_for(client, "bob@example.com")
    await make_posts(client, {"alice": alice, "bob": bob})
    return alice, ha, bob, hb


async def titles(client, headers=None, **params) -> list[str]:
    res = await client.get(POSTS, params={"perPage": 50, **params}, headers=headers)
    assert res.status_code == 200, res.text
    return [item["title"] for item in res.json()["items"]]


@pytest.mark.usefixtures("people")
async def test_schema_change_forgets_kept_statements(client):
    assert await titles(client, filter="views > 0", sort="-views") == ["c", "b"]
    assert await titles(client, filter="views > 0", sort="-views") == ["c", "b"]  # kept
    res = await client.get("/api/collections/posts", headers=client.su())
    fields = res.json()["fields"]
    for f in fields:
        if f["name"] == "views":
            f["name"] = "hits"
    res = await client.patch("/api/collections/posts", headers=client.su(), json={"fields": fields})
    assert res.status_code == 200, res.text
    res = await client.get(POSTS, params={"filter": "views > 0", "sort": "-views"})
    assert res.status_code == 400, res.text  # the kept statement named a column that is gone
    assert await titles(client, filter="hits > 0", sort="-hits") == ["c", "b"]
    # A tightened list rule applies to the very next request.
    res = await client.patch("/api/collections/posts", headers=client.su(), json={"listRule": "hits = 99"})
    assert res.status_code == 200, res.text
    assert await titles(client, filter="hits > 0", sort="-hits") == []


@pytest.mark.usefixtures("people")
async def test_pages_of_a_kept_statement(client):
    pages = [await client.get(POSTS, params={"perPage": 1, "page": p, "sort": "views"}) for p in (1, 2, 3, 4)]
    assert [[i["title"] for i in r.json()["items"]] for r in pages] == [["a"], ["b"], ["c"], []]
    assert [r.json()["totalItems"] for r in pages] == [3, 3, 3, 3]
    skipped = await client.get(POSTS, params={"perPage": 1, "page": 2, "sort": "views", "skipTotal": 1})
    assert skipped.json()["totalItems"] == -1 and skipped.json()["items"][0]["title"] == "b"


@pytest.mark.usefixtures("people")
async def test_superuser_and_guest_statements_differ(client):
    # A superuser may filter by a hidden field; a guest may not, even after the superuser's
    # statement was kept.
    assert await titles(client, client.su(), filter="secret = 's1'") == ["b"]
    res = await client.get(POSTS, params={"filter": "secret = 's1'"})
    assert res.status_code == 400, res.text
    guest = (await client.get(POSTS, params={"sort": "views"})).json()["items"]
    assert all("secret" not in item for item in guest)
    su = (await client.get(POSTS, params={"sort": "views"}, headers=client.su())).json()["items"]
    assert [item["secret"] for item in su] == ["s0", "s1", "s2"]


async def test_filters_through_rules_of_joined_collections_are_per_caller(client, people):
    # users' list rule is "id = @request.auth.id": a client filter through `owner` sees only
    # the caller's own user, so the same filter text means something else for each caller.
    alice, ha, bob, hb = people
    for uid in (alice, bob):
        res = await client.patch(f"/api/collections/users/records/{uid}", headers=client.su(), json={"name": "member"})
        assert res.status_code == 200, res.text
    text = "owner.name = 'member'"
    assert await titles(client, ha, filter=text, sort="views") == ["a", "c"]
    assert await titles(client, hb, filter=text, sort="views") == ["b"]
    assert await titles(client, ha, filter=text, sort="views") == ["a", "c"]
    assert await titles(client, None, filter=text, sort="views") == []


@pytest.mark.usefixtures("people")
async def test_time_macros_are_not_kept(client):
    # `created` is now; a filter against @now is evaluated on every request.
    assert await titles(client, filter="created > @now", sort="views") == []
    assert await titles(client, filter="created <= @now", sort="views") == ["a", "b", "c"]
    res = await client.post(POSTS, headers=client.su(), json={"title": "d", "views": 9})
    assert res.status_code == 200, res.text
    assert await titles(client, filter="created <= @now", sort="views") == ["a", "b", "c", "d"]


async def test_error_answers_carry_cors_headers(client):
    origin = {"Origin": "https://app.example.com"}
    ok = await client.get("/api/health", headers=origin)
    assert ok.headers["access-control-allow-origin"] == "*"
    for res in (await client.get("/api/collections/missing/records", headers=origin),
                await client.post("/api/collections/users/auth-with-password", headers=origin, json={}),
                await client.get("/api/collections", headers=origin)):
        assert res.status_code in (400, 401, 403, 404), res.text
        assert res.headers["access-control-allow-origin"] == "*", (res.status_code, dict(res.headers))
        assert res.headers["x-request-id"]
        assert res.json()["message"]
    preflight = await client.options(POSTS, headers={**origin, "Access-Control-Request-Method": "PATCH"})
    assert preflight.status_code == 204
    assert "PATCH" in preflight.headers["access-control-allow-methods"]


async def test_owner_rules_are_kept_per_caller(client, people):
    alice, ha, bob, hb = people
    res = await client.patch("/api/collections/posts", headers=client.su(),
                             json={"listRule": "owner = @request.auth.id"})
    assert res.status_code == 200, res.text
    for _ in range(2):  # the second round runs on kept conditions and statements
        assert await titles(client, ha, sort="views") == ["a", "c"]
        assert await titles(client, hb, sort="views") == ["b"]
        assert await titles(client, None, sort="views") == []


async def test_rules_reading_other_fields_of_the_caller_are_not_kept(client, people):
    # `verified` can change between two requests with the same token.
    alice, ha, bob, hb = people
    res = await client.patch("/api/collections/posts", headers=client.su(),
                             json={"listRule": "@request.auth.verified = true && owner = @request.auth.id"})
    assert res.status_code == 200, res.text
    assert await titles(client, ha, sort="views") == []
    res = await client.patch(f"/api/collections/users/records/{alice}", headers=client.su(), json={"verified": True})
    assert res.status_code == 200, res.text
    assert await titles(client, ha, sort="views") == ["a", "c"]


def kept_entries(app) -> int:
    """How many things the schema cache holds, of every kind."""
    return sum(app.registry.cache.sizes().values())


async def test_what_is_kept_does_not_grow_with_requests(client, app, people):
    alice, ha, bob, hb = people
    res = await client.patch("/api/collections/users", headers=client.su(), json={"listRule": "verified = false"})
    assert res.status_code == 200, res.text
    res = await client.patch("/api/collections/posts", headers=client.su(),
                             json={"listRule": "owner = @request.auth.id"})
    assert res.status_code == 200, res.text

    async def round_of_requests() -> None:
        for headers in (ha, hb):
            # joins users through a client filter: its rule is compiled over a new alias
            assert await titles(client, headers, filter="owner.verified = false", sort="views")
            assert await titles(client, headers, sort="-views")

    await round_of_requests()
    kept = kept_entries(app)
    for _ in range(10):
        await round_of_requests()
    assert kept_entries(app) == kept


@pytest.mark.usefixtures("people")
async def test_long_client_filters_are_not_kept(client, app):
    await titles(client, filter="views >= 0")
    kept = kept_entries(app)
    for n in range(5):  # each over the length that is kept: compiled, answered, forgotten
        long_filter = " || ".join(f"views = {n * 100 + k}" for k in range(12))
        assert len(long_filter) > 128
        await titles(client, filter=long_filter)
    assert kept_entries(app) == kept
    await titles(client, filter="views >= 1")  # a short one is kept
    assert kept_entries(app) > kept
