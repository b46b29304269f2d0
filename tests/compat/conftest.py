"""Fixtures of the differential suite: PocketBase and Bastion running side by side.

At the end of a run the summary says how many requests were sent to both servers and
compared, and how many recorded PocketBase answers (the filter table) were checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.harness import Pair, binary_runs, run_pair
from tests.conftest import require_or_skip

COUNTS = {"compared": 0, "recorded": 0}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    problem = binary_runs()
    if problem:
        require_or_skip(problem)
    folder: Path = tmp_path_factory.mktemp("compat")
    for running in run_pair(folder):
        yield running
        COUNTS["compared"] += running.compared


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS["compared"] or COUNTS["recorded"]:
        terminalreporter.write_line(
            f"compat: {COUNTS['compared']} requests sent to PocketBase and Bastion and compared; "
            f"{COUNTS['recorded']} answers checked against PocketBase's recorded ones")
