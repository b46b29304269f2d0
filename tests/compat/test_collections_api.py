"""The collections API answers as PocketBase's: names, indexes, fields, auth options.

Each case goes to both servers and the answers are compared: the whole body of an error,
the parts that matter of a success (collection bodies differ in ways covered elsewhere:
the text of indexes, keys of some field types). Every collection a case creates has its
own name and id, so the cases are independent of each other.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.compat.harness import Answer, Pair

COLLECTIONS = "/api/collections"
_numbers = itertools.count()

OPTION_KEYS = (
    "authRule", "manageRule", "authAlert", "oauth2", "passwordAuth", "mfa", "otp", "authToken",
    "passwordResetToken", "emailChangeToken", "verificationToken", "fileToken", "verificationTemplate",
    "resetPasswordTemplate", "confirmEmailChangeTemplate",
)


def fresh(prefix: str) -> tuple[str, str]:
    """A name and an id no other case uses."""
    n = next(_numbers)
    return f"{prefix}{n}", f"pbc_{prefix}{n}"


def fields_of(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(f["id"], f["name"], f["type"], f["system"], f.get("hidden"), f.get("required"), f.get("max"))
            for f in body["fields"]]


def assert_same(pb: Answer, bastion: Answer, keys: tuple[str, ...] = ()) -> None:
    """The same status; the same body for an error, the same ``keys`` for a success."""
    assert bastion.status == pb.status, (pb.body, bastion.body)
    if pb.status != 200:
        assert bastion.body == pb.body
        return
    for key in keys:
        if key == "fields":
            assert fields_of(bastion.body) == fields_of(pb.body)
        else:
            assert bastion.body.get(key) == pb.body.get(key), key


def create(pair: Pair, prefix: str, body: dict[str, Any], keys: tuple[str, ...] = ()) -> None:
    name, cid = fresh(prefix)
    assert_same(*pair.both("POST", COLLECTIONS, "su", json={"name": name, "id": cid, **body}), keys=keys)


# -- 1. index names ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def indexed(pair: Pair) -> Pair:
    pair.setup("POST", COLLECTIONS, json={
        "id": "pbc_ix1", "name": "ix1", "fields": [{"name": "a", "type": "text"}],
        "indexes": ["CREATE INDEX idx_same ON ix1 (a)"]})
    pair.setup("POST", COLLECTIONS, json={
        "id": "pbc_ix3", "name": "ix3", "fields": [{"name": "a", "type": "text"}],
        "indexes": ["CREATE INDEX idx_own ON ix3 (a)"]})
    return pair


@pytest.mark.parametrize("index", [
    "CREATE INDEX idx_same ON ix2 (a)",
    "CREATE INDEX IDX_SAME ON ix2 (a)",
    "CREATE UNIQUE INDEX `idx_same` ON `whatever` (`a`)",
    "CREATE INDEX idx_tokenKey__pb_users_auth_ ON ix2 (a)",
])
def test_an_index_name_another_collection_uses_is_refused(indexed: Pair, index: str) -> None:
    pb, bastion = indexed.both("POST", COLLECTIONS, "su", json={
        "id": "pbc_ix2", "name": "ix2", "fields": [{"name": "a", "type": "text"}], "indexes": [index]})
    assert pb.status == 400
    assert_same(pb, bastion)


def test_an_index_name_in_use_is_refused_on_update(indexed: Pair) -> None:
    pb, bastion = indexed.both("PATCH", "/api/collections/ix3", "su", json={
        "indexes": ["CREATE INDEX idx_own ON ix3 (a)", "CREATE INDEX idx_same ON ix3 (a)"]})
    assert pb.status == 400
    assert_same(pb, bastion)


def test_a_collection_keeps_its_own_index_names_when_renamed(indexed: Pair) -> None:
    assert_same(*indexed.both("PATCH", "/api/collections/ix3", "su", json={"name": "ix3renamed"}),
                keys=("name",))
    indexed.setup("PATCH", "/api/collections/ix3renamed", json={"name": "ix3"})


def test_an_index_named_as_a_table_is_refused(indexed: Pair) -> None:
    pb, bastion = indexed.both("POST", COLLECTIONS, "su", json={
        "id": "pbc_ix4", "name": "ix4", "fields": [{"name": "a", "type": "text"}],
        "indexes": ["CREATE INDEX users ON ix4 (a)"]})
    # PocketBase's message carries SQLite's own words; the code is the same.
    assert (pb.status, bastion.status) == (400, 400)
    assert bastion.body["data"]["indexes"]["0"]["code"] == pb.body["data"]["indexes"]["0"]["code"]


@pytest.mark.parametrize("indexes", [
    ["CREATE INDEX idx_d1 ON x (a)", "CREATE INDEX idx_d1 ON x (a)"],
    ["CREATE INDEX idx_d2 ON x (a)", "CREATE INDEX idx_d3 ON x (a)"],
    ["CREATE INDEX idx_d4 ON x (a)", "CREATE INDEX IDX_D4 ON x (a DESC)"],
])
def test_repeated_index_names_and_definitions(pair: Pair, indexes: list[str]) -> None:
    create(pair, "dupidx", {"fields": [{"name": "a", "type": "text"}], "indexes": indexes})


# -- 2. auth options: bounds and types ---------------------------------------------------

AUTH_OPTION_CASES = [
    {"otp": {"enabled": True, "length": 3}},
    {"otp": {"enabled": True, "length": 0}},
    {"otp": {"enabled": True, "length": -3}},
    {"otp": {"enabled": True, "length": 4, "duration": 86400}},
    {"otp": {"enabled": True, "duration": 9}},
    {"otp": {"enabled": True, "duration": 86401}},
    {"otp": {"enabled": True, "duration": 0}},
    {"otp": {"enabled": False, "length": 0, "duration": 0}},
    {"otp": {"enabled": False, "length": -1, "duration": -5}},
    {"otp": {"emailTemplate": {"subject": "", "body": ""}}},
    {"otp": {"emailTemplate": None}},
    {"otp": None},
    {"otp": {"unknown": 1, "length": 6}},
    {"mfa": {"enabled": False, "duration": 0}},
    {"mfa": {"enabled": True, "duration": 5}},
    {"mfa": {"enabled": True, "duration": 86401}, "otp": {"enabled": True}},
    {"mfa": {"enabled": True}},
    {"mfa": {"enabled": True}, "otp": {"enabled": True}},
    {"mfa": {"enabled": True}, "otp": {"enabled": True, "length": 3}},
    {"mfa": {"enabled": False, "rule": "bad (("}},
    {"mfa": {"duration": None}},
    {"authToken": {"duration": 9}},
    {"authToken": {"duration": 0}},
    {"authToken": {"duration": -1}},
    {"authToken": {"duration": 10}},
    {"authToken": {"duration": 94670856}},
    {"authToken": {"duration": 94670857}},
    {"authToken": {"duration": None}},
    {"authToken": None},
    {"authToken": {"secret": "short"}},
    {"authToken": {"secret": "x" * 256}},
    {"authToken": {"secret": ""}},
    {"fileToken": {"duration": 5}, "verificationToken": {"duration": 5}},
    {"passwordResetToken": {"duration": 94670857}, "emailChangeToken": {"duration": 0}},
    {"verificationTemplate": {"subject": "", "body": ""}},
    {"verificationTemplate": {"subject": "Welcome"}},
    {"verificationTemplate": None},
    {"resetPasswordTemplate": {"body": ""}, "confirmEmailChangeTemplate": {"subject": ""}},
    {"authAlert": {"enabled": False, "emailTemplate": {"subject": "", "body": ""}}},
    {"authAlert": {"enabled": None}},
    {"passwordAuth": {"enabled": True, "identityFields": []}},
    {"passwordAuth": {"enabled": False, "identityFields": []}},
    {"passwordAuth": {"enabled": None}},
    {"passwordAuth": {"identityFields": None}},
    {"passwordAuth": {"identityFields": None, "enabled": False}},
    {"passwordAuth": {"enabled": True, "identityFields": ["email", "email"]}},
    {"manageRule": ""},
    {"authRule": None},
    {"oauth2": {"mappedFields": {"name": "nope", "avatarURL": "email"}}},
    {"oauth2": {"mappedFields": None}},
    {"oauth2": {"providers": None}},
    {"oauth2": {"enabled": True, "providers": [
        {"name": "google", "clientId": "a", "clientSecret": "b"},
        {"name": "google", "clientId": "c", "clientSecret": "d"}]}},
    {"otp": {"enabled": True, "length": 3}, "authToken": {"duration": 1}},
    {"otp": {"enabled": True, "length": 3}, "passwordAuth": {"identityFields": ["nope"]}},
    # Values of the wrong type make the body unreadable.
    {"otp": 5},
    {"otp": "x"},
    {"otp": []},
    {"otp": {"enabled": "yes"}},
    {"otp": {"enabled": True, "duration": 1.5}},
    {"otp": {"enabled": True, "duration": "20"}},
    {"otp": {"enabled": True, "length": 4.0}},
    {"mfa": {"enabled": 1}},
    {"authToken": {"duration": "x"}},
    {"authToken": {"duration": 2**70}},
    {"passwordAuth": {"identityFields": "email"}},
    {"passwordAuth": {"identityFields": [1]}},
    {"verificationTemplate": {"subject": 5}},
    {"authRule": 5},
]


@pytest.mark.parametrize("options", AUTH_OPTION_CASES, ids=[str(i) for i in range(len(AUTH_OPTION_CASES))])
def test_auth_options_are_checked_as_in_pocketbase(pair: Pair, options: dict[str, Any]) -> None:
    create(pair, "opts", {"type": "auth", **options}, keys=OPTION_KEYS)


def test_auth_options_are_checked_on_update(pair: Pair) -> None:
    name, cid = fresh("optsup")
    pair.setup("POST", COLLECTIONS, json={"name": name, "id": cid, "type": "auth"})
    for options in ({"otp": {"enabled": True, "length": 3}}, {"mfa": {"enabled": True}},
                    {"authToken": {"duration": 9}}, {"otp": {"enabled": True, "length": 5}}):
        assert_same(*pair.both("PATCH", f"{COLLECTIONS}/{name}", "su", json=options), keys=OPTION_KEYS)


def test_a_list_rule_of_the_wrong_type_makes_the_body_unreadable(pair: Pair) -> None:
    create(pair, "rule", {"listRule": 5})


# -- 3. identity fields --------------------------------------------------------------------

USERNAME = {"name": "username", "type": "text"}
IDENTITY_CASES = [
    ({"identityFields": ["email", "username"]}, [USERNAME], []),
    ({"enabled": False, "identityFields": ["email", "username"]}, [USERNAME], []),
    ({"identityFields": ["email", "username"]}, [USERNAME], ["CREATE UNIQUE INDEX idx_{n} ON x (username)"]),
    ({"identityFields": ["username"]}, [USERNAME],
     ["CREATE UNIQUE INDEX idx_{n} ON x (username) WHERE username != ''"]),
    ({"identityFields": ["username"]}, [USERNAME], ["CREATE UNIQUE INDEX idx_{n} ON x (username COLLATE NOCASE)"]),
    ({"identityFields": ["username"]}, [USERNAME], ["CREATE UNIQUE INDEX idx_{n} ON x (username, email)"]),
    ({"identityFields": ["username"]}, [USERNAME], ["CREATE INDEX idx_{n} ON x (username)"]),
    ({"identityFields": ["email", "USERNAME"]}, [USERNAME], ["CREATE UNIQUE INDEX idx_{n} ON x (username)"]),
    ({"identityFields": ["nope"]}, [], []),
    ({"identityFields": ["email", ""]}, [], []),
    ({"identityFields": ["id"]}, [], []),
    ({"identityFields": ["username", "nope"]}, [USERNAME], []),
]


@pytest.mark.parametrize(("password_auth", "fields", "indexes"), IDENTITY_CASES,
                         ids=[str(i) for i in range(len(IDENTITY_CASES))])
def test_identity_fields_need_a_unique_index(
    pair: Pair, password_auth: dict[str, Any], fields: list[dict[str, Any]], indexes: list[str]
) -> None:
    name, cid = fresh("ident")
    body = {"name": name, "id": cid, "type": "auth", "passwordAuth": password_auth, "fields": fields,
            "indexes": [text.format(n=name) for text in indexes]}
    assert_same(*pair.both("POST", COLLECTIONS, "su", json=body), keys=("passwordAuth", "fields"))


def test_identity_fields_are_checked_on_update(pair: Pair) -> None:
    name, cid = fresh("identup")
    pair.setup("POST", COLLECTIONS, json={"name": name, "id": cid, "type": "auth", "fields": [USERNAME]})
    path = f"{COLLECTIONS}/{name}"
    assert_same(*pair.both("PATCH", path, "su", json={"passwordAuth": {"identityFields": ["username"]}}))
    assert_same(*pair.both("PATCH", path, "su", json={
        "passwordAuth": {"identityFields": ["username"]},
        "indexes": [f"CREATE UNIQUE INDEX idx_{name}_username ON {name} (username)"]}), keys=("passwordAuth",))


# -- 4. names --------------------------------------------------------------------------------

NAME_CASES = [
    "_x", "_", "__", "_logs", "_authOrigin", "_params", "_PARAMS", "_collections", "_migrations",
    "_superusers", "_otps", "_mfas", "_externalAuths", "_authOrigins", "Users", "USERS",
    "_pb_users_auth_", "pbc_3142635823", "a_via_b", "A_VIA_B", "", "a-b", "a b", "x" * 256, "é",
]


@pytest.mark.parametrize("name", NAME_CASES)
def test_collection_names_are_checked_as_in_pocketbase(pair: Pair, name: str) -> None:
    assert_same(*pair.both("POST", COLLECTIONS, "su", json={"name": name}), keys=("name", "id", "fields"))


@pytest.mark.parametrize("body", [{"type": "auth"}, {"name": None}, {"name": 5}, {"name": {}},
                                  {"name": "typed", "type": 5}, {"name": "badtype", "type": "nope"}])
def test_missing_and_mistyped_names(pair: Pair, body: dict[str, Any]) -> None:
    assert_same(*pair.both("POST", COLLECTIONS, "su", json=body))


def test_a_name_taken_by_another_collection_on_rename(pair: Pair) -> None:
    name, cid = fresh("ren")
    pair.setup("POST", COLLECTIONS, json={"name": name, "id": cid})
    for new in ("users", "_params", "_pb_users_auth_", "a_via_b", "", "_renamed_ok"):
        assert_same(*pair.both("PATCH", f"{COLLECTIONS}/{cid}", "su", json={"name": new}), keys=("name",))


def test_a_system_collection_keeps_its_name(pair: Pair) -> None:
    assert_same(*pair.both("PATCH", f"{COLLECTIONS}/_superusers", "su", json={"name": "_admins"}))


@pytest.mark.parametrize("name", ["pg_x", "information_schema", "mysql", "sys", "performance_schema"])
def test_engine_internal_names_are_refused_by_bastion_alone(pair: Pair, name: str) -> None:
    """Intended divergence: names a database engine keeps for itself are refused on every
    engine, where PocketBase (on SQLite) takes them."""
    pb, bastion = pair.both("POST", COLLECTIONS, "su", json={"name": name})
    assert pb.status == 200
    assert bastion.status == 400
    assert bastion.body["data"]["name"]["code"] == "validation_collection_name_invalid"


def test_a_generated_id_already_taken_gets_a_number(pair: Pair) -> None:
    # The id derived from "base" + "movedaway" stays with the collection once it is renamed.
    pair.setup("POST", COLLECTIONS, json={"name": "movedaway"})
    pair.setup("PATCH", f"{COLLECTIONS}/movedaway", json={"name": "moved"})
    assert_same(*pair.both("POST", COLLECTIONS, "su", json={"name": "movedaway"}), keys=("id", "name"))
    pb, bastion = pair.both("POST", COLLECTIONS, "su", json={"name": "_otps"})
    assert_same(pb, bastion)


# -- 5. fields submitted twice -----------------------------------------------------------------

FIELD_CASES = [
    [{"name": "a", "type": "text", "max": 5}, {"name": "a", "type": "text", "max": 7}],
    [{"name": "a", "type": "text"}, {"name": "a", "type": "text"}],
    [{"name": "a", "type": "text", "max": 5}, {"name": "a", "type": "number"}],
    [{"name": "a", "type": "text", "max": 1}, {"name": "b", "type": "text"}, {"name": "a", "type": "text", "max": 3}],
    [{"name": "a", "type": "text", "id": "myid1", "max": 5}, {"name": "a", "type": "text", "max": 7}],
    [{"name": "a", "type": "text", "max": 5}, {"name": "a", "type": "text", "id": "myid2", "max": 7}],
    [{"name": "a", "type": "text", "id": "myid3"}, {"name": "b", "type": "text", "id": "myid3", "max": 7}],
    [{"name": "a", "type": "text"}, {"name": "b", "type": "text", "id": "text3904355907"}],
    [{"name": "b", "type": "text", "id": "text3904355907"}, {"name": "a", "type": "text"}],
    [{"name": "a", "type": "text"}, {"name": "A", "type": "text"}],
    [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}, {"name": "A", "type": "text"},
     {"name": "B", "type": "text"}],
    [{"name": "id", "type": "text"}, {"name": "id", "type": "text", "max": 20, "min": 5}],
    [{"name": "id", "type": "number"}],
    [{"name": "title", "type": "text", "min": -5}],
]


@pytest.mark.parametrize("fields", FIELD_CASES, ids=[str(i) for i in range(len(FIELD_CASES))])
def test_fields_are_merged_as_in_pocketbase(pair: Pair, fields: list[dict[str, Any]]) -> None:
    create(pair, "dupf", {"fields": fields}, keys=("fields",))


AUTH_FIELD_CASES = [
    [{"name": "title", "type": "text"}],
    [{"name": "title", "type": "text", "min": -5}],
    [{"name": "email", "type": "email"}, {"name": "email", "type": "email", "onlyDomains": ["example.com"]}],
    [{"name": "title", "type": "text"}, {"name": "id", "type": "text", "max": 20, "min": 10}],
    [{"name": "verified", "type": "text"}],
    [{"name": "email", "type": "text"}],
    [{"name": "password", "type": "text"}],
    [{"name": "title", "type": "text"}, {"name": "Title", "type": "text"}],
    [{"name": "title", "type": "text"}, {"name": "passwordConfirm", "type": "text"}],
    [{"name": "oldPassword", "type": "text"}],
    [{"name": "PasswordConfirm", "type": "text"}],
]


@pytest.mark.parametrize("fields", AUTH_FIELD_CASES, ids=[str(i) for i in range(len(AUTH_FIELD_CASES))])
def test_auth_fields_keep_their_place_and_system_fields_follow(pair: Pair, fields: list[dict[str, Any]]) -> None:
    create(pair, "authf", {"type": "auth", "fields": fields}, keys=("fields",))


def test_fields_sent_on_update_are_merged_as_in_pocketbase(pair: Pair) -> None:
    name, cid = fresh("authup")
    pair.setup("POST", COLLECTIONS, json={"name": name, "id": cid, "type": "auth",
                                          "fields": [{"name": "title", "type": "text"}]})
    path = f"{COLLECTIONS}/{name}"
    for fields in (
        [{"name": "title", "type": "text"}, {"name": "nick", "type": "text"}],
        [{"name": "nick", "type": "text"}, {"name": "title", "type": "text"}, {"name": "email", "type": "email"}],
        [{"name": "nick", "type": "text"}, {"name": "email", "type": "text"}],  # a system field lost
        [{"name": "nick", "type": "text"}, {"name": "nick", "type": "text", "max": 9}],
        [{"name": "id", "type": "text", "min": 3, "max": 30}],
    ):
        assert_same(*pair.both("PATCH", path, "su", json={"fields": fields}), keys=("fields",))


@pytest.mark.parametrize("name", ["expand", "collectionId", "collectionName", "null", "true", "_rowid_",
                                  "Expand", "a_via_b"])
def test_reserved_field_names(pair: Pair, name: str) -> None:
    create(pair, "resf", {"fields": [{"name": name, "type": "text"}]}, keys=("fields",))


# -- 6. defaults -------------------------------------------------------------------------------------

def test_a_new_auth_collection_has_pocketbases_defaults(pair: Pair) -> None:
    create(pair, "defaults", {"type": "auth"}, keys=(*OPTION_KEYS, "fields", "listRule", "viewRule",
                                                     "createRule", "updateRule", "deleteRule", "system"))


@pytest.mark.parametrize("name", ["users", "_superusers"])
def test_the_default_auth_collections_are_pocketbases(pair: Pair, name: str) -> None:
    pb, bastion = pair.both("GET", f"{COLLECTIONS}/{name}", "su")
    assert_same(pb, bastion, keys=(*OPTION_KEYS, "id", "name", "type", "system", "fields", "indexes",
                                   "listRule", "viewRule", "createRule", "updateRule", "deleteRule"))


def test_the_auth_scaffold_has_pocketbases_defaults(pair: Pair) -> None:
    pb, bastion = pair.both("GET", f"{COLLECTIONS}/meta/scaffolds", "su")
    assert (pb.status, bastion.status) == (200, 200)
    pb_auth, bastion_auth = pb.body["auth"], bastion.body["auth"]
    for key in (*OPTION_KEYS, "fields"):
        assert bastion_auth[key] == pb_auth[key], key
