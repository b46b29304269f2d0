"""Background jobs from hooks, on every engine: queued in a write's transaction (and
not when it rolls back), run once across workers, retried with backoff until their
attempts run out, cancelled at their timeout, kept across a restart, and visible
through ``/api/jobs``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bastion.core.app import App
from bastion.core.errors import BadRequest
from bastion.core.hooks import jobs as jobs_module
from bastion.core.hooks.jobs import Job
from bastion.core.hooks.records import RecordEvent
from bastion.testing import TemporaryDatabase, TestClient, app_on

pytestmark = pytest.mark.backends


async def _until(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")


async def test_jobs_queued_by_a_hook_run_once_and_follow_the_write(
        app: App, client: TestClient, database: tuple[TemporaryDatabase, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_module, "POLL_EVERY", 0.05)
    ran: list[Any] = []
    res = await client.post("/api/collections", headers=client.su(), json={
        "name": "notes", "createRule": "", "fields": [{"name": "title", "type": "text"}]})
    assert res.status_code == 200, res.text
    other = app_on(database[0], tmp_path / "other")  # a second worker or node on the same database
    await other.start(apply_migrations=False)
    try:
        for each in (app, other):
            @each.job("welcome")
            async def welcome(job: Job) -> None:
                ran.append(job.payload["title"])

        @app.on_record_create("notes")
        async def queue(e: RecordEvent) -> None:
            await e.next()
            assert e.record is not None
            await app.jobs.enqueue("welcome", {"title": e.record["title"]}, conn=e.conn)
            if e.record["title"] == "undone":
                raise BadRequest("refused after queueing")

        assert (await client.post("/api/collections/notes/records", json={"title": "undone"})).status_code == 400
        for i in range(6):
            assert (await client.post("/api/collections/notes/records", json={"title": f"t{i}"})).status_code == 200
        workers = [asyncio.create_task(app.jobs.run_forever()), asyncio.create_task(other.jobs.run_forever())]
        try:
            async def all_done() -> bool:
                return [j["state"] for j in await app.jobs.list()] == ["done"] * 6
            await _until(all_done)
        finally:
            for w in workers:
                w.cancel()
        assert sorted(ran) == [f"t{i}" for i in range(6)]  # each once, the undone write's never
        listed = await client.get("/api/jobs", params={"state": "done"}, headers=client.su())
        assert len(listed.json()) == 6 and listed.json()[0]["name"] == "welcome"
        assert (await client.get("/api/jobs", headers={"Authorization": ""})).status_code == 401
        assert (await client.get("/api/jobs", params={"state": "odd"}, headers=client.su())).status_code == 400
        one = listed.json()[0]["id"]
        assert (await client.get(f"/api/jobs/{one}", headers=client.su())).json()["attempts"] == 1
        assert (await client.get("/api/jobs/nope", headers=client.su())).status_code == 404
    finally:
        await other.close()


async def test_retries_backoff_timeout_and_giving_up(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_module, "POLL_EVERY", 0.05)
    tries: list[int] = []

    @app.job("flaky", retries=2, backoff=1.0)
    async def flaky(job: Job) -> None:
        tries.append(job.attempt)
        if job.attempt < 3:
            raise RuntimeError(f"attempt {job.attempt} failed")

    @app.job("stuck", retries=1, timeout=0.2, backoff=1.0)
    async def stuck(job: Job) -> None:
        await asyncio.sleep(10)

    flaky_id = await app.jobs.enqueue("flaky", {})
    stuck_id = await app.jobs.enqueue("stuck", None)
    with pytest.raises(ValueError, match="no job kind"):
        await app.jobs.enqueue("unknown", {})
    worker = asyncio.create_task(app.jobs.run_forever())
    try:
        async def settled() -> bool:
            a, b = await app.jobs.get(flaky_id), await app.jobs.get(stuck_id)
            return a is not None and b is not None and a["state"] == "done" and b["state"] == "failed"
        await _until(settled, 15)
    finally:
        worker.cancel()
    assert tries == [1, 2, 3]
    failed = await app.jobs.get(stuck_id)
    assert failed is not None and failed["attempts"] == 2 and failed["lastError"] == "timed out after 0.2 s"


async def test_a_queued_job_survives_a_restart(
        app: App, database: tuple[TemporaryDatabase, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_module, "POLL_EVERY", 0.05)

    @app.job("later")
    async def later(job: Job) -> None:
        raise AssertionError("this process never runs its worker")

    job_id = await app.jobs.enqueue("later", {"n": 1})  # this process stops without running it
    done = asyncio.Event()
    restarted = app_on(database[0], tmp_path / "again")
    await restarted.start(apply_migrations=False)

    @restarted.job("later")
    async def later_again(job: Job) -> None:
        assert job.payload == {"n": 1}
        done.set()

    worker = asyncio.create_task(restarted.jobs.run_forever())
    try:
        await asyncio.wait_for(done.wait(), 10)

        async def recorded() -> bool:
            return (await app.jobs.get(job_id) or {}).get("state") == "done"
        await _until(recorded)
    finally:
        worker.cancel()
        await restarted.close()
