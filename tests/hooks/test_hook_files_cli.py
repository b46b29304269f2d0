"""Hook files with real processes: a broken file stops the start naming its file and
line (exit 2); ``serve --dev`` loads a changed file again without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bastion.testing import Server, run_cli

EMAIL, PASSWORD = "root@example.com", "hooks-password-1"
HOOK = """
def setup(app):
    @app.on_record_create("notes")
    async def stamp(e):
        e.body["slug"] = "{slug}"
        await e.next()
"""


def test_a_broken_hook_file_stops_the_start(tmp_path: Path) -> None:
    hooks = tmp_path / "bastion_hooks"
    hooks.mkdir()
    (hooks / "broken.py").write_text("import os\n\ndef setup(app):\n    app.no_such_thing()\n")
    done = run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", "data", cwd=tmp_path)
    assert done.returncode == 2
    assert "broken.py, line 4: AttributeError" in done.stderr
    assert "Traceback" not in done.stderr
    (hooks / "broken.py").write_text("def setup(app)\n")  # a syntax error
    done = run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", "data", cwd=tmp_path)
    assert done.returncode == 2 and "broken.py, line 1: SyntaxError" in done.stderr


def test_dev_reloads_a_changed_hook_file(tmp_path: Path) -> None:
    hooks = tmp_path / "bastion_hooks"
    hooks.mkdir()
    (hooks / "stamp.py").write_text(HOOK.format(slug="one"))
    assert run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", "data", cwd=tmp_path).returncode == 0
    server = Server(tmp_path, "--dir", "data", "--dev")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            token = http.post("/api/collections/_superusers/auth-with-password",
                              json={"identity": EMAIL, "password": PASSWORD}).json()["token"]
            res = http.post("/api/collections", headers={"Authorization": token}, json={
                "name": "notes", "createRule": "", "fields": [
                    {"name": "title", "type": "text"}, {"name": "slug", "type": "text"}]})
            assert res.status_code == 200, res.text
            assert http.post("/api/collections/notes/records", json={"title": "a"}).json()["slug"] == "one"
            time.sleep(1.1)  # a new modification time
            (hooks / "stamp.py").write_text(HOOK.format(slug="two"))
            deadline = time.monotonic() + 10
            while http.post("/api/collections/notes/records", json={"title": "b"}).json()["slug"] != "two":
                assert time.monotonic() < deadline, "the changed hook file was not loaded again"
                time.sleep(0.2)
            (hooks / "stamp.py").write_text("def setup(app):\n    raise RuntimeError('half written')\n")
            time.sleep(2.5)
            assert http.post("/api/collections/notes/records", json={"title": "c"}).json()["slug"] == "two"
        assert "hook files not reloaded" in server.log.read_text()
    finally:
        server.stop()
