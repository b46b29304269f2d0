"""A blocking SSE reader for tests against real servers: reads a ``/api/realtime``
stream on a thread and collects its events."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx


class Stream:
    def __init__(self, url: str):
        self.events: list[tuple[str, dict[str, Any], float]] = []
        self.ended = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self._connected = threading.Event()
        self.client_id = ""
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()
        assert self._connected.wait(10), "no PB_CONNECT within 10 s"

    def _read(self, url: str) -> None:
        try:
            with self._client.stream("GET", f"{url}/api/realtime") as res:
                block: dict[str, str] = {}
                for line in res.iter_lines():
                    if line:
                        key, _, value = line.partition(":")
                        block[key] = value
                        continue
                    data = json.loads(block.get("data", "{}"))
                    if block.get("event") == "PB_CONNECT":
                        self.client_id = data["clientId"]
                        self._connected.set()
                    else:
                        self.events.append((block.get("event", ""), data, time.monotonic()))
                    block = {}
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait_for(self, count: int, seconds: float = 10) -> list[tuple[str, dict[str, Any], float]]:
        deadline = time.monotonic() + seconds
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.events

    def close(self) -> None:
        self._client.close()
