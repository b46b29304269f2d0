"""Cron jobs from hooks: PocketBase's expressions, each due minute run once across
processes sharing the database (two Apps stand for two nodes or workers), and
PocketBase's ``/api/crons`` to list them and run one now."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bastion.core.app import App
from bastion.core.hooks.cron import Schedule
from bastion.testing import TemporaryDatabase, TestClient, app_on


@pytest.mark.parametrize(("expression", "due", "not_due"), [
    ("* * * * *", "2026-12-08 10:07", None),
    ("*/5 * * * *", "2026-12-08 10:05", "2026-12-08 10:07"),
    ("5/15 * * * *", "2026-12-08 10:50", "2026-12-08 10:45"),
    ("0 9-17 * * 1-5", "2026-12-08 09:00", "2026-12-06 09:00"),  # a Tuesday; a Sunday
    ("30 2 1 * *", "2026-12-01 02:30", "2026-12-02 02:30"),
    ("@hourly", "2026-12-08 11:00", "2026-12-08 11:01"),
    ("@weekly", "2026-12-06 00:00", "2026-12-07 00:00"),
])
def test_schedules(expression: str, due: str, not_due: str | None) -> None:
    schedule = Schedule.parse(expression)
    assert schedule.is_due(datetime.strptime(due, "%Y-%m-%d %H:%M").replace(tzinfo=UTC))
    if not_due:
        assert not schedule.is_due(datetime.strptime(not_due, "%Y-%m-%d %H:%M").replace(tzinfo=UTC))
    with pytest.raises(ValueError, match="invalid cron expression"):
        Schedule.parse("61 * * * *")


@pytest.mark.backends
async def test_a_due_job_runs_once_across_processes(
        app: App, database: tuple[TemporaryDatabase, str], tmp_path: Path) -> None:
    other = app_on(database[0], tmp_path / "other")
    await other.start(apply_migrations=False)
    runs: list[str] = []
    try:
        for name, each in (("a", app), ("b", other)):
            @each.cron("tick", "*/10 * * * *")
            async def tick(name: str = name) -> None:
                runs.append(name)

        minute = datetime(2026, 12, 8, 10, 20, tzinfo=UTC)
        started = await asyncio.gather(app.crons.tick(minute), other.crons.tick(minute))
        assert sorted(len(s) for s in started) == [0, 1]  # one process claimed the minute
        await asyncio.sleep(0.05)
        assert len(runs) == 1
        assert await app.crons.tick(minute) == []  # the same minute again: already run
        assert await other.crons.tick(datetime(2026, 12, 8, 10, 21, tzinfo=UTC)) == []  # not due
        assert len(await app.crons.tick(datetime(2026, 12, 8, 10, 30, tzinfo=UTC))) == 1
    finally:
        await other.close()


@pytest.mark.backends
async def test_crons_api(app: App, client: TestClient) -> None:
    ran = asyncio.Event()

    @app.cron("report", "@daily")
    async def report() -> None:
        ran.set()

    @app.cron("cleanup", "*/5 * * * *")
    async def cleanup() -> None:
        raise RuntimeError("a failing job is logged")

    assert (await client.get("/api/crons")).status_code == 401
    listed = await client.get("/api/crons", headers=client.su())
    assert listed.json() == [{"id": "cleanup", "expression": "*/5 * * * *"}, {"id": "report", "expression": "@daily"}]
    assert (await client.post("/api/crons/report", headers=client.su())).status_code == 204
    await asyncio.wait_for(ran.wait(), 5)
    missing = await client.post("/api/crons/nope", headers=client.su())
    assert missing.status_code == 404 and missing.json()["message"] == "Missing or invalid cron job."
    assert (await client.post("/api/crons/cleanup", headers=client.su())).status_code == 204
    with pytest.raises(ValueError, match="declared twice"):
        app.cron("report", "@daily")(report)
