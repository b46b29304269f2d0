"""The examples of docs/extending.md run: its hook file is loaded on a test app, as the
guide's testing section shows, and does what the guide says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bastion.testing import load_hooks, temporary_app, test_client

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _blocks() -> dict[str, str]:
    """The guide's Python blocks by the file their first line names (``# bastion_hooks/x.py``)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return {m.group(1): b for b in blocks if (m := re.match(r"# (\S+\.py)", b))}


def _hook_files(folder: Path) -> None:
    folder.mkdir()
    hooks = {name: text for name, text in _blocks().items() if name.startswith("bastion_hooks/")}
    assert len(hooks) == 5, sorted(hooks)
    for name, text in hooks.items():
        (folder / Path(name).name).write_text(text)


async def test_the_guides_hook_file_works(tmp_path: Path) -> None:
    folder = tmp_path / "bastion_hooks"
    _hook_files(folder)
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


def test_the_guides_script_runs(tmp_path: Path) -> None:
    script = _blocks()["scripts/backfill.py"]
    (tmp_path / "backfill.py").write_text(script)
    (tmp_path / "bastion_hooks").mkdir()
    (tmp_path / "bastion_hooks" / "posts.py").write_text(_blocks()["bastion_hooks/posts.py"])
    setup = (
        "import asyncio\nfrom bastion import open_app\n"
        "async def main():\n"
        "    async with open_app('bastion_data') as app:\n"
        "        await app.collections.create({'name': 'posts', 'fields': [{'name': 'title', 'type': 'text'},"
        " {'name': 'slug', 'type': 'text'}]})\n"
        "asyncio.run(main())\n")
    for code in (setup, script):
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    check = (
        "import asyncio\nfrom bastion import open_app\nfrom bastion.core.access import AuthIdentity, RequestInfo\n"
        "from bastion.core.records.query import parse_list_params\n"
        "async def main():\n"
        "    async with open_app('bastion_data') as app:\n"
        "        su = RequestInfo(auth=AuthIdentity(app.registry.get('_superusers'), {'id': ''}))\n"
        "        page = await app.records.list(su, app.registry.get('posts'), parse_list_params({}))\n"
        "        print([(r['title'], r['slug']) for r in page['items']])\n"
        "asyncio.run(main())\n")
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[('Imported', 'imported')]", done.stdout + done.stderr
