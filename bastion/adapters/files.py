"""Placeholder until the S3 adapter lands: local storage only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bastion.adapters.files_local import LocalStorage


class _Storages:
    def __init__(self, root: Path):
        self.local = LocalStorage(root)

    def __call__(self, s3: Mapping[str, Any]) -> LocalStorage:
        return self.local

    async def close(self) -> None:
        await self.local.close()


def storage_factory(root: Path) -> _Storages:
    return _Storages(root)
