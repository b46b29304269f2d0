"""Fixtures of the differential suite: PocketBase and Bastion running side by side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.harness import Pair, binary_runs, run_pair
from tests.conftest import require_or_skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    problem = binary_runs()
    if problem:
        require_or_skip(problem)
    folder: Path = tmp_path_factory.mktemp("compat")
    yield from run_pair(folder)
