"""The chart of ``bench/compare.py``: req/s per scenario, one bar per system, one panel per
backend. Imported only once matplotlib is known to be installed (Agg backend set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

COLOURS = {"Bastion": "#2b6cb0", "raw ceiling": "#a0aec0", "Directus": "#6b46c1", "Parse Server": "#dd6b20"}


def draw(runs: list[Any], path: Path, title: str, order: tuple[str, ...]) -> None:
    backends = [b for b in ("sqlite", "postgres") if any(r.system.backend == b for r in runs)]
    fig, axes = plt.subplots(len(backends), 1, figsize=(12, 4.2 * len(backends)), squeeze=False)
    for ax, backend in zip(axes[:, 0], backends, strict=True):
        mine = [r for r in runs if r.system.backend == backend]
        names = [n for n in order if any(n in r.rows for r in mine)]
        width = 0.8 / max(1, len(mine))
        for i, run in enumerate(mine):
            xs = [k + (i - (len(mine) - 1) / 2) * width for k, n in enumerate(names) if n in run.rows]
            ys = [run.rows[n].load.rps for n in names if n in run.rows]
            bars = ax.bar(xs, ys, width, label=run.system.label, color=COLOURS.get(run.system.label))
            ax.bar_label(bars, labels=[f"{y:,.0f}" for y in ys], fontsize=7, padding=1)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("requests/s")
        ax.set_title({"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend], fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
