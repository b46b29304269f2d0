"""Large test data made on the fly: a file-like that yields ``size`` bytes it never holds."""

from __future__ import annotations

import hashlib


class PatternFile:
    """A read-only file of ``size`` bytes from a seeded pattern, made as it is read.

    ``sha256`` is the digest of everything read so far."""

    def __init__(self, size: int, seed: bytes = b"bastion") -> None:
        self.size = size
        self.position = 0
        self._block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
        self._digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.position
        n = left if n is None or n < 0 else min(n, left)
        pieces, made = [], 0
        while made < n:  # slices of the block, joined once: the read's size and no more
            offset = (self.position + made) % len(self._block)
            pieces.append(self._block[offset:offset + n - made])
            made += len(pieces[-1])
        self.position += n
        data = b"".join(pieces)
        self._digest.update(data)
        return data

    def readable(self) -> bool:
        return True

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def expected_sha256(size: int, seed: bytes = b"bastion") -> str:
    """The digest of a whole :class:`PatternFile` of ``size`` bytes."""
    source = PatternFile(size, seed)
    while source.read(1 << 20):
        pass
    return source.sha256
