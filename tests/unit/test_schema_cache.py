"""The schema cache: each kind of entry is kept, found again under its key only, bounded
least-recently-used, and forgotten on every schema change."""

from __future__ import annotations

import sqlalchemy as sa

from bastion.core.schema.cache import ListKey, ListStatements, QueryKey, RuleKey, SchemaCache
from bastion.core.schema.collections import Collection

TABLE = sa.table("posts", sa.column("id"), sa.column("title"))
OTHER_TABLE = sa.table("posts", sa.column("id"))


def test_the_fields_shown_are_kept_for_the_same_collection_object_only():
    cache = SchemaCache()
    col = Collection(id="c1", name="posts")
    shown = (("title", str),)
    cache.keep_shown(col, False, shown)
    assert cache.shown(col, False) is shown
    assert cache.shown(col, True) is None  # superusers see other fields
    assert cache.shown(Collection(id="c1", name="posts"), False) is None  # a reloaded collection


def test_filters_and_sorts_are_kept_apart():
    cache = SchemaCache()
    key = QueryKey("c1", TABLE, "title = 'a'", False)
    cond = TABLE.c.title == "a"
    cache.keep_filter(key, cond)
    assert cache.filter(key) is cond
    assert cache.sort(key) is None  # the same text as a sort is another entry
    assert cache.filter(key._replace(superuser=True)) is None
    assert cache.filter(key._replace(table=OTHER_TABLE)) is None
    clauses = [TABLE.c.title.asc()]
    cache.keep_sort(key, clauses)
    assert list(cache.sort(key) or ()) == clauses


def test_rules_are_kept_per_caller_and_known_as_kept():
    cache = SchemaCache()
    anyone = RuleKey("c1", TABLE, "owner = @request.auth.id")
    alice = anyone._replace(by_caller=True, caller=("users", "alice"))
    guest = anyone._replace(by_caller=True)
    cond = TABLE.c.id == "alice"
    cache.keep_rule(alice, cond)
    assert cache.rule(alice) is cond
    assert cache.rule(anyone) is None
    assert cache.rule(alice._replace(caller=("users", "bob"))) is None
    cache.keep_rule(guest, TABLE.c.id == "")
    assert cache.rule(anyone) is None  # a guest's condition is no one else's
    assert cache.is_kept_rule(cond)
    assert not cache.is_kept_rule(TABLE.c.id == "alice")  # equal text, another object


def test_list_statements_are_kept_with_the_rule_they_were_built_on():
    cache = SchemaCache()
    rule = TABLE.c.id == "x"
    key = ListKey("c1", TABLE, "", "-created", False, 30, False, id(rule))
    page = sa.select(TABLE).where(rule)
    cache.keep_statements(key, ListStatements(page, None, rule))
    kept = cache.statements(key)
    assert kept is not None and kept.page is page and kept.access is rule
    assert cache.statements(key._replace(per_page=31)) is None


def test_entries_are_evicted_least_recently_used_first():
    cache = SchemaCache(limit=2)
    keys = [QueryKey("c1", TABLE, f"title = '{i}'", False) for i in range(3)]
    conds = [TABLE.c.title == str(i) for i in range(3)]
    cache.keep_filter(keys[0], conds[0])
    cache.keep_filter(keys[1], conds[1])
    assert cache.filter(keys[0]) is conds[0]  # now the most recently used
    cache.keep_filter(keys[2], conds[2])
    assert cache.filter(keys[1]) is None
    assert cache.filter(keys[0]) is conds[0] and cache.filter(keys[2]) is conds[2]
    assert cache.sizes()["filters"] == 2


def test_a_schema_change_forgets_every_kind():
    cache = SchemaCache()
    col = Collection(id="c1", name="posts")
    cond = TABLE.c.id == "a"
    key = QueryKey("c1", TABLE, "id = 'a'", False)
    cache.keep_shown(col, False, ())
    cache.keep_filter(key, cond)
    cache.keep_sort(key, [])
    cache.keep_rule(RuleKey("c1", TABLE, "id = 'a'"), cond)
    cache.keep_statements(ListKey("c1", TABLE, "", "", False, 30, False, 0),
                          ListStatements(sa.select(TABLE), None, None))
    assert all(cache.sizes().values())
    generation = cache.generation
    cache.clear()
    assert not any(cache.sizes().values())
    assert not cache.is_kept_rule(cond)
    assert cache.generation == generation + 1


async def test_the_app_keeps_what_a_list_compiles_until_the_schema_changes(app, client):
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "listRule": "", "fields": [{"name": "title", "type": "text"}]})
    assert res.status_code == 200, res.text
    res = await client.get("/api/collections/notes/records", params={"filter": "title != 'x'", "sort": "-title"})
    assert res.status_code == 200, res.text
    sizes = app.registry.cache.sizes()
    assert sizes["filters"] == 1 and sizes["sorts"] == 1 and sizes["lists"] == 1 and sizes["shown"] >= 1
    res = await client.patch("/api/collections/notes", headers=client.su(), json={"listRule": "title != ''"})
    assert res.status_code == 200, res.text
    assert not any(app.registry.cache.sizes().values())
    res = await client.get("/api/collections/notes/records")
    assert res.status_code == 200, res.text
    assert app.registry.cache.sizes()["rules"] == 1
