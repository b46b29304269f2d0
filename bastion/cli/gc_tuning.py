"""Garbage collection for a server holding many long-lived connections.

Each realtime stream keeps about a hundred objects alive (its connection, parser, task,
request and client). Python's full collections walk every one of them: with 10,000
streams a full collection paused the process for 0.3 to 0.7 s, several times a minute
while streams came and went, which every request (and every event) waited out.

So once a full collection has taken longer than ``SLOW_FULL`` seconds, what survived it
(long-lived by definition) is frozen (``gc.freeze``): later collections skip it, and it
is still freed by reference counting when its stream ends. Cycles among frozen objects
that became garbage wait for the next thaw, every ``THAW_EVERY`` seconds, when
everything frozen goes back to the oldest generation for one full collection to see.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

SLOW_FULL = 0.05
THAW_EVERY = 900.0
CHECK_EVERY = 1.0


class _FullCollections:
    """A ``gc.callbacks`` entry noting full collections slower than ``SLOW_FULL``."""

    def __init__(self) -> None:
        self.slow = False
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif time.perf_counter() - self._started > SLOW_FULL:
            self.slow = True


async def freeze_long_lived() -> None:
    """Run until cancelled: freeze what outlived a slow full collection; thaw now and then."""
    watch = _FullCollections()
    gc.callbacks.append(watch)
    thawed = time.monotonic()
    try:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            if time.monotonic() - thawed >= THAW_EVERY:
                gc.unfreeze()
                thawed = time.monotonic()
            elif watch.slow:
                watch.slow = False
                gc.freeze()
    finally:
        gc.callbacks.remove(watch)
        gc.unfreeze()
