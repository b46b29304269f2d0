"""The settings API and the batch API it switches on."""

from __future__ import annotations

from bastion.testing import token_for
from tests.shapes import make_posts


async def enable_batch(client, **conf):
    res = await client.patch("/api/settings", headers=client.su(), json={"batch": {"enabled": True, **conf}})
    assert res.status_code == 200, res.text
    return res.json()


async def test_settings_api(client):
    assert (await client.get("/api/settings")).status_code == 401
    uid, headers = await token_for(client, "u@example.com")
    assert (await client.get("/api/settings", headers=headers)).status_code == 403
    body = (await client.get("/api/settings", headers=client.su())).json()
    assert body["batch"] == {"enabled": False, "maxRequests": 50, "timeout": 3, "maxBodySize": 0}
    assert "password" not in body["smtp"] and "secret" not in body["s3"]
    res = await client.patch("/api/settings", headers=client.su(),
                             json={"meta": {"appName": "Acme"}, "smtp": {"password": "hunter2"}})
    assert res.status_code == 200 and res.json()["meta"]["appName"] == "Acme"
    assert "password" not in res.json()["smtp"]
    assert res.json()["meta"]["senderName"] == "Support"  # partial merge keeps the rest
    bad = await client.patch("/api/settings", headers=client.su(), json={
        "batch": {"maxRequests": 0, "enabled": "yes"}, "smtp": {"port": 70000},
        "rateLimits": {"rules": [{"label": "not a label!", "duration": 1, "maxRequests": 1}]}})
    assert bad.status_code == 400
    data = bad.json()["data"]
    assert bad.json()["message"] == "An error occurred while saving the new settings."
    assert set(data["batch"]) == {"maxRequests", "enabled"} and "port" in data["smtp"]
    assert "label" in data["rateLimits"]["rules"]["0"]
    still = (await client.get("/api/settings", headers=client.su())).json()
    assert still["batch"]["enabled"] is False and still["meta"]["appName"] == "Acme"


async def test_settings_values_are_checked_as_pocketbase_does(client):
    bad = await client.patch("/api/settings", headers=client.su(), json={
        "meta": {"appURL": "x", "appName": " ", "senderAddress": "not-an-email"},
        "backups": {"cron": "61 * * * *"},
        "smtp": {"enabled": True, "host": "", "localName": "bad host!"},
        "s3": {"enabled": True, "bucket": "b", "endpoint": "ftp:/nope"}})
    assert bad.status_code == 400, bad.text
    data = bad.json()["data"]
    assert data["meta"]["appURL"]["code"] == "validation_is_url"
    assert data["meta"]["appName"]["code"] == "validation_required"
    assert data["meta"]["senderAddress"]["code"] == "validation_is_email"
    assert data["backups"]["cron"]["code"] == "validation_invalid_cron"
    assert "minute" in data["backups"]["cron"]["message"]
    assert data["smtp"]["host"]["code"] == "validation_required"
    assert data["smtp"]["localName"]["code"] == "validation_is_host"
    assert set(data["s3"]) == {"region", "endpoint", "accessKey", "secret"}
    assert "bucket" not in data["s3"]
    unchanged = (await client.get("/api/settings", headers=client.su())).json()
    assert unchanged["meta"]["appURL"] == "http://localhost:8090" and unchanged["backups"]["cron"] == ""
    for cron in ("0 3 * * *", "*/15 8-18 * * 1-5", "0,30 */2 1 1,6 0", "@daily"):
        res = await client.patch("/api/settings", headers=client.su(), json={"backups": {"cron": cron}})
        assert res.status_code == 200, (cron, res.text)
    for cron in ("* * * *", "* * * * * *", "5-1 * * * *", "* 24 * * *", "*/0 * * * *", "@often", "a b c d e"):
        res = await client.patch("/api/settings", headers=client.su(), json={"backups": {"cron": cron}})
        assert res.status_code == 400, cron
        assert res.json()["data"]["backups"]["cron"]["code"] == "validation_invalid_cron"
    ok = await client.patch("/api/settings", headers=client.su(), json={
        "meta": {"appURL": "https://app.example.com"},
        "smtp": {"enabled": True, "host": "smtp.example.com", "localName": "mail.example.com"}})
    assert ok.status_code == 200, ok.text


async def test_settings_survive_restart_and_reach_other_nodes(app, client):
    await enable_batch(client, maxRequests=7)
    app.settings.current = {}
    await app.settings.load()
    assert app.settings.current["batch"]["maxRequests"] == 7


async def test_batch_off_by_default(client):
    res = await client.post("/api/batch", json={"requests": []})
    assert res.status_code == 403 and res.json()["message"] == "Batch requests are not allowed."


async def test_batch_all_or_nothing(client):
    await make_posts(client)
    await enable_batch(client)
    first = (await client.post("/api/collections/posts/records", json={"title": "keep", "slug": "k"})).json()
    ok = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/posts/records?fields=title", "body": {"title": "a"}},
        {"method": "PATCH", "url": f"/api/collections/posts/records/{first['id']}", "body": {"views+": 2}},
        {"method": "PUT", "url": "/api/collections/posts/records", "body": {"id": "upsert000000001", "title": "u"}},
        {"method": "PUT", "url": "/api/collections/posts/records", "body": {"id": "upsert000000001", "title": "u2"}},
    ]})
    assert ok.status_code == 200, ok.text
    results = ok.json()
    assert [r["status"] for r in results] == [200, 200, 200, 200]
    assert results[0]["body"] == {"title": "a"}
    assert results[1]["body"]["views"] == 2 and results[3]["body"]["title"] == "u2"
    before = (await client.get("/api/collections/posts/records")).json()["totalItems"]
    failed = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "lost"}},
        {"method": "DELETE", "url": f"/api/collections/posts/records/{first['id']}"},
        {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": ""}},
    ]})
    assert failed.status_code == 400
    body = failed.json()
    assert body["message"] == "Batch transaction failed."
    inner = body["data"]["requests"]["2"]
    assert inner["code"] == "batch_request_failed"
    assert inner["response"]["data"]["title"]["code"] == "validation_required"
    after = (await client.get("/api/collections/posts/records")).json()["totalItems"]
    assert after == before  # the create and the delete were rolled back
    assert (await client.get(f"/api/collections/posts/records/{first['id']}")).status_code == 200


async def test_batch_respects_rules_and_limits(client):
    await make_posts(client, deleteRule=None)
    await enable_batch(client, maxRequests=2)
    rec = (await client.post("/api/collections/posts/records", json={"title": "x"})).json()
    res = await client.post("/api/batch", json={"requests": [
        {"method": "DELETE", "url": f"/api/collections/posts/records/{rec['id']}"}]})
    assert res.status_code == 400
    assert res.json()["data"]["requests"]["0"]["response"]["status"] == 403
    too_many = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": str(i)}} for i in range(3)]})
    assert too_many.status_code == 400
    bad = await client.post("/api/batch", json={"requests": [{"method": "GET", "url": "/api/collections"}]})
    assert bad.status_code == 400 and bad.json()["message"] == "Batch transaction failed."
    assert bad.json()["data"]["requests"]["0"]["code"] == "batch_request_failed"
    empty = await client.post("/api/batch", json={"requests": []})
    assert empty.status_code == 400 and empty.json()["data"]["requests"]["code"] == "validation_required"
    assert (await client.post("/api/batch", json={"requests": "nope"})).status_code == 400
    multipart = await client.post("/api/batch", files={"@jsonPayload": (None, '{"requests": [{"method": "POST", '
                                  '"url": "/api/collections/posts/records", "body": {"title": "mp"}}]}')})
    assert multipart.status_code == 200, multipart.text
    su = await client.post("/api/batch", headers=client.su(), json={"requests": [
        {"method": "DELETE", "url": f"/api/collections/posts/records/{rec['id']}",
         "headers": {"Authorization": "ignored"}}]})
    assert su.status_code == 200 and su.json() == [{"status": 204, "body": None}]
