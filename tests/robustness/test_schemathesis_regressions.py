"""Plain tests for what schema fuzzing found, so each stays fixed without the fuzzer.

Each runs against the in-process app on every reachable backend; the fuzzing itself is
in test_schemathesis.py.
"""

from __future__ import annotations

import re

from openapi_spec_validator import validate


async def _links(client):
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "links", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [{"name": "site", "type": "url"}, {"name": "contact", "type": "email"},
                   {"name": "due", "type": "date"}, {"name": "place", "type": "geoPoint"}]})
    assert res.status_code == 200, res.text


async def test_url_with_a_control_character_is_refused(client):
    # Found as "ftp://\U000481cc\x80": stored, then not a url by the published pattern.
    # The rule is PocketBase's (see tests/compat/test_record_values.py): lower-case
    # schemes only, and host characters from U+00A1 to U+FFFF are letters to it.
    await _links(client)
    for bad in ("ftp://\U000481cc\x80", "https://exa\x85mple.com", "https://x.com/\x7f", "FTP://files.example.com"):
        res = await client.post("/api/collections/links/records", json={"site": bad})
        assert res.status_code == 400, (bad, res.text)
        assert res.json()["data"]["site"]["code"] == "validation_invalid_url"
    for good in ("https://example.com/a?b=c#d", "http://a\u2003b.com", "http://bücher.example/ß"):
        res = await client.post("/api/collections/links/records", json={"site": good})
        assert res.status_code == 200, (good, res.text)
        assert res.json()["site"] == good


async def test_document_describes_zero_values_of_email_url_and_date(client):
    # An unset email, url or date reads back as "": the document must allow it.
    await _links(client)
    record = (await client.post("/api/collections/links/records", json={})).json()
    doc = (await client.get("/api/openapi.json")).json()
    validate(doc)
    props = doc["components"]["schemas"]["links"]["properties"]
    for name in ("site", "contact", "due"):
        assert record[name] == ""
        assert {"const": ""} in props[name]["anyOf"], name
    dated = (await client.post("/api/collections/links/records", json={"due": "2026-01-02T03:04:05+02:00"})).json()
    assert re.match(props["due"]["anyOf"][1]["pattern"], dated["due"]), dated["due"]


async def test_collection_field_name_of_the_wrong_type_is_a_validation_error(client):
    # Found as {"fields": [{"name": {}, "type": "text"}]}: an unhashable name was a 500.
    for name in ({}, [], 5, None):
        for path, method in (("/api/collections", "POST"), ("/api/collections/import", "PUT")):
            col = {"name": "odd", "fields": [{"name": name, "type": "text"}]}
            body = col if method == "POST" else {"collections": [col]}
            res = await client.request(method, path, headers=client.su(), json=body)
            assert res.status_code == 400, (name, path, res.text)
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "odd", "fields": [{"name": {}, "type": "text"}]})
    assert res.json()["data"]["fields"]["1"]["name"]["code"] == "validation_invalid_value"


async def test_collection_type_of_the_wrong_type_is_refused(client):
    # An empty object or list was taken for "no type" and created a base collection.
    # As in PocketBase, a type that is no string makes the body unreadable.
    for ctype in ({}, [], 0, False):
        res = await client.post("/api/collections", headers=client.su(), json={"name": "odd", "type": ctype})
        assert res.status_code == 400, (ctype, res.text)
        assert res.json()["message"] == "Failed to load the collection type data due to invalid formatting."
    res = await client.post("/api/collections", headers=client.su(), json={"name": "odd", "type": "nope"})
    assert res.json()["data"]["type"]["code"] == "validation_in_invalid"
    res = await client.post("/api/collections", headers=client.su(), json={"name": "odd", "type": ""})
    assert res.status_code == 200 and res.json()["type"] == "base"


async def test_dates_before_year_1000_keep_four_digit_years(client):
    # Found as "0183-08-28T07:03:19.233Z" stored as "183-08-28 07:03:19.233Z": not the wire
    # format, unreadable by the date parser, and out of order in string comparisons.
    await _links(client)
    created = await client.post("/api/collections/links/records", json={"due": "0183-08-28T07:03:19.233Z"})
    assert created.status_code == 200, created.text
    assert created.json()["due"] == "0183-08-28 07:03:19.233Z"
    rid = created.json()["id"]
    again = await client.patch(f"/api/collections/links/records/{rid}", json={"due": created.json()["due"]})
    assert again.status_code == 200 and again.json()["due"] == "0183-08-28 07:03:19.233Z"
    await client.post("/api/collections/links/records", json={"due": "1999-01-01 00:00:00.000Z"})
    page = (await client.get("/api/collections/links/records", params={
        "filter": 'due != ""', "sort": "due"})).json()
    assert [r["due"][:4] for r in page["items"]] == ["0183", "1999"]
    found = await client.get("/api/collections/links/records", params={"filter": 'due < "1000-01-01"'})
    assert [r["id"] for r in found.json()["items"]] == [rid]


async def test_date_option_out_of_range_after_utc_conversion_is_a_validation_error(client):
    # Year 1 at +01:00 is year 0 in UTC (and 9999 at -01:00 is 10000): a 500 before.
    for bound in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        res = await client.post("/api/collections", headers=client.su(), json={
            "name": "dated", "fields": [{"name": "d", "type": "date", "min": bound}]})
        assert res.status_code == 400, (bound, res.text)
        assert res.json()["data"]["fields"]["1"]["min"]["code"] == "validation_invalid_date"


async def test_auth_collection_with_an_invalid_name_is_a_validation_error(client):
    # Found as {"type": "auth"}: the generated email/tokenKey indexes named an empty table
    # and could not be read back (a 500); renaming users to "" did the same.
    # The codes are PocketBase's; a name that is no string makes the body unreadable.
    cases = ((None, "validation_required"), ("", "validation_required"), ("a b", "validation_match_invalid"),
             ("x" * 300, "validation_length_out_of_range"))
    for name, code in cases:
        body = {"type": "auth"} if name is None else {"type": "auth", "name": name}
        res = await client.post("/api/collections", headers=client.su(), json=body)
        assert res.status_code == 400, (name, res.text)
        assert res.json()["data"]["name"]["code"] == code
    res = await client.post("/api/collections", headers=client.su(), json={"type": "auth", "name": {}})
    assert res.status_code == 400 and res.json()["data"] == {}, res.text
    for name, code in (("", "validation_required"), ("a-b", "validation_match_invalid")):
        res = await client.patch("/api/collections/users", headers=client.su(), json={"name": name})
        assert res.status_code == 400, (name, res.text)
        assert res.json()["data"]["name"]["code"] == code
    res = await client.patch("/api/collections/users", headers=client.su(), json={"name": {}})
    assert res.status_code == 400 and res.json()["data"] == {}, res.text
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "", "indexes": ["CREATE INDEX idx_x ON t (id)"]})
    assert res.status_code == 400 and "name" in res.json()["data"]


async def test_collection_id_of_the_wrong_type_is_refused(client):
    # An empty object was taken for "no id" and a generated id used instead.
    # As in PocketBase, an id that is no string makes the body unreadable.
    for cid in ({}, [], 0):
        res = await client.post("/api/collections", headers=client.su(), json={"name": "odd", "id": cid})
        assert res.status_code == 400, (cid, res.text)
        assert res.json()["message"] == "Failed to load the submitted data due to invalid formatting."
