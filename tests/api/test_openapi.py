"""The OpenAPI 3.1 document is valid and follows the live schema."""

from __future__ import annotations

from openapi_spec_validator import validate

from tests.shapes import make_posts


async def test_document_is_valid_and_live(client):
    await make_posts(client)
    await client.post("/api/collections", headers=client.su(), json={
        "name": "every", "fields": [
            {"name": t, "type": t, **extra} for t, extra in (
                ("text", {}), ("editor", {}), ("number", {}), ("bool", {}), ("email", {}), ("url", {}),
                ("date", {}), ("autodate", {"onCreate": True}), ("json", {}), ("geoPoint", {}),
                ("select", {"values": ["a", "b"], "maxSelect": 2}), ("file", {"maxSelect": 3}),
                ("relation", {"collectionId": "posts"}), ("password", {}))]})
    doc = (await client.get("/api/openapi.json", headers=client.su())).json()  # the whole API
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert "/api/collections/every/records/{id}" in doc["paths"]
    props = doc["components"]["schemas"]["every"]["properties"]
    assert props["number"] == {"type": "number"} and props["select"]["type"] == "array"
    assert "password" not in props
    assert "/api/collections/posts/aggregate" in doc["paths"]
    page = await client.get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in page.text
    # "every" has only null rules: a guest is told nothing about it
    guest = (await client.get("/api/openapi.json")).json()
    validate(guest)
    assert not [path for path in guest["paths"] if path.startswith("/api/collections/every/")]
    assert "every" not in guest["components"]["schemas"] and "/api/collections/posts/records" in guest["paths"]
