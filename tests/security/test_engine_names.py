"""Names an engine keeps for itself answer 400, never 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["ctid", "xmin", "tableoid", "cmax"])
async def test_postgres_system_column_names_are_refused_as_field_names(client, backend, name):
    made = await client.post("/api/collections", headers=client.su(), json={
        "name": "boxes", "fields": [{"name": "label", "type": "text"}, {"name": name, "type": "number"}]})
    if backend.name != "postgres":  # a plain name elsewhere
        assert made.status_code == 200, made.text
        return
    assert made.status_code == 400, made.text
    errors = made.json()["data"]["fields"].values()
    assert [e["name"]["code"] for e in errors] == ["validation_field_name_reserved"]
    ok = await client.post("/api/collections", headers=client.su(), json={
        "name": "boxes", "fields": [{"name": "label", "type": "text"}]})
    assert ok.status_code == 200
    field_list = [*ok.json()["fields"], {"name": name.upper(), "type": "text"}]
    renamed = await client.patch("/api/collections/boxes", headers=client.su(), json={"fields": field_list})
    assert renamed.status_code == 400, renamed.text
