"""What outlives a slow full collection is frozen, and thawed again on stop."""

from __future__ import annotations

import asyncio
import gc

import pytest

from bastion.cli import gc_tuning


async def test_a_slow_full_collection_freezes_the_survivors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_tuning, "SLOW_FULL", 0.0)  # every full collection counts as slow
    monkeypatch.setattr(gc_tuning, "CHECK_EVERY", 0.01)
    task = asyncio.create_task(gc_tuning.freeze_long_lived())
    await asyncio.sleep(0.05)
    gc.collect()
    for _ in range(200):
        if gc.get_freeze_count():
            break
        await asyncio.sleep(0.01)
    assert gc.get_freeze_count() > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.get_freeze_count() == 0  # a stop thaws everything
