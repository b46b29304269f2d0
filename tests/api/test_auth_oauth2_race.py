"""Simultaneous first OAuth2 sign-ins of one account, at the service level on every
backend (``tests/integration/test_oauth2.py`` runs the same race through a real provider
on SQLite): the loser of the race to create the record or the link signs in to the
winner's record instead of failing on a unique index."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bastion.core.access import RequestInfo
from bastion.core.auth.oauth2_providers import ExternalUser
from bastion.testing import create_user as make_user


def account(login: str) -> ExternalUser:
    return ExternalUser(id=login, name=login.title(), username=login, email=f"{login}@example.com",
                        email_verified=True, avatar_url="", raw={"sub": login})


async def rows(app, name: str, **where: str) -> list[dict]:
    table = app.registry.table(app.registry.get(name))
    async with app.db.read() as conn:
        found = await conn.fetch_all(sa.select(table).where(*(table.c[k] == v for k, v in where.items())))
    return [dict(r) for r in found]


async def test_simultaneous_sign_ups(app):
    col = app.registry.get("users")
    for round_ in range(3):
        login = f"twin{round_}"
        results = await asyncio.gather(*(app.oauth2.sign_in(col, "oidc", account(login), RequestInfo(), {})
                                         for _ in range(3)))
        assert len({record["id"] for record, _ in results}) == 1, results
        assert sorted(is_new for _, is_new in results) == [False, False, True]
        assert len(await rows(app, "users", email=f"{login}@example.com")) == 1
        assert len(await rows(app, "_externalAuths", providerId=login)) == 1


async def test_simultaneous_links_by_email(app, client):
    user = await make_user(client, "kim@example.com")
    col = app.registry.get("users")
    results = await asyncio.gather(*(app.oauth2.sign_in(col, "oidc", account("kim"), RequestInfo(), {})
                                     for _ in range(3)))
    assert {record["id"] for record, _ in results} == {user["id"]}
    assert [is_new for _, is_new in results] == [False, False, False]
    assert len(await rows(app, "_externalAuths", providerId="kim")) == 1
