"""A plain script opens the App of a data folder, with its hook files, and writes
through the same services as the server."""

from __future__ import annotations

from pathlib import Path

from bastion import App, open_app
from bastion.core.access import AuthIdentity, RequestInfo
from bastion.core.records.query import parse_list_params


async def test_a_script_writes_with_the_apps_hooks(tmp_path: Path) -> None:
    hooks = tmp_path / "bastion_hooks"
    hooks.mkdir()
    (hooks / "stamp.py").write_text(
        "def setup(app):\n"
        "    @app.on_record_create('notes')\n"
        "    async def stamp(e):\n"
        "        e.body['title'] = e.body['title'].upper()\n"
        "        await e.next()\n")
    async with open_app(tmp_path / "bastion_data") as app:
        assert isinstance(app, App)
        su = app.registry.get("_superusers")
        system = RequestInfo(auth=AuthIdentity(su, {"id": ""}))
        await app.collections.create({"name": "notes", "fields": [{"name": "title", "type": "text"}]})
        made = await app.records.create(system, app.registry.get("notes"), {"title": "hello"})
        assert made["title"] == "HELLO"
    async with open_app(tmp_path / "bastion_data", hooks=False) as again:
        listed = await again.records.list(system, again.registry.get("notes"), parse_list_params({}))
        assert [r["title"] for r in listed["items"]] == ["HELLO"]

