"""The collections API as PocketBase 0.40 answers it, on every engine.

Index names are one namespace per database (in SQLite and PostgreSQL; Bastion checks them
the same way on MariaDB): a name another collection uses is a 400 naming that collection,
never a database error. Also: auth option bounds, identity fields, which names a collection
may take, fields sent twice, and the defaults of auth collections. The same cases are
compared against a running PocketBase in tests/compat/test_collections_api.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.auth.options import AUTH_DEFAULTS
from bastion.core.schema.collections import collection_from_stored

FIELD_A = [{"name": "a", "type": "text"}]


async def post(client: Any, body: dict[str, Any]) -> Any:
    return await client.post("/api/collections", headers=client.su(), json=body)


def error_at(res: Any, *path: str) -> dict[str, Any]:
    assert res.status_code == 400, res.text
    data = res.json()["data"]
    for key in path:
        data = data[key]
    return data


# -- index names -------------------------------------------------------------------------

async def test_an_index_name_another_collection_uses_is_a_validation_error(client):
    made = await post(client, {"name": "ix1", "fields": FIELD_A, "indexes": ["CREATE INDEX idx_same ON ix1 (a)"]})
    assert made.status_code == 200, made.text
    expected = {"indexes": {"0": {
        "code": "validation_existing_index_name", "message": "The index name is already used in ix1 collection.",
        "params": {"usedTableName": "ix1"}}}}
    for text in ("CREATE INDEX idx_same ON ix2 (a)", "CREATE UNIQUE INDEX IDX_SAME ON ix2 (a)"):
        res = await post(client, {"name": "ix2", "fields": FIELD_A, "indexes": [text]})
        assert res.status_code == 400, res.text
        assert res.json() == {"data": expected, "message": "Failed to create collection.", "status": 400}
    # Nothing was left behind: the same collection with a free index name is created.
    res = await post(client, {"name": "ix2", "fields": FIELD_A, "indexes": ["CREATE INDEX idx_other ON ix2 (a)"]})
    assert res.status_code == 200, res.text
    res = await client.patch("/api/collections/ix2", headers=client.su(), json={
        "indexes": ["CREATE INDEX idx_other ON ix2 (a)", "CREATE INDEX idx_same ON ix2 (a DESC)"]})
    assert error_at(res, "indexes", "1")["code"] == "validation_existing_index_name"
    assert res.json()["message"] == "Failed to update collection."
    # A collection keeps its own index names through a change and a rename.
    for change in ({"indexes": ["CREATE INDEX idx_same ON ix1 (a DESC)"]}, {"name": "ix1renamed"}):
        res = await client.patch("/api/collections/ix1", headers=client.su(), json=change)
        assert res.status_code == 200, res.text
        await client.patch("/api/collections/ix1renamed", headers=client.su(), json={"name": "ix1"})


@pytest.mark.parametrize(("index", "code"), [
    ("users", "validation_invalid_index_expression"),  # a table
    ("_params", "validation_invalid_index_expression"),
    ("ix5", "validation_invalid_index_expression"),  # the collection's own table
    ("sqlite_autoindex_users_1", "validation_invalid_index_expression"),
    ("PRIMARY", "validation_invalid_index_expression"),
    ("ix5_pkey", "validation_invalid_index_expression"),
    ("i" * 64, "validation_invalid_index_expression"),
    ("idx_tokenKey__pb_users_auth_", "validation_existing_index_name"),
    ("idx_email_pbc_3142635823", "validation_existing_index_name"),
])
async def test_index_names_an_engine_cannot_take_are_validation_errors(client, index, code):
    res = await post(client, {"name": "ix5", "fields": FIELD_A, "indexes": [f"CREATE INDEX {index} ON ix5 (a)"]})
    assert error_at(res, "indexes", "0")["code"] == code
    res = await post(client, {"name": "ix5", "fields": FIELD_A, "indexes": ["CREATE INDEX idx_ix5_a ON ix5 (a)"]})
    assert res.status_code == 200, res.text


async def test_an_index_the_engine_made_for_another_table_is_never_a_500(client):
    # PostgreSQL names a table's primary key index <table>_pkey; elsewhere the name is free.
    res = await post(client, {"name": "ix6", "fields": FIELD_A, "indexes": ["CREATE INDEX users_pkey ON ix6 (a)"]})
    assert res.status_code in (200, 400), res.text
    if res.status_code == 400:
        assert error_at(res, "indexes", "0")["params"] == {"usedTableName": "users"}


async def test_repeated_index_definitions_are_refused(client):
    res = await post(client, {"name": "ix7", "fields": FIELD_A, "indexes": [
        "CREATE INDEX idx_d1 ON ix7 (a)", "CREATE INDEX idx_d2 ON ix7 (a)"]})
    assert error_at(res, "indexes", "1") == {
        "code": "validation_duplicated_index_definition", "message": "The index definition already exists."}


# -- auth options ---------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "path", "error"), [
    ({"otp": {"enabled": True, "length": 3}}, ("otp", "length"), {
        "code": "validation_min_greater_equal_than_required", "message": "Must be no less than 4.",
        "params": {"threshold": 4}}),
    ({"otp": {"enabled": True, "length": 0}}, ("otp", "length"),
     {"code": "validation_required", "message": "Cannot be blank."}),
    ({"otp": {"enabled": True, "duration": 86401}}, ("otp", "duration"), {
        "code": "validation_max_less_equal_than_required", "message": "Must be no greater than 86400.",
        "params": {"threshold": 86400}}),
    ({"mfa": {"enabled": True, "duration": 5}}, ("mfa", "duration"), {
        "code": "validation_min_greater_equal_than_required", "message": "Must be no less than 10.",
        "params": {"threshold": 10}}),
    ({"mfa": {"enabled": True}}, ("mfa", "enabled"), {
        "code": "validation_mfa_not_enough_auths", "message": "MFA requires at least 2 auth methods to be enabled."}),
    ({"authToken": {"duration": 94670857}}, ("authToken", "duration"), {
        "code": "validation_max_less_equal_than_required", "message": "Must be no greater than 94670856.",
        "params": {"threshold": 94670856}}),
    ({"authToken": {"secret": "short"}}, ("authToken", "secret"), {
        "code": "validation_length_out_of_range", "message": "The length must be between 30 and 255.",
        "params": {"max": 255, "min": 30}}),
    ({"verificationTemplate": {"body": ""}}, ("verificationTemplate", "body"),
     {"code": "validation_required", "message": "Cannot be blank."}),
    ({"manageRule": ""}, ("manageRule",),
     {"code": "validation_nil_or_not_empty_required", "message": "Cannot be blank."}),
])
async def test_auth_option_bounds(client, options, path, error):
    res = await post(client, {"name": "people", "type": "auth", **options})
    assert error_at(res, *path) == error


async def test_options_of_a_disabled_method_are_not_checked(client):
    res = await post(client, {"name": "people", "type": "auth", "otp": {"enabled": False, "length": 0, "duration": 0},
                              "mfa": {"enabled": False, "duration": 0}})
    assert res.status_code == 200, res.text
    assert res.json()["otp"]["length"] == 0 and res.json()["mfa"]["duration"] == 0
    res = await client.patch("/api/collections/people", headers=client.su(), json={"otp": {"enabled": True}})
    assert error_at(res, "otp") == {
        "duration": {"code": "validation_required", "message": "Cannot be blank."},
        "length": {"code": "validation_required", "message": "Cannot be blank."}}


@pytest.mark.parametrize("options", [{"otp": {"enabled": "yes"}}, {"otp": 5}, {"authToken": {"duration": 1.5}},
                                     {"passwordAuth": {"identityFields": "email"}}, {"authRule": 5}])
async def test_options_of_the_wrong_type_make_the_body_unreadable(client, options):
    res = await post(client, {"name": "people", "type": "auth", **options})
    assert res.status_code == 400
    assert res.json() == {"data": {}, "message": "Failed to load the submitted data due to invalid formatting.",
                          "status": 400}


async def test_null_options_are_zero_values_and_unknown_keys_are_dropped(client):
    res = await post(client, {"name": "people", "type": "auth", "mfa": {"duration": None, "extra": 1},
                              "oauth2": {"mappedFields": {"name": "nope"}}})
    assert res.status_code == 200, res.text
    assert res.json()["mfa"] == {"enabled": False, "duration": 0, "rule": ""}
    assert res.json()["oauth2"]["mappedFields"]["name"] == ""  # no field of that name


async def test_identity_fields_need_a_single_column_unique_index(client):
    username = {"name": "username", "type": "text"}
    res = await post(client, {"name": "people", "type": "auth", "fields": [username],
                              "passwordAuth": {"enabled": True, "identityFields": ["email", "username"]}})
    assert res.status_code == 400
    assert res.json() == {"data": {"passwordAuth": {"identityFields": {
        "code": "validation_missing_unique_constraint",
        "message": "The field username doesn't have a UNIQUE constraint.",
        "params": {"fieldName": "username"}}}}, "message": "Failed to create collection.", "status": 400}
    res = await post(client, {"name": "people", "type": "auth", "fields": [username],
                              "passwordAuth": {"identityFields": ["email", "nick"]}})
    assert error_at(res, "passwordAuth", "identityFields")["code"] == "validation_missing_field"
    res = await post(client, {"name": "people", "type": "auth", "fields": [username],
                              "passwordAuth": {"identityFields": ["email", "username"]},
                              "indexes": [
                                  "CREATE UNIQUE INDEX idx_people_username ON people (username) WHERE username != ''"]})
    assert res.status_code == 200, res.text
    res = await client.patch("/api/collections/people", headers=client.su(), json={"indexes": []})
    assert error_at(res, "passwordAuth", "identityFields")["params"] == {"fieldName": "username"}


# -- names ----------------------------------------------------------------------------------

async def test_a_name_may_start_with_an_underscore(client):
    res = await post(client, {"name": "_notes", "fields": FIELD_A})
    assert res.status_code == 200, res.text
    made = await client.post("/api/collections/_notes/records", headers=client.su(), json={"a": "x"})
    assert made.status_code == 200, made.text
    listed = await client.get("/api/collections/_notes/records", headers=client.su())
    assert [r["a"] for r in listed.json()["items"]] == ["x"]


@pytest.mark.parametrize(("name", "code"), [
    ("_params", "validation_collection_name_invalid"),
    ("_MIGRATIONS", "validation_collection_name_invalid"),
    ("_superusers", "validation_collection_name_exists"),
    ("USERS", "validation_collection_name_exists"),
    ("_pb_users_auth_", "validation_collection_name_id_duplicate"),
    ("a_via_b", "validation_found_via"),
    ("", "validation_required"),
    ("a-b", "validation_match_invalid"),
    ("x" * 256, "validation_length_out_of_range"),
    ("pg_class", "validation_collection_name_invalid"),  # engine-internal names stay refused
    ("sqlite_x", "validation_collection_name_invalid"),
])
async def test_names_pocketbase_refuses(client, name, code):
    res = await post(client, {"name": name})
    assert error_at(res, "name")["code"] == code


async def test_a_generated_id_already_taken_gets_a_number(client):
    first = await post(client, {"name": "movedaway", "type": "auth"})
    assert first.status_code == 200, first.text
    await client.patch("/api/collections/movedaway", headers=client.su(), json={"name": "moved"})
    again = await post(client, {"name": "movedaway", "type": "auth"})
    assert again.status_code == 200, again.text
    cid = first.json()["id"] + "2"
    assert again.json()["id"] == cid
    assert all(cid in text for text in again.json()["indexes"])


# -- fields ---------------------------------------------------------------------------------

async def test_a_field_sent_twice_is_merged_the_last_one_winning_in_place(client):
    res = await post(client, {"name": "twice", "fields": [
        {"name": "a", "type": "text", "max": 5}, {"name": "b", "type": "text"}, {"name": "a", "type": "number"}]})
    assert res.status_code == 200, res.text
    fields = [(f["name"], f["type"], f["id"]) for f in res.json()["fields"]]
    assert fields == [
        ("id", "text", "text3208210256"), ("a", "number", "text3904355907"), ("b", "text", "text1908338681")]
    made = await client.post("/api/collections/twice/records", headers=client.su(), json={"a": 4, "b": "x"})
    assert made.status_code == 200 and made.json()["a"] == 4, made.text


async def test_names_differing_in_case_are_duplicates(client):
    res = await post(client, {"name": "twice",
                              "fields": [{"name": "a", "type": "text"}, {"name": "A", "type": "text"}]})
    assert error_at(res, "fields") == {"2": {"name": {
        "code": "validation_duplicated_field_name", "message": "Duplicated or invalid field name A.",
        "params": {"fieldName": "A"}}}}


async def test_auth_fields_keep_their_place_before_the_system_fields_added(client):
    res = await post(client, {"name": "people", "type": "auth", "fields": [{"name": "title", "type": "text"}]})
    assert [f["name"] for f in res.json()["fields"]] == [
        "id", "title", "password", "tokenKey", "email", "emailVisibility", "verified"]
    res = await client.patch("/api/collections/people", headers=client.su(), json={
        "fields": [{"name": "title", "type": "text"}, {"name": "email", "type": "text"}]})
    assert error_at(res, "fields") == {
        "code": "validation_system_field_change", "message": "System fields cannot be deleted or renamed."}


# -- defaults -------------------------------------------------------------------------------

async def test_a_new_auth_collection_has_pocketbases_defaults(client):
    res = await post(client, {"name": "people", "type": "auth"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["authToken"] == {"duration": 432000}
    assert body["verificationToken"] == {"duration": 86400}
    assert body["passwordResetToken"] == body["emailChangeToken"] == {"duration": 1800}
    assert body["fileToken"] == {"duration": 180}
    assert body["mfa"] == {"enabled": False, "duration": 600, "rule": ""}
    assert body["otp"]["duration"] == 180 and body["otp"]["length"] == 8
    assert body["passwordAuth"] == {"enabled": True, "identityFields": ["email"]}
    for key in ("verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate"):
        assert body[key] == AUTH_DEFAULTS[key]
        assert body[key]["body"].startswith("<p>Hello,</p>\n") and body[key]["body"].endswith("{APP_NAME} team\n</p>")
    assert body["otp"]["emailTemplate"]["subject"] == "OTP for {APP_NAME}"
    assert "{ALERT_INFO}" in body["authAlert"]["emailTemplate"]["body"]


async def test_the_default_users_collection(client):
    users = (await client.get("/api/collections/users", headers=client.su())).json()
    assert users["authToken"] == {"duration": 432000}
    assert users["mfa"]["duration"] == 600 and users["verificationToken"] == {"duration": 86400}
    assert [(f["name"], f["system"]) for f in users["fields"]] == [
        ("id", True), ("password", True), ("tokenKey", True), ("email", True), ("emailVisibility", True),
        ("verified", True), ("name", False), ("avatar", False), ("created", False), ("updated", False)]
    superusers = (await client.get("/api/collections/_superusers", headers=client.su())).json()
    assert superusers["authToken"] == {"duration": 86400}
    assert [f["name"] for f in superusers["fields"]][:6] == [
        "id", "password", "tokenKey", "email", "emailVisibility", "verified"]


def test_definitions_stored_by_older_versions_still_load():
    """What older versions accepted and stored is read back, not refused."""
    col = collection_from_stored({
        "id": "pbc_old", "name": "old_via_name", "type": "auth",
        "otp": {"enabled": True, "length": 3, "emailTemplate": {"subject": "", "body": ""}},
        "authAlert": {"enabled": "yes"}, "passwordAuth": {"enabled": True, "identityFields": ["username"]},
        "fields": [{"name": "null", "type": "text"}, {"name": "username", "type": "text"}],
    })
    assert col.auth["otp"]["length"] == 3
    assert col.auth["authAlert"] == AUTH_DEFAULTS["authAlert"]
    assert [f.name for f in col.fields][:3] == ["id", "null", "username"]
