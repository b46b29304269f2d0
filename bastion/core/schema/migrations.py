"""Migration files: Python modules with ``async def up(app)`` and ``async def down(app)``.

Every schema change made through the API writes one file holding the collection before
and after the change (secrets left out). ``bastion migrate`` applies and reverts them, and
a node applies pending files when it starts, so the same folder rebuilds the same schema
on any database.
"""

from __future__ import annotations

import importlib.util
import pprint
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bastion.tools.timeutil import now_string

TEMPLATE = '''"""Bastion migration: {title}.

Created {created}. `up` applies the change, `down` reverts it.
"""

BEFORE = {before}

AFTER = {after}


async def up(app):
    await app.apply_snapshot(BEFORE, AFTER)


async def down(app):
    await app.apply_snapshot(AFTER, BEFORE)
'''

BLANK_TEMPLATE = '''"""Bastion migration: {title}.

Created {created}. Fill in `up` and `down`; `app` offers:

- ``await app.apply_snapshot(before, after)``: make a collection match ``after`` (a
  collection JSON as the API returns it; ``None`` deletes ``before``);
- ``await app.execute(sql, params)``: run one parameterised SQL statement.
"""


async def up(app):
    pass


async def down(app):
    pass
'''


@dataclass(frozen=True)
class MigrationFile:
    name: str
    path: Path


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "migration"


class MigrationFiles:
    """The migrations folder: listing, writing and loading files."""

    def __init__(self, folder: Path):
        self.folder = folder

    def list(self) -> list[MigrationFile]:
        if not self.folder.is_dir():
            return []
        return [
            MigrationFile(p.name, p)
            for p in sorted(self.folder.glob("*.py"))
            if re.match(r"^\d+_\w+\.py$", p.name)
        ]

    def _new_path(self, title: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.time_ns() // 1000
        path = self.folder / f"{stamp}_{slug(title)}.py"
        while path.exists():
            stamp += 1
            path = self.folder / f"{stamp}_{slug(title)}.py"
        return path

    def write_change(self, title: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> Path:
        path = self._new_path(title)
        text = TEMPLATE.format(
            title=title, created=now_string(),
            before=pprint.pformat(before, width=100, sort_dicts=False),
            after=pprint.pformat(after, width=100, sort_dicts=False),
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path

    def write_blank(self, title: str) -> Path:
        path = self._new_path(title)
        path.write_text(BLANK_TEMPLATE.format(title=title, created=now_string()), encoding="utf-8")
        return path

    @staticmethod
    def load(path: Path) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"bastion_migration_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot load migration {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for fn in ("up", "down"):
            if not callable(getattr(module, fn, None)):
                raise ValueError(f"migration {path.name} has no {fn}() function")
        return module
