"""The CLI end to end: a real ``bastion serve`` process, superuser and migrate commands."""

from __future__ import annotations

import sys

import httpx
import pytest

from bastion.testing import Server, run_cli


def test_help_on_every_command(tmp_path):
    for args in (["--help"], ["serve", "--help"], ["superuser", "--help"], ["superuser", "upsert", "--help"],
                 ["migrate", "--help"], ["migrate", "up", "--help"], ["migrate", "down", "--help"],
                 ["migrate", "history", "--help"], ["migrate", "create", "--help"]):
        res = run_cli(*args, cwd=tmp_path)
        assert res.returncode == 0, (args, res.stderr)
        assert "Usage" in res.stdout


def test_serve_superuser_and_crud_over_http(tmp_path):
    server = Server(tmp_path, "--dir", "data")
    try:
        assert (tmp_path / "data" / "data.db").exists()
        out = server.log.read_text()
        assert "bastion superuser upsert EMAIL PASSWORD" in out
        res = run_cli("superuser", "upsert", "admin@example.com", "secret-pass-1", "--dir", "data", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "created" in res.stdout
        again = run_cli("superuser", "upsert", "admin@example.com", "secret-pass-2", "--dir", "data", cwd=tmp_path)
        assert "updated" in again.stdout
        with httpx.Client(base_url=server.url, timeout=10) as http:
            old = http.post("/api/collections/_superusers/auth-with-password",
                            json={"identity": "admin@example.com", "password": "secret-pass-1"})
            assert old.status_code == 400
            auth = http.post("/api/collections/_superusers/auth-with-password",
                             json={"identity": "admin@example.com", "password": "secret-pass-2"})
            assert auth.status_code == 200, auth.text
            h = {"Authorization": auth.json()["token"]}
            col = http.post("/api/collections", headers=h, json={
                "name": "notes", "listRule": "", "viewRule": "", "createRule": "",
                "fields": [{"name": "text", "type": "text", "required": True}]})
            assert col.status_code == 200, col.text
            rec = http.post("/api/collections/notes/records", json={"text": "hello"}).json()
            assert http.get(f"/api/collections/notes/records/{rec['id']}").json()["text"] == "hello"
            assert http.get("/api/openapi.json").json()["paths"]["/api/collections/notes/records"]
            assert "api-reference" in http.get("/api/docs").text
            assert http.get("/api/nowhere").status_code == 404
    finally:
        assert server.stop() == 0
    assert list((tmp_path / "bastion_migrations").glob("*_create_collection_notes.py"))


def test_migrate_commands(tmp_path):
    server = Server(tmp_path, "--dir", "data")
    try:
        run_cli("superuser", "upsert", "a@example.com", "secret-pass-1", "--dir", "data", cwd=tmp_path)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            token = http.post("/api/collections/_superusers/auth-with-password",
                              json={"identity": "a@example.com", "password": "secret-pass-1"}).json()["token"]
            res = http.post("/api/collections", headers={"Authorization": token},
                            json={"name": "items", "fields": [{"name": "n", "type": "number"}]})
            assert res.status_code == 200
    finally:
        server.stop()
    history = run_cli("migrate", "history", "--dir", "data", cwd=tmp_path)
    assert "applied" in history.stdout and "create_collection_items" in history.stdout
    down = run_cli("migrate", "down", "--dir", "data", cwd=tmp_path)
    assert down.returncode == 0 and "Reverted" in down.stdout
    assert "pending" in run_cli("migrate", "history", "--dir", "data", cwd=tmp_path).stdout
    up = run_cli("migrate", "up", "--dir", "data", cwd=tmp_path)
    assert "Applied" in up.stdout
    created = run_cli("migrate", "create", "add things", "--dir", "data", cwd=tmp_path)
    assert created.returncode == 0 and "add_things" in created.stdout
    bad = run_cli("migrate", "create", "../../etc", "--dir", "data", cwd=tmp_path)
    assert bad.returncode != 0


def test_bad_flags_give_clear_errors(tmp_path):
    res = run_cli("serve", "--http", "nonsense", cwd=tmp_path)
    assert res.returncode != 0 and "--http" in res.stderr
    res = run_cli("serve", "--database-url", "oracle://x", cwd=tmp_path)
    assert res.returncode != 0 and "Unsupported database URL" in res.stderr
    res = run_cli("serve", "--encryption-key", "too-short", cwd=tmp_path)
    assert res.returncode == 2 and "--encryption-key must be at least 32 characters" in res.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="signals as on Linux")
def test_sigterm_stops_cleanly(tmp_path):
    server = Server(tmp_path, "--dir", "data")
    assert server.stop() == 0
