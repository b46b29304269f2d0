"""Fixtures of the differential suite: PocketBase and Bastion running side by side.

At the end of a run the summary says how many requests were sent to both servers and
compared, and how many recorded PocketBase answers (the filter table) were checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.counts import COUNTS, summary
from tests.compat.harness import Pair, binary_runs, run_pair
from tests.services import require_or_skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    problem = binary_runs()
    if problem:
        require_or_skip(problem)
    folder: Path = tmp_path_factory.mktemp("compat")
    for running in run_pair(folder):
        yield running
        COUNTS["compared"] += running.compared


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # a pytest-xdist worker: the main process prints the total
        output["compat_counts"] = dict(COUNTS)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = summary(COUNTS)
    if line and not hasattr(terminalreporter.config, "workeroutput"):
        terminalreporter.write_line(line)
