"""Two ``bastion serve`` nodes on one PostgreSQL database: a change made through one is
in force on the other within milliseconds (LISTEN/NOTIFY), not after the 2 s poll."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bastion.testing import Server, run_cli

EMAIL, PASSWORD = "root@example.com", "nodes-pass-1234"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_rule_changed_on_one_node_holds_on_the_other_within_milliseconds(tmp_path: Path, database_url: str) -> None:
    args = ["--dir", "data", "--database-url", database_url]
    assert run_cli("superuser", "upsert", EMAIL, PASSWORD, *args, cwd=tmp_path).returncode == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = Server(tmp_path / "a", *args), Server(tmp_path / "b", *args)
    try:
        token = httpx.post(f"{a.url}/api/collections/_superusers/auth-with-password",
                           json={"identity": EMAIL, "password": PASSWORD}, timeout=10).json()["token"]
        su = {"Authorization": token}
        r = httpx.post(f"{a.url}/api/collections", headers=su, timeout=10,
                       json={"name": "notes", "listRule": None, "fields": [{"name": "t", "type": "text"}]})
        assert r.status_code == 200, r.text
        time.sleep(0.5)
        lags = []
        for round_ in range(6):
            public = round_ % 2 == 0
            r = httpx.patch(f"{a.url}/api/collections/notes", headers=su, timeout=10,
                            json={"listRule": "" if public else None})
            assert r.status_code == 200, r.text
            started = time.monotonic()
            while (httpx.get(f"{b.url}/api/collections/notes/records", timeout=10).status_code
                   != (200 if public else 403)):
                assert time.monotonic() - started < 1.0, f"round {round_}: node b still on the old rule"
                time.sleep(0.005)
            lags.append(time.monotonic() - started)
        assert max(lags) < 1.0  # the poll alone would take up to 2 s
    finally:
        a.stop()
        b.stop()
