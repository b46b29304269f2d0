"""How many requests the differential suite compared, for the summary at the end of a run.

Each test process counts its own; under pytest-xdist the workers hand their counts to the
main process (``tests/conftest.py``), which prints the total."""

from __future__ import annotations

COUNTS = {"compared": 0, "recorded": 0}


def summary(counts: dict[str, int]) -> str | None:
    """The summary line, or None when nothing was compared."""
    if not (counts["compared"] or counts["recorded"]):
        return None
    return (f"compat: {counts['compared']} requests sent to PocketBase and Bastion and compared; "
            f"{counts['recorded']} answers checked against PocketBase's recorded ones")
