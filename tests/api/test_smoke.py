async def test_health(client):
    res = await client.get("/api/health")
    assert res.status_code == 200
    assert res.json() == {"code": 200, "message": "API is healthy.", "data": {}}
