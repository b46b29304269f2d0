"""A settings reload that overlaps another node's change never keeps the old settings
under the new version (which would leave them stale until the next change)."""

from __future__ import annotations

from bastion.core.settings import service as settings_module
from bastion.core.settings.service import SettingsService


async def test_a_reload_overlapping_a_commit_ends_with_the_new_settings(app, monkeypatch):
    other = SettingsService(app.db)  # another node's view of the same database
    await other.load()
    real_get = settings_module.get_param
    calls = {"n": 0}

    async def get_param_then_commit_elsewhere(conn, table, key, for_update=False):
        value = await real_get(conn, table, key, for_update)
        calls["n"] += 1
        if calls["n"] == 1:  # between the reload's two reads, the other node commits
            monkeypatch.setattr(settings_module, "get_param", real_get)
            await other.update({"meta": {"appName": "Changed elsewhere"}})
            monkeypatch.setattr(settings_module, "get_param", get_param_then_commit_elsewhere)
        return value

    monkeypatch.setattr(settings_module, "get_param", get_param_then_commit_elsewhere)
    await app.settings.load()
    monkeypatch.setattr(settings_module, "get_param", real_get)
    await app.settings.reload_if_changed()
    assert app.settings.current["meta"]["appName"] == "Changed elsewhere"
