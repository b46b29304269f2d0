"""The examples of docs/extending.md run: its hook file is loaded on a test app, as the
guide's testing section shows, and does what the guide says."""

from __future__ import annotations

import re
from pathlib import Path

from bastion.testing import load_hooks, temporary_app, test_client

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


async def test_the_guides_hook_file_works(tmp_path: Path) -> None:
    hook_file, test_example, routes, crons, jobs, accounts = _blocks()
    assert "def setup(app)" in hook_file and "load_hooks" in test_example
    folder = tmp_path / "bastion_hooks"
    folder.mkdir()
    (folder / "posts.py").write_text(hook_file)
    (folder / "hello.py").write_text(routes)
    (folder / "reports.py").write_text(crons)
    (folder / "welcome.py").write_text(jobs)
    (folder / "accounts.py").write_text(accounts)
    async with temporary_app(folder=tmp_path / "app") as app:
        load_hooks(app, folder)
        async with test_client(app) as client:
            res = await client.post("/api/collections", headers=client.su(), json={
                "name": "posts", "listRule": "", "createRule": "",
                "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"}]})
            assert res.status_code == 200, res.text
            made = await client.post("/api/collections/posts/records", json={"title": "Hello World"})
            assert made.status_code == 200 and made.json()["slug"] == "hello-world"
            spam = await client.post("/api/collections/posts/records", json={"title": "Buy SPAM now"})
            assert spam.status_code == 400 and spam.json()["data"]["title"]["code"] == "validation_spam"
            listed = (await client.get("/api/collections/posts/records")).json()
            assert listed["served_by"] == "my hook" and len(listed["items"]) == 1
            hello = await client.get("/api/hello/ada")
            assert hello.json() == {"hello": "ada", "signed_in": False}
            post = listed["items"][0]["id"]
            assert (await client.post(f"/api/posts/{post}/archive", json={})).status_code == 401
            res = await client.post(f"/api/posts/{post}/archive", json={}, headers=client.su())
            assert res.status_code == 400 and res.json()["message"] == "Give a reason."
            res = await client.post(f"/api/posts/{post}/archive", json={"reason": "old"}, headers=client.su())
            assert res.status_code == 204
            jobs = (await client.get("/api/crons", headers=client.su())).json()
            assert jobs == [{"id": "nightly-report", "expression": "0 3 * * *"}]
            assert (await client.post("/api/crons/nightly-report", headers=client.su())).status_code == 204
            signed_up = await client.post("/api/collections/users/records", json={
                "email": "new@example.com", "password": "password-123", "passwordConfirm": "password-123"})
            assert signed_up.status_code == 200, signed_up.text
            queued = (await client.get("/api/jobs", headers=client.su())).json()
            assert [(j["name"], j["payload"], j["state"]) for j in queued] == [
                ("welcome-mail", {"email": "new@example.com"}, "queued")]
            signed_in = await client.post("/api/collections/users/auth-with-password", json={
                "identity": "new@example.com", "password": "password-123"})
            assert signed_in.status_code == 200 and signed_in.json()["meta"] == {"welcome": "back"}
