"""``core.ports.Siblings`` for the worker processes of one machine: a shared mark in a
memory-mapped file.

The supervisor (``bastion serve --workers N``) creates the file; every worker maps it.
A worker that commits a schema or settings change writes 8 fresh random bytes there;
every worker compares the mark with the one it last caught up with before each request,
which costs one 8-byte read of shared memory. There is no lock: two workers writing at
once leave one of the two marks (or a torn mix of both), and either differs from what
every other worker has seen, which is all a reader needs to know.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

MARK_SIZE = 8


def create_mark_file(path: Path) -> None:
    """Create (or reset) the file the workers map."""
    path.write_bytes(os.urandom(MARK_SIZE))


class MappedSiblings:
    """Implements ``core.ports.Siblings`` over a file made by ``create_mark_file``."""

    def __init__(self, path: Path):
        with open(path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), MARK_SIZE)
        self._seen = self._map[:MARK_SIZE]

    def announce(self) -> None:
        fresh = os.urandom(MARK_SIZE)
        # A change announced by a sibling and not yet caught up with stays pending: only
        # a process that was up to date may count its own announcement as seen.
        up_to_date = self._map[:MARK_SIZE] == self._seen
        self._map[:MARK_SIZE] = fresh
        if up_to_date:
            self._seen = fresh

    def mark(self) -> bytes:
        return self._map[:MARK_SIZE]

    def stale(self) -> bool:
        return self._map[:MARK_SIZE] != self._seen

    def caught_up(self, mark: bytes) -> None:
        self._seen = mark

    def close(self) -> None:
        self._map.close()
