"""Schema fuzzing: every operation of the live OpenAPI document against a real server.

A ``bastion serve`` process (SQLite, or the engine named by ``BASTION_FUZZ_DATABASE``)
gets collections covering every field type and every kind of rule (``null``, ``""``, an
expression), a view and a few records; then schemathesis loads ``/api/openapi.json`` from
it (as the superuser, who is described every operation) and runs each operation as a guest
and as a superuser, and the record operations as a signed-in user too. A 5xx, an
``unhandled error`` in the server log, or a response the document does not describe
(status, content type or body) fails the test.

The run is deterministic (derandomized Hypothesis, no example database) and bounded by
``MAX_EXAMPLES`` per operation, so CI sees the same cases every time. Run it alone with
``pytest tests/robustness/test_schemathesis.py -q``; ``BASTION_FUZZ_EXAMPLES=100`` and
``BASTION_FUZZ_COVERAGE=1`` dig deeper (see docs/testing.md).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bastion.testing import Server, run_cli
from tests.services import BACKENDS, require_or_skip

MAX_EXAMPLES = int(os.environ.get("BASTION_FUZZ_EXAMPLES", "10"))
EMAIL, PASSWORD = "fuzz@example.com", "fuzz-password-1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Operations whose success would change what every later case sees (rate limits, superuser
# IPs, dropped or emptied collections) are fuzzed as a guest only, where each case is
# refused before anything is read.
SUPERUSER_EXCLUDED = ["PATCH /api/settings", "PUT /api/collections/import", "DELETE /api/collections/{collection}",
                      "DELETE /api/collections/{collection}/truncate"]
# The realtime stream stays open until it is idle for minutes: it has no parameters to
# fuzz, and its events are checked by tests/realtime and tests/compat/test_realtime.py.
STREAMS = ["GET /api/realtime"]
# System collections whose every rule is null: a guest gets the same 403 from each of
# their operations as from the vault collection's, so guests skip them.
SUPERUSERS_ONLY = "^/api/collections/_(mfas|otps|externalAuths|authOrigins|authenticators)/"

OWNER_RULE = "owner = @request.auth.id"


def _collections(users_id: str) -> list[dict[str, Any]]:
    tags = {"name": "tags", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
            "fields": [{"name": "name", "type": "text", "required": True, "max": 40}]}
    things = {
        "name": "things", "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": OWNER_RULE, "deleteRule": None,
        "fields": [
            {"name": "title", "type": "text", "max": 200},
            {"name": "body", "type": "editor"},
            {"name": "count", "type": "number", "min": -1000, "max": 1000},
            {"name": "done", "type": "bool"},
            {"name": "contact", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "due", "type": "date"},
            {"name": "status", "type": "select", "values": ["draft", "live"], "maxSelect": 1},
            {"name": "labels", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
            {"name": "cover", "type": "file", "maxSelect": 1},
            {"name": "gallery", "type": "file", "maxSelect": 4},
            {"name": "owner", "type": "relation", "collectionId": users_id, "maxSelect": 1},
            {"name": "tags", "type": "relation", "collectionId": "tags", "maxSelect": 5},
            {"name": "meta", "type": "json"},
            {"name": "place", "type": "geoPoint"},
            {"name": "created", "type": "autodate", "onCreate": True},
            {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
        ]}
    notes = {"name": "notes", "listRule": OWNER_RULE, "viewRule": OWNER_RULE, "createRule": "@request.auth.id != ''",
             "updateRule": OWNER_RULE, "deleteRule": OWNER_RULE,
             "fields": [{"name": "text", "type": "text", "required": True},
                        {"name": "owner", "type": "relation", "collectionId": users_id, "maxSelect": 1}]}
    vault = {"name": "vault", "fields": [{"name": "secret", "type": "text"}]}
    members = {"name": "members", "type": "auth", "listRule": "id = @request.auth.id",
               "viewRule": "id = @request.auth.id", "createRule": "", "updateRule": "id = @request.auth.id",
               "deleteRule": None, "fields": [{"name": "nickname", "type": "text", "max": 50},
                                             {"name": "score", "type": "number", "onlyInt": True}]}
    stats = {"name": "thing_stats", "type": "view", "listRule": "", "viewRule": "",
             "viewQuery": "SELECT id, title, count, done FROM things"}
    return [tags, things, notes, vault, members, stats]


def _seed(http: httpx.Client, su: dict[str, str]) -> dict[str, list[str]]:
    """Collections and records; returns the record ids by collection name."""
    users = http.get("/api/collections/users", headers=su).json()
    for col in _collections(users["id"]):
        res = http.post("/api/collections", headers=su, json=col)
        assert res.status_code == 200, res.text
    user = http.post("/api/collections/users/records", headers=su, json={
        "email": "ann@example.com", "password": "ann-password-1", "passwordConfirm": "ann-password-1"}).json()
    tag_ids = [http.post("/api/collections/tags/records", json={"name": n}).json()["id"] for n in ("red", "blue")]
    for i in range(3):
        res = http.post("/api/collections/things/records", headers=su, json={
            "title": f"thing {i}", "body": "<p>hi</p>", "count": i, "done": i % 2 == 0,
            "contact": "c@example.com", "site": "https://example.com", "due": "2026-01-02 03:04:05.000Z",
            "status": "live", "labels": ["a", "b"], "owner": user["id"], "tags": tag_ids,
            "meta": {"n": i}, "place": {"lon": 1.5, "lat": -2.5}})
        assert res.status_code == 200, res.text
    res = http.post("/api/collections/notes/records", headers=su, json={"text": "mine", "owner": user["id"]})
    assert res.status_code == 200, res.text
    http.post("/api/collections/vault/records", headers=su, json={"secret": "s"}).raise_for_status()
    http.post("/api/collections/members/records", json={
        "email": "m@example.com", "password": "member-pass-1", "passwordConfirm": "member-pass-1"}).raise_for_status()
    ids = {}
    for name in ("users", "tags", "things", "notes", "vault", "members", "thing_stats", "_superusers"):
        page = http.get(f"/api/collections/{name}/records", headers=su).json()
        ids[name] = [r["id"] for r in page["items"]]
    return ids


@dataclass(frozen=True)
class Live:
    url: str
    superuser: dict[str, str]
    user: dict[str, str]
    ids: dict[str, list[str]]


def _sign_in(http: httpx.Client, collection: str, identity: str, password: str) -> dict[str, str]:
    auth = http.post(f"/api/collections/{collection}/auth-with-password",
                     json={"identity": identity, "password": password})
    assert auth.status_code == 200, auth.text
    return {"Authorization": auth.json()["token"]}


@pytest.fixture(scope="module")
def database_args(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """SQLite in --dir unless BASTION_FUZZ_DATABASE names another backend (postgres, mariadb)."""
    backend = BACKENDS[os.environ.get("BASTION_FUZZ_DATABASE", "sqlite")]
    if backend.name == "sqlite":
        yield []
        return
    problem = backend.unavailable()
    if problem:
        require_or_skip(problem)
    name = f"bt_fuzz_{secrets.token_hex(4)}"
    url = asyncio.run(backend.create_database(name, tmp_path_factory.getbasetemp()))
    try:
        yield ["--database-url", url]
    finally:
        asyncio.run(backend.drop_database(name))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, database_args: list[str]) -> Iterator[Live]:
    cwd: Path = tmp_path_factory.mktemp("fuzz")
    srv = Server(cwd, "--dir", "data", *database_args)
    try:
        res = run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", "data", *database_args, cwd=cwd)
        assert res.returncode == 0, res.stderr
        with httpx.Client(base_url=srv.url, timeout=10) as http:
            su = _sign_in(http, "_superusers", EMAIL, PASSWORD)
            ids = _seed(http, su)
            user = _sign_in(http, "users", "ann@example.com", "ann-password-1")
        yield Live(srv.url, su, user, ids)
        # The runs meant what they say only if both tokens held to the end.
        assert httpx.get(f"{srv.url}/api/collections", headers=su, timeout=10).status_code == 200
        assert httpx.post(f"{srv.url}/api/collections/users/auth-refresh", headers=user, timeout=10).status_code == 200
    finally:
        srv.stop()
    errors = [line for line in srv.log.read_text().splitlines() if "unhandled error" in line]
    assert not errors, "\n".join(errors)


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": 20261126,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"coverage": {"enabled": os.environ.get("BASTION_FUZZ_COVERAGE") == "1"}},
    })


@pytest.fixture(scope="module")
def live_schema(live: Live) -> schemathesis.BaseSchema:
    # The superuser's document: the whole API. A guest's names only what a guest may reach,
    # and the guest runs below are meant to knock on the rest too.
    return schemathesis.openapi.from_url(f"{live.url}/api/openapi.json", config=_config(), headers=live.superuser)


def _aim(case: schemathesis.Case, live: Live) -> None:
    """Point about half the cases of a record or collection path at something that exists.

    Random ids only ever reach the 404 branch; seeded ones reach the rule checks, the
    update validation and the serialisers. Deletes keep their random ids so the seeded
    records stay for the other operations, and so do updates of the two accounts whose
    tokens the runs hold (a new email or password would sign them out).
    """
    params = case.path_parameters or {}
    if case.method.upper() == "DELETE" or not params or zlib.crc32(repr(sorted(params.items())).encode()) % 2:
        return
    parts = case.operation.path.split("/")
    if case.method.upper() == "PATCH" and parts[3] in ("_superusers", "users"):
        return
    if "id" in params and len(parts) > 3:
        known = live.ids.get(parts[3], [])
        if known:
            params["id"] = known[zlib.crc32(str(params["id"]).encode()) % len(known)]
    if "collection" in params and case.method.upper() == "GET":
        params["collection"] = sorted(live.ids)[zlib.crc32(str(params["collection"]).encode()) % len(live.ids)]


schema = schemathesis.pytest.from_fixture("live_schema")
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


@schema.exclude(path_regex=SUPERUSERS_ONLY).exclude(name=STREAMS).parametrize()
@FUZZ_SETTINGS
def test_as_guest(case: schemathesis.Case, live: Live) -> None:
    _aim(case, live)
    case.call_and_validate(checks=CHECKS, timeout=30)


@schema.exclude(name=SUPERUSER_EXCLUDED + STREAMS).parametrize()
@FUZZ_SETTINGS
def test_as_superuser(case: schemathesis.Case, live: Live) -> None:
    _aim(case, live)
    case.call_and_validate(headers=live.superuser, checks=CHECKS, timeout=30)


@schema.include(path_regex="^/api/collections/(things|notes|vault|tags|members|users|thing_stats)/(records|aggregate)").parametrize()
@FUZZ_SETTINGS
def test_records_as_user(case: schemathesis.Case, live: Live) -> None:
    """A signed-in user: the owner rules match for some records and not for others."""
    _aim(case, live)
    case.call_and_validate(headers=live.user, checks=CHECKS, timeout=30)
