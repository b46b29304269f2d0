"""Every schema change writes a migration file; files apply, revert and rebuild the schema."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import sqlalchemy as sa

from bastion.adapters.database import open_database
from bastion.core.access import AuthIdentity, RequestInfo
from bastion.core.app import App
from bastion.core.records.query import ListParams


def superuser(app: App) -> RequestInfo:
    return RequestInfo(auth=AuthIdentity(app.registry.get("_superusers"), {"id": "x"}))


POSTS = {"name": "posts", "fields": [
    {"name": "title", "type": "text"}, {"name": "views", "type": "number"}]}


async def test_api_change_writes_a_file(app, tmp_path):
    await app.collections.create(POSTS)
    files = sorted((tmp_path / "migrations").glob("*.py"))
    assert len(files) == 1 and files[0].name.endswith("_create_collection_posts.py")
    text = files[0].read_text()
    assert "async def up(app)" in text and "async def down(app)" in text
    assert "secret" not in text  # token secrets never land in migration files
    history = await app.migration_history()
    assert [(h.file, h.applied) for h in history] == [(files[0].name, True)]


async def test_rename_then_down_and_up_keeps_values(app):
    col = await app.collections.create(POSTS)
    su = superuser(app)
    rec = await app.records.create(su, col, {"title": "kept", "views": 4})
    fields = col.to_dict()["fields"]
    fields[1]["name"] = "headline"
    col = await app.collections.update("posts", {"fields": fields})
    assert (await app.records.view(su, col, rec["id"]))["headline"] == "kept"

    assert len(await app.migrate_down(1)) == 1
    col = app.registry.get("posts")
    assert (await app.records.view(su, col, rec["id"]))["title"] == "kept"
    assert len(await app.migrate_up()) == 1
    col = app.registry.get("posts")
    assert (await app.records.view(su, col, rec["id"]))["headline"] == "kept"

    await app.migrate_down(2)  # back past the create: the collection is gone
    assert app.registry.find("posts") is None


async def test_new_node_applies_pending_files(app, backend, tmp_path):
    await app.collections.create(POSTS)
    col = await app.collections.create({"name": "tags", "fields": [
        {"name": "label", "type": "text", "required": True},
        {"name": "post", "type": "relation", "collectionId": "posts"}],
        "indexes": ["CREATE UNIQUE INDEX idx_label ON tags (label)"]})
    name = f"bt_{secrets.token_hex(6)}"
    url = await backend.create_database(name, tmp_path / "other")
    other = App(open_database(url, tmp_path / "other"), tmp_path / "migrations")
    try:
        applied = await other.start()
        assert len(applied) == 2
        copy = other.registry.get("tags")
        assert copy.to_dict()["fields"] == col.to_dict()["fields"]
        assert copy.indexes == col.indexes
        su = superuser(other)
        await other.records.create(su, copy, {"label": "a"})
        listing = await other.records.list(su, copy, ListParams())
        assert listing["totalItems"] == 1
        assert await other.start() == []  # a restart applies nothing twice
    finally:
        await other.close()
        await backend.drop_database(name)


async def test_blank_migration_with_sql(app, tmp_path):
    await app.collections.create(POSTS)
    path = app.files.write_blank("seed posts")
    path.write_text(path.read_text().replace(
        "async def up(app):\n    pass",
        "async def up(app):\n    await app.execute(\"INSERT INTO posts (id, title, views) VALUES (:id, :t, 1)\", "
        "{'id': 'seeded000000001', 't': 'from sql'})",
    ))
    assert await app.migrate_up() == [path.name]
    su = superuser(app)
    rec = await app.records.view(su, app.registry.get("posts"), "seeded000000001")
    assert rec["title"] == "from sql"


async def test_second_node_sees_schema_changes(app, database_url, backend, tmp_path):
    if backend.name == "sqlite":
        other_url = ""
    else:
        other_url = database_url
    other = App(open_database(other_url, tmp_path / "data"), tmp_path / "migrations")
    await other.start()
    try:
        assert other.registry.find("late") is None
        assert await other.collections.reload_if_changed() is False
        await app.collections.create({"name": "late", "fields": [{"name": "x", "type": "text"}]})
        assert await other.collections.reload_if_changed() is True
        assert other.registry.find("late") is not None
    finally:
        await other.close()


async def _second_node(database_url, backend, tmp_path):
    other = App(open_database("" if backend.name == "sqlite" else database_url, tmp_path / "data"),
                tmp_path / "migrations")
    await other.start()
    return other


async def test_a_stale_node_changes_the_schema_on_top_of_the_stored_one(app, database_url, backend, tmp_path):
    other = await _second_node(database_url, backend, tmp_path)
    try:
        await app.collections.create({"name": "notes", "fields": [{"name": "a", "type": "text"}]})
        assert await other.collections.reload_if_changed() is True
        await app.collections.update("notes", {"fields": [{"name": "a", "type": "text"},
                                                            {"name": "b", "type": "text"}]})
        # ``other`` has not polled since: it knows "notes" without "b". Its change must not
        # be made on that stale view (it would drop "b"): it notices, reloads and makes it
        # on the stored schema.
        await other.collections.update("notes", {"listRule": ""})
        for node in (app, other):
            await node.collections.reload_if_changed()
            notes = node.registry.get("notes")
            assert [f.name for f in notes.fields if not f.system] == ["a", "b"]
            assert notes.rule("listRule") == ""
        await app.collections.create({"name": "tags", "fields": []})
        await other.collections.create({"name": "links", "fields": []})  # no lost "tags"
        assert other.registry.find("tags") is not None and other.registry.find("links") is not None
    finally:
        await other.close()


async def test_a_stale_node_keeps_settings_it_has_not_seen(app, database_url, backend, tmp_path):
    other = await _second_node(database_url, backend, tmp_path)
    try:
        await app.settings.update({"meta": {"appName": "Renamed"}})
        await other.settings.update({"batch": {"enabled": True}})
        for node in (app, other):
            await node.settings.reload_if_changed()
            assert node.settings.current["meta"]["appName"] == "Renamed"
            assert node.settings.current["batch"]["enabled"] is True
    finally:
        await other.close()


async def _until(check, seconds: float) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if check():
            return True
        await asyncio.sleep(0.01)
    return check()


async def test_postgres_nodes_hear_of_changes_at_once(app, database_url, backend, tmp_path):
    if backend.name != "postgres":
        pytest.skip("change notices are PostgreSQL's LISTEN/NOTIFY; other databases are polled")
    other = await _second_node(database_url, backend, tmp_path)
    # polling every 10 minutes: only the notice can tell ``other`` in time
    watcher = asyncio.create_task(other.watch_schema(interval=600))
    try:
        await _until(other.behind, 5)  # the listener's first connect counts as a change
        await other.catch_up()
        assert not other.behind()
        await app.collections.create({"name": "heard", "fields": []})
        assert await _until(other.behind, 2), "no notice within 2 s"
        await other.catch_up()
        assert other.registry.find("heard") is not None and not other.behind()
        await app.settings.update({"meta": {"appName": "Heard"}})
        assert await _until(other.behind, 2)
        await other.catch_up()
        assert other.settings.current["meta"]["appName"] == "Heard"

        # the listening connection is cut (a restart, a network fault): it comes back
        # by itself and hears the next change
        async with app.db.transaction() as conn:
            await conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'bastion-listen' AND datname = current_database()"))
        await asyncio.sleep(0.2)
        await _until(other.behind, 5)  # reconnecting counts as a change
        await other.catch_up()
        await app.collections.create({"name": "heard_again", "fields": []})
        assert await _until(other.behind, 5)
        await other.catch_up()
        assert other.registry.find("heard_again") is not None
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await other.close()
