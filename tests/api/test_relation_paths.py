"""Relation paths that cross several multi-valued steps, and modifiers on ``@collection``
paths, on every database.

The seed is small enough to check each answer by hand:

* users ann, bob, cat, dan;
* teams red (members ann, bob; tags x, y), blue (cat; z), empty (none);
* projects p1 (team red; teams red, blue), p2 (team blue; teams blue), p3 (team empty);
* tasks t1 (p1; labels l1), t2 (p2; l1, l2), t3 (p3);
* comments c1 (t1; liked by ann), c2 (t1; dan, bob), c3 (t2; nobody).
"""

from __future__ import annotations

import pytest

SCHEMA = [
    {"name": "teams", "fields": [
        {"name": "name", "type": "text"},
        {"name": "members", "type": "relation", "collectionId": "users", "maxSelect": 10},
        {"name": "tags", "type": "select", "values": ["x", "y", "z"], "maxSelect": 3}]},
    {"name": "projects", "fields": [
        {"name": "name", "type": "text"},
        {"name": "team", "type": "relation", "collectionId": "teams"},
        {"name": "teams", "type": "relation", "collectionId": "teams", "maxSelect": 10}]},
    {"name": "tasks", "fields": [
        {"name": "name", "type": "text"},
        {"name": "project", "type": "relation", "collectionId": "projects"},
        {"name": "labels", "type": "select", "values": ["l1", "l2"], "maxSelect": 2}]},
    {"name": "comments", "fields": [
        {"name": "name", "type": "text"},
        {"name": "task", "type": "relation", "collectionId": "tasks"},
        {"name": "likes", "type": "relation", "collectionId": "users", "maxSelect": 10}]},
]


@pytest.fixture
async def seeded(client):
    ids: dict[str, str] = {}
    for name in ("ann", "bob", "cat", "dan"):
        res = await client.post("/api/collections/users/records", json={
            "email": f"{name}@example.com", "password": "password-1", "passwordConfirm": "password-1",
            "name": name})
        assert res.status_code == 200, res.text
        ids[name] = res.json()["id"]
    for definition in SCHEMA:
        rules = {key: "" for key in ("listRule", "viewRule")}
        res = await client.post("/api/collections", headers=client.su(), json={**definition, **rules})
        assert res.status_code == 200, res.text

    async def add(collection: str, name: str, **data) -> None:
        res = await client.post(f"/api/collections/{collection}/records", headers=client.su(),
                                json={"name": name, **data})
        assert res.status_code == 200, res.text
        ids[name] = res.json()["id"]

    def refs(*names: str) -> list[str]:
        return [ids[n] for n in names]

    await add("teams", "red", members=refs("ann", "bob"), tags=["x", "y"])
    await add("teams", "blue", members=refs("cat"), tags=["z"])
    await add("teams", "empty")
    await add("projects", "p1", team=ids["red"], teams=refs("red", "blue"))
    await add("projects", "p2", team=ids["blue"], teams=refs("blue"))
    await add("projects", "p3", team=ids["empty"])
    await add("tasks", "t1", project=ids["p1"], labels=["l1"])
    await add("tasks", "t2", project=ids["p2"], labels=["l1", "l2"])
    await add("tasks", "t3", project=ids["p3"])
    await add("comments", "c1", task=ids["t1"], likes=refs("ann"))
    await add("comments", "c2", task=ids["t1"], likes=refs("dan", "bob"))
    await add("comments", "c3", task=ids["t2"])
    return ids


async def names(client, collection: str, text: str, headers=None) -> list[str]:
    res = await client.get(f"/api/collections/{collection}/records",
                           params={"filter": text, "perPage": 100}, headers=headers or client.su())
    assert res.status_code == 200, f"{text}: {res.text}"
    return sorted(item["name"] for item in res.json()["items"])


CASES = [
    # multiple relation → multiple relation
    ("projects", "teams.members.name ?= 'ann'", ["p1"]),
    ("projects", "teams.members.name ?= 'cat'", ["p1", "p2"]),
    ("projects", "teams.members.name = 'cat'", ["p2"]),  # every item; no items is one NULL item
    ("projects", "teams.members.name ?!= 'cat'", ["p1", "p3"]),  # p3: one NULL item
    ("projects", "teams.tags:each ?= 'z'", ["p1", "p2"]),
    ("projects", "teams.tags ?= 'y'", []),  # each team's tags is its JSON text, as in PocketBase
    ("projects", "teams.tags ?= '[\"z\"]'", ["p1", "p2"]),
    ("projects", "teams.tags ?~ 'y'", ["p1"]),
    ("projects", "teams.members:length ?> 1", ["p1"]),
    ("projects", "teams.members:length ?= 0", ["p3"]),  # no team: a length of 0, as in PocketBase
    ("projects", "teams.members.name:lower ?~ 'AN'", ["p1"]),
    # single relation → multiple relation, or ending in a multi-valued field
    ("projects", "team.members.name ?= 'bob'", ["p1"]),
    ("projects", "team.members:length = 0", ["p3"]),
    ("projects", "team.members:length = 2", ["p1"]),
    ("tasks", "project.teams.members.name ?= 'cat'", ["t1", "t2"]),
    ("tasks", "project.team.tags:each ?= 'x'", ["t1"]),
    ("tasks", "project.team.tags:each = 'z'", ["t2"]),
    # back-relations, followed by more steps
    ("tasks", "comments_via_task.likes.name ?= 'bob'", ["t1"]),
    ("tasks", "comments_via_task.likes:length ?> 1", ["t1"]),
    ("tasks", "comments_via_task.likes:length ?= 0", ["t2", "t3"]),
    ("tasks", "comments_via_task.name:each ?= 'c1'", ["t1"]),  # a modifier text does not take is ignored
    ("tasks", "comments_via_task.name:length ?= 'c3'", ["t2"]),
    ("users", "teams_via_members.projects_via_team.name ?= 'p1'", ["ann", "bob"]),
    ("users", "teams_via_members.projects_via_teams.name ?= 'p1'", ["ann", "bob", "cat"]),
    ("users", "teams_via_members.projects_via_teams.name ?= 'p2'", ["cat"]),
    ("users", "comments_via_likes.task.project.name ?= 'p1'", ["ann", "bob", "dan"]),
    ("users", "comments_via_likes.task.project.teams.name ?= 'blue'", ["ann", "bob", "dan"]),
    # @collection paths: relations, :length and :each on the joined row; "?" operators
    # match one joined row, plain operators need every row of the collection (PocketBase)
    ("tasks", "@collection.teams:t.members:length ?> 1 && @collection.teams:t.name ?= 'red'", ["t1", "t2", "t3"]),
    ("tasks", "@collection.teams:t.members.name ?= 'cat' && project.team ?= @collection.teams:t.id", ["t2"]),
    ("tasks", "@collection.teams:t.tags:each ?= 'z' && project.team ?= @collection.teams:t.id", ["t2"]),
    ("tasks", "@collection.teams:t.tags:length ?= 2 && project.team ?= @collection.teams:t.id", ["t1"]),
    ("tasks", "@collection.projects:p.team.name ?= 'blue' && project ?= @collection.projects:p.id", ["t2"]),
    ("tasks", "@collection.comments.likes:length ?> 1 && @collection.comments.task ?= id", ["t1"]),
    ("tasks", "@collection.teams:t.members:length > 1", []),  # not every team has two members
    ("tasks", "@collection.teams.name != ''", ["t1", "t2", "t3"]),  # every team has a name
    ("tasks", "@collection.teams.name != 'red'", []),
    ("tasks", "project.team = @collection.teams.id", []),
]


async def test_multi_step_paths(client, seeded):
    # One seed per database for the whole table: a mismatch names its expression.
    wrong = {text: got for collection, text, expected in CASES
             if (got := await names(client, collection, text)) != expected}
    assert wrong == {}


BAD = [
    ("tasks", "project.name.x = 1", '"name" is not a relation field'),
    ("tasks", "comments_via_task = 'x'", 'unknown field "comments_via_task"'),
    ("tasks", "project.team.members.teams_via_members.projects_via_team.team.members.name ?= 'a'",
     "at most 6 levels deep"),
]


async def test_bad_paths_are_400(client, seeded):
    for collection, text, message in BAD:
        res = await client.get(f"/api/collections/{collection}/records", params={"filter": text},
                               headers=client.su())
        assert res.status_code == 400, f"{text}: {res.text}"
        assert message in res.json()["detail"], res.json()


async def test_six_relation_steps_are_allowed(client, seeded):
    # six steps: project, team, members, teams_via_members, projects_via_team, team
    text = "project.team.members.teams_via_members.projects_via_team.team.name ?= 'red'"
    assert await names(client, "tasks", text) == ["t1"]


async def test_each_joined_collection_applies_its_list_rule(client, seeded):
    """For a client filter, every collection a multi-step path joins is read under its
    list rule: a guest cannot learn member names through teams of a project."""
    text = "teams.members.name ?= 'ann'"
    assert await names(client, "projects", text, headers={"X-Guest": "1"}) == []
    res = await client.patch("/api/collections/users", headers=client.su(), json={"listRule": ""})
    assert res.status_code == 200, res.text
    assert await names(client, "projects", text, headers={"X-Guest": "1"}) == ["p1"]
