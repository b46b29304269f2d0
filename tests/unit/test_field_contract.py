"""What each field class declares for the rest of the code, and the Record type."""

from __future__ import annotations

import pytest

from bastion.core.fields import FIELD_TYPES, FieldContext, field_from_dict
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection, parse_collection
from bastion.rules import Kind


def make(ftype: str, **options):
    errors: dict = {}
    defaults = {"select": {"values": ["a", "b", "c"]}, "relation": {"collectionId": "c1"},
                "autodate": {"onCreate": True}}
    f = field_from_dict({"name": "f", "type": ftype, **defaults.get(ftype, {}), **options}, errors)
    assert f is not None and not errors, errors
    return f


def test_every_type_is_registered_under_its_name():
    assert list(FIELD_TYPES) == ["text", "editor", "number", "bool", "email", "url", "date", "autodate",
                                 "select", "file", "relation", "json", "password", "geoPoint"]
    for cls in FIELD_TYPES.values():
        assert FIELD_TYPES[cls.TYPE] is cls


@pytest.mark.parametrize(("ftype", "kind"), [
    ("number", Kind.NUMBER), ("bool", Kind.BOOL), ("json", Kind.JSON), ("geoPoint", Kind.JSON),
    ("text", Kind.TEXT), ("email", Kind.TEXT), ("date", Kind.TEXT), ("select", Kind.TEXT),
])
def test_filter_kind(ftype, kind):
    assert make(ftype).FILTER_KIND is kind


def test_sortable_secret_and_server_set():
    sortable = {t for t, cls in FIELD_TYPES.items() if cls.SORTABLE}
    assert sortable == {"text", "number", "bool", "email", "url", "date", "autodate", "editor", "select",
                        "relation"}
    assert {t for t, cls in FIELD_TYPES.items() if cls.SECRET} == {"password"}
    assert {t for t, cls in FIELD_TYPES.items() if cls.SERVER_SET} == {"autodate"}


def test_modifier_keys():
    assert make("number").modifier_keys() == ("f+", "f-")
    for ftype in ("select", "relation", "file"):
        assert make(ftype).modifier_keys() == ("+f", "f+", "f-")
    for ftype in ("text", "bool", "json", "date"):
        assert make(ftype).modifier_keys() == ()


def test_modify_numbers_and_lists():
    ctx = FieldContext()
    assert make("number").modify(5, {"f+": 3, "f-": "1"}, ctx) == 7
    assert make("number").modify(None, {"f-": 2}, ctx) == -2
    tags = make("select", maxSelect=3)
    assert tags.modify(["b"], {"+f": "a", "f+": ["c", "b"], "f-": []}, ctx) == ["a", "b", "c"]
    assert tags.modify(["a", "b"], {"f-": "a"}, ctx) == ["b"]
    assert make("relation").modify("x", {"f+": "y"}, ctx) == "y"  # a single value keeps the last


def test_json_schema():
    assert make("number").json_schema() == {"type": "number"}
    assert make("bool").json_schema() == {"type": "boolean"}
    assert make("json").json_schema() == {}
    assert make("text", max=10).json_schema() == {"type": "string"}
    assert make("text", max=10).json_schema(for_input=True) == {"type": "string", "maxLength": 10}
    assert make("select").json_schema() == {"type": "string", "enum": ["a", "b", "c", ""]}
    assert make("select", maxSelect=2).json_schema() == {
        "type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}}
    assert make("file", maxSelect=2).json_schema() == {"type": "array", "items": {"type": "string"}}
    assert make("date").json_schema(for_input=True) != make("date").json_schema()
    assert make("autodate").json_schema(for_input=True) == make("date").json_schema()
    assert set(make("geoPoint").json_schema()["properties"]) == {"lon", "lat"}


def _posts() -> Collection:
    return parse_collection({"name": "posts", "type": "base", "fields": [
        {"name": "title", "type": "text"}, {"name": "score", "type": "number"},
        {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
    ]}, None, creating=True)


def test_record_is_a_read_only_mapping_of_stored_values():
    col = _posts()
    record = Record(col, {"id": "r1", "title": "hi", "score": 2.0, "tags": None})
    assert record.id == "r1" and record.collection is col
    assert dict(record) == {"id": "r1", "title": "hi", "score": 2.0, "tags": None}
    assert record["score"] == 2.0 and record.get("missing") is None and "title" in record
    with pytest.raises(KeyError):
        record["missing"]
    assert record.value("score") == 2 and isinstance(record.value("score"), int)
    assert record.value("tags") == []
    changed = record.with_values({"title": "new"})
    assert changed["title"] == "new" and record["title"] == "hi"
    assert repr(record) == "Record('posts', id='r1')"
