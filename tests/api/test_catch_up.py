"""Catching up before a request with a change announced elsewhere (a sibling worker's
mark, a PostgreSQL notice), and what happens when the reload cannot be done."""

from __future__ import annotations

import logging

from bastion.core.errors import Unavailable


async def test_a_heard_change_is_loaded_before_the_next_request(app, client):
    app.registry.remove(app.registry.get("users").id)  # as if "users" were made elsewhere
    assert app.registry.find("users") is None
    app.collections.version = "stale"
    app._hear_change()
    res = await client.get("/api/collections/users/records", headers=client.su())
    assert res.status_code == 200, res.text
    assert not app.behind()


async def test_a_failed_catch_up_is_retried_and_logged_once(app, client, monkeypatch, caplog):
    calls = 0

    async def unreachable() -> bool:
        nonlocal calls
        calls += 1
        raise Unavailable()

    monkeypatch.setattr(app.collections, "reload_if_changed", unreachable)
    app._hear_change()
    with caplog.at_level(logging.WARNING, logger="bastion.api"):
        for _ in range(3):
            assert (await client.get("/api/health")).status_code == 200
    assert calls == 3 and app.behind()  # each request tried again; still behind
    assert len([r for r in caplog.records if "could not load a schema" in r.getMessage()]) == 1
    monkeypatch.undo()
    assert (await client.get("/api/health")).status_code == 200
    assert not app.behind()
